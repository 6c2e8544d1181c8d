"""Benchmark — controller throughput when the codes cost next to nothing.

The overhead mission with its three codes as shell scripts of a millisecond or two
(``cat``, ``tr``, ``echo``), so what is measured is the controller: planning, starting,
checking, promoting and recording each run. The raw files are ingested first by their own
``dbproc ingest``; then ``dbproc process --jobs J`` is timed. Recorded runs per second
= runs / (process wall - start-up wall of ``dbproc --version``), for several queue lengths
(N days make 3N runs, N of them queued at once at the start): the figure should be flat
in N. The controller's own CPU per run is given too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import BenchError, Table, backdate, dbproc, loadavg, say, scratch_db, workdir
from .mission import days_from, write_mission

FIRST_DAY = dt.date(2001, 1, 1)
JOBS = 2


def one_case(backend: str, n_days: int, profile: Path | None) -> dict[str, Any]:
    """Ingest, then a timed ``dbproc process`` of the N-day shell-code mission."""
    with workdir(f"throughput-{backend}-{n_days}") as tmp, scratch_db(backend, tmp) as db:
        mission = write_mission(tmp / "mission", shell=True)
        backdate(mission.drop_l0(days_from(FIRST_DAY, n_days)))
        dbproc(db, "-q", "config", "apply", str(mission.toml))
        dbproc(db, "-q", "ingest")
        startup = dbproc(db, "--version")
        load = loadavg()
        say(f"  throughput {backend} N={n_days}: dbproc process --jobs {JOBS} ...")
        run = dbproc(db, "--json", "process", "--jobs", str(JOBS), profile=profile)
        counts = run.json_out().get("process", {}).get("counts", {})
        if run.rc != 0 or counts.get("succeeded") != 3 * n_days:
            raise BenchError(f"dbproc process: {counts}, expected {3 * n_days} successes")
        return {
            "backend": backend,
            "days": n_days,
            "code_runs": 3 * n_days,
            "startup_s": startup.wall,
            "dbproc": run.as_dict(),
            "loadavg": load,
            "profiled": profile is not None,
        }


def run(
    backends: Sequence[str], sizes: Sequence[int], profile_dir: Path | None
) -> tuple[Table, list[dict[str, Any]]]:
    """Every (backend, N); the table and the raw results."""
    table = Table(
        f"throughput: dbproc process --jobs {JOBS} of shell codes (runs recorded per second)",
        [
            "backend",
            "N days",
            "code runs",
            "process s",
            "runs/s",
            "ctl CPU ms/run",
            "codes CPU ms/run",
            "load 1m",
        ],
    )
    results: list[dict[str, Any]] = []
    for backend in backends:
        for n in sizes:
            profile = profile_dir / f"throughput-{backend}-{n}.txt" if profile_dir else None
            r = one_case(backend, n, profile)
            results.append(r)
            d, runs = r["dbproc"], r["code_runs"]
            table.add(
                backend,
                n,
                runs,
                d["wall_s"],
                runs / max(d["wall_s"] - r["startup_s"], 1e-9),
                d["controller_cpu_s"] / runs * 1000,
                d["children_cpu_s"] / runs * 1000,
                r["loadavg"],
            )
            say(table.render().splitlines()[-1])
    table.notes += [
        "runs/s = code runs / (process wall - `dbproc --version` wall): start-up left out",
        "ctl CPU = user+sys of the dbproc process itself (all threads, not its codes) per run",
    ]
    if profile_dir:
        table.notes.append(f"PROFILED under pyinstrument (slower); profiles in {profile_dir}")
    return table, results
