"""The example mission end to end on a real batch system: Dask workers as Slurm jobs.

A single-node Slurm (munged, slurmctld, slurmd: :mod:`tests.executors.slurm`) runs on
localhost for the module; dask-jobqueue's ``SLURMCluster`` submits two one-core workers to it
with ``sbatch``, exactly as ``docs/cluster.md`` shows, and ``dbproc run --executor dask``
sends the mission's runs to that cluster's scheduler. The tests run in CI (where
``scripts/test`` installs slurm-wlm and munge); elsewhere they skip only when Slurm or
dask-jobqueue is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.executors.cluster import wait_for
from tests.executors.slurm import LocalSlurm, missing_programs
from tests.executors.test_dask_cli import built_locally, catalogue
from tests.helpers import CliHarness

pytestmark = [pytest.mark.slurm, pytest.mark.dask, pytest.mark.slow]
CHAIN = {"runs": 12, "succeeded": 12}
JOBS = 2
__all__ = ["built_locally"]  # a fixture shared with test_dask_cli
WORKER_SECONDS = 120.0  # a guard against hangs: the workers are up in about three seconds


def _require_slurm() -> None:
    missing = missing_programs()
    for module in ("distributed", "dask_jobqueue"):
        if importlib.util.find_spec(module) is None:
            missing.append(f"python module {module}")
    if not missing:
        return
    reason = f"a local Slurm needs {', '.join(missing)} (scripts/test installs them)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSlurm]:
    """munged + slurmctld + slurmd on localhost for this module; stopped at its end."""
    _require_slurm()
    old_conf = os.environ.get("SLURM_CONF")
    batch = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    os.environ["SLURM_CONF"] = str(batch.conf)  # sbatch, squeue, scancel find this Slurm
    try:
        yield batch
    finally:
        batch.stop()
        if old_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old_conf


def slurm_cluster_options(log_directory: Path) -> dict[str, Any]:
    """The SLURMCluster options of the test (docs/cluster.md shows the same)."""
    return {
        "queue": "debug",
        "cores": 1,  # codes at once per job
        "processes": 1,
        "memory": "1GB",
        "walltime": "00:30:00",
        "worker_extra_args": ["--memory-limit", "0"],
        "death_timeout": 60,
        "log_directory": str(log_directory),
        "python": sys.executable,  # the venv every worker shares
        "scheduler_options": {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
    }


@pytest.fixture(scope="module")
def slurm_cluster(slurm: LocalSlurm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A dask-jobqueue SLURMCluster with two worker jobs running on the local Slurm."""
    import dask
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = SLURMCluster(**slurm_cluster_options(tmp_path_factory.mktemp("jobs")))
    try:
        cluster.scale(jobs=JOBS)
        with Client(cluster, set_as_default=False) as client:
            client.wait_for_workers(JOBS, timeout=WORKER_SECONDS)
        yield cluster
    finally:
        cluster.close()


def dbproc_runs_finished(cluster: Any) -> set[str]:
    """Keys of dbproc runs that the cluster's scheduler has seen finish."""
    from distributed import Client

    with Client(cluster, set_as_default=False) as client:
        keys = client.run_on_scheduler(
            lambda dask_scheduler: sorted(
                {
                    str(t.key)
                    for t in dask_scheduler.transition_log
                    if str(t.key).startswith("dbproc-run-") and t.finish == "memory"
                }
            )
        )
    return set(keys)


def worker_job_ids(cluster: Any) -> set[str]:
    """The Slurm job ID each worker of the cluster runs in (from its environment)."""
    from distributed import Client

    with Client(cluster, set_as_default=False) as client:
        found = client.run(lambda: os.environ.get("SLURM_JOB_ID", ""))
    return set(found.values())


def test_the_local_slurm_runs_a_batch_job(slurm: LocalSlurm, tmp_path: Path) -> None:
    out = tmp_path / "job.out"
    subprocess.run(
        ["sbatch", "--wait", "--quiet", f"--output={out}", "--wrap", "hostname"],
        check=True,
        env=slurm.env,
        timeout=WORKER_SECONDS,
    )
    assert out.read_text().strip().split(".")[0] == slurm.node
    for name in ("munged", "slurmctld", "slurmd"):  # each daemon wrote its PID file
        assert int(slurm.pid_file(name).read_text()) == slurm.processes[name].pid


def test_example_mission_runs_on_slurm_jobs(
    applied: CliHarness,
    slurm: LocalSlurm,
    slurm_cluster: Any,
    built_locally: tuple[dict[str, Any], list[str]],
) -> None:
    jobs = worker_job_ids(slurm_cluster)
    assert len(jobs) == JOBS and "" not in jobs  # every worker is a Slurm job ...
    assert jobs <= set(slurm.jobs())  # ... that this Slurm runs
    before = dbproc_runs_finished(slurm_cluster)
    report = applied.json(
        "run", "--executor", "dask", "--scheduler", slurm_cluster.scheduler_address
    )
    assert report["exit_code"] == 0
    assert report["process"]["counts"] == CHAIN
    assert len(dbproc_runs_finished(slurm_cluster) - before) == CHAIN["runs"]
    files, log = built_locally  # the same files, bytes and versions as a local build
    assert catalogue(applied) == files
    assert sorted((applied.root / "L2-log.txt").read_text().splitlines()) == log
    assert not list((applied.root / ".dbproc-staging").glob("run-*"))
    again = applied.json(
        "run", "--executor", "dask", "--scheduler", slurm_cluster.scheduler_address
    )
    assert again["exit_code"] == 0 and again["process"]["counts"] == {"runs": 0}


def test_stopping_the_cluster_ends_its_slurm_jobs(slurm: LocalSlurm, tmp_path: Path) -> None:
    from dask_jobqueue import SLURMCluster

    before = set(slurm.jobs())
    with SLURMCluster(**slurm_cluster_options(tmp_path)) as cluster:
        cluster.scale(jobs=1)
        wait_for(lambda: len(set(slurm.jobs()) - before) == 1, WORKER_SECONDS, "a worker job")
        started = set(slurm.jobs()) - before
    wait_for(lambda: not (started & set(slurm.jobs())), WORKER_SECONDS, "the worker job to end")
