"""Benchmark — the cluster path: the overhead mission with its runs on Slurm job workers.

A single-node Slurm is started on localhost exactly as the test suite does
(``tests/executors/slurm.py``: munged, slurmctld, slurmd from a generated slurm.conf), and
dask-jobqueue's ``SLURMCluster`` submits two one-core worker jobs to it with the options
of ``tests/executors/test_slurm.py`` (``docs/cluster.md`` shows them). Then, on fresh
copies of the overhead mission, interleaved: ``dbproc run --jobs 2`` (local executor),
``dbproc run --executor dask --scheduler <the cluster> --jobs 2``, and the local run
again. The cost of the cluster path per run is (cluster wall - local wall) x 2 / runs:
what Dask's submission, transfer of the job description and result, and the worker's
thread add to each run over local threads. Needs slurm-wlm, munge and dask-jobqueue
(``scripts/test`` installs them).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import (
    REPO,
    BenchError,
    Measured,
    Table,
    backdate,
    dbproc,
    loadavg,
    say,
    scratch_db,
    workdir,
)
from .mission import days_from, write_mission

FIRST_DAY = dt.date(2001, 1, 1)
JOBS = 2


def _one_run(backend: str, n_days: int, tmp: Path, label: str, *extra: str) -> Measured:
    folder = tmp / label
    with scratch_db(backend, tmp) as db:
        mission = write_mission(folder / "mission")
        backdate(mission.drop_l0(days_from(FIRST_DAY, n_days)))
        dbproc(db, "-q", "config", "apply", str(mission.toml))
        say(f"  cluster {backend} N={n_days}: {label} ...")
        run = dbproc(db, "--json", "run", "--jobs", str(JOBS), *extra)
        counts = run.json_out().get("process", {}).get("counts", {})
        if counts.get("succeeded") != 3 * n_days:
            raise BenchError(f"{label}: {counts}, expected {3 * n_days} successes")
        return run


def run(
    backends: Sequence[str], sizes: Sequence[int], profile_dir: Path | None
) -> tuple[Table, list[dict[str, Any]]]:
    """Every (backend, N) against one Slurm cluster of two worker jobs."""
    del profile_dir
    sys.path.insert(0, str(REPO))
    try:
        from dask_jobqueue import SLURMCluster
        from distributed import Client

        from tests.executors.slurm import LocalSlurm, missing_programs
        from tests.executors.test_slurm import slurm_cluster_options
    except ImportError as exc:
        raise BenchError(f"the cluster benchmark needs dask-jobqueue: {exc}") from exc
    if missing_programs():
        raise BenchError(f"the cluster benchmark needs Slurm: missing {missing_programs()}")
    table = Table(
        f"cluster: dbproc run --jobs {JOBS} on 2 Slurm job workers (dask-jobqueue) vs local",
        [
            "backend",
            "N days",
            "code runs",
            "local s",
            "cluster s",
            "ratio",
            "cluster ms/run (wall)",
            "ctl CPU ms/run local",
            "ctl CPU ms/run cluster",
            "load 1m",
        ],
    )
    results: list[dict[str, Any]] = []
    # a SIGTERM (e.g. from `timeout`) must still stop the cluster, its jobs and Slurm
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with workdir("cluster") as tmp:
        slurm = LocalSlurm(tmp / "slurm")
        os.environ["SLURM_CONF"] = str(slurm.conf)
        try:
            with SLURMCluster(**slurm_cluster_options(tmp / "jobs")) as cluster:
                cluster.scale(jobs=JOBS)
                with Client(cluster, set_as_default=False) as client:
                    client.wait_for_workers(JOBS, timeout=120)
                on_cluster = ("--executor", "dask", "--scheduler", cluster.scheduler_address)
                for backend in backends:
                    for n in sizes:
                        load = loadavg()
                        local1 = _one_run(backend, n, tmp, f"local-{backend}-{n}-a")
                        remote = _one_run(backend, n, tmp, f"slurm-{backend}-{n}", *on_cluster)
                        local2 = _one_run(backend, n, tmp, f"local-{backend}-{n}-b")
                        local = (local1.wall + local2.wall) / 2
                        runs = 3 * n
                        local_cpu = (local1.self_cpu + local2.self_cpu) / 2
                        table.add(
                            backend,
                            n,
                            runs,
                            local,
                            remote.wall,
                            remote.wall / local,
                            (remote.wall - local) * JOBS / runs * 1000,
                            local_cpu / runs * 1000,
                            remote.self_cpu / runs * 1000,
                            load,
                        )
                        results.append(
                            {
                                "backend": backend,
                                "days": n,
                                "code_runs": runs,
                                "local": [local1.as_dict(), local2.as_dict()],
                                "cluster": remote.as_dict(),
                                "loadavg": load,
                            }
                        )
                        say(table.render().splitlines()[-1])
        finally:
            slurm.stop()
            os.environ.pop("SLURM_CONF", None)
    table.notes += [
        "interleaved: local, cluster, local; 'local s' is the mean of the two local runs",
        "cluster ms/run (wall) = (cluster wall - local wall) x jobs / code runs",
        "the two worker jobs run on this same 2-core machine, next to the controller",
    ]
    return table, results
