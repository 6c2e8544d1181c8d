"""Benchmark — the controller alone: recorded runs per second when a code costs nothing.

The overhead mission (3N runs for N days) is applied and its raw files ingested by
``dbproc``; then a fresh Python process runs ``Archive.process`` with the in-memory
executor of ``dbproc.executors.memory`` in place of codes: a job "runs" when its result
is asked for, writes a one-line output and exits 0, and every job in flight counts as
finished together (as results arrive from a cluster). Everything else is the real pass:
the lock, planning, the run rows, promoting, recording, lineage, queueing successors.
So the figures are the controller's own cost: runs / process wall, and the CPU of the
process per run. With J slots, at most J results are recorded as one group.

Each case runs twice: with the mission (and a SQLite database) in the system's temporary
folder, on disk, and in ``/dev/shm`` (tmpfs), where creating a file or folder and an fsync
cost next to nothing. The difference is what the disk's metadata work costs the
controller (the run folders, the kept log, placing and fsyncing the output, the commits).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import PYTHON, BenchError, Table, backdate, dbproc, loadavg, say, scratch_db, workdir
from .mission import days_from, write_mission

FIRST_DAY = dt.date(2001, 1, 1)
#: slots of the in-memory executor: a small cluster's worth of results at a time
JOBS = (2, 16)
#: where the mission lives: the system's temporary folder (disk), then tmpfs
PLACES: tuple[tuple[str, Path | None], ...] = (("disk", None), ("tmpfs", Path("/dev/shm")))

CHILD = r"""
import json, resource, sys, time
import dbproc
from dbproc.executors.memory import MemoryExecutor
db, jobs, out, profile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def one_line(spec, run_dir):
    if spec.output_name is not None:
        (run_dir / spec.output_name).write_bytes(b"run %d\n" % spec.run_id)
    return 0
archive = dbproc.open(db)
archive.require_schema()  # connect and check the schema before the clock starts
executor = MemoryExecutor(slots=jobs, behaviour=one_line, together=True)
profiler = None
if profile:
    from pyinstrument import Profiler
    profiler = Profiler(interval=0.001)
    profiler.start()
wall0, cpu0 = time.perf_counter(), time.process_time()
report = archive.process(executor=executor)
wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
if profiler is not None:
    profiler.stop()
    with open(profile, "w") as fh:
        fh.write(profiler.output_text(unicode=False, show_all=False))
counts = report.process.counts() if report.process is not None else {}
with open(out, "w") as fh:
    json.dump({"wall_s": wall, "cpu_s": cpu, "counts": dict(counts)}, fh)
"""


def one_case(
    backend: str, n_days: int, jobs: int, place: tuple[str, Path | None], profile: Path | None
) -> dict[str, Any]:
    """Apply and ingest the N-day mission, then time the in-memory ``process``."""
    with (
        workdir(f"controller-{backend}-{n_days}", place[1]) as tmp,
        scratch_db(backend, tmp) as db,
    ):
        mission = write_mission(tmp / "mission", shell=True)
        backdate(mission.drop_l0(days_from(FIRST_DAY, n_days)))
        dbproc(db, "-q", "config", "apply", str(mission.toml))
        dbproc(db, "-q", "ingest")
        load = loadavg()
        say(f"  controller {backend} N={n_days} jobs={jobs} {place[0]}: in-memory process ...")
        out = tmp / "controller.json"
        proc = subprocess.run(
            [PYTHON, "-c", CHILD, db, str(jobs), str(out), str(profile or "")],
            env={**os.environ, "DBPROC_DB": db},
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise BenchError(f"in-memory process exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        figures = json.loads(out.read_text())
        if figures["counts"].get("succeeded") != 3 * n_days:
            raise BenchError(f"in-memory process: {figures['counts']}, expected {3 * n_days}")
        return {
            "backend": backend,
            "days": n_days,
            "jobs": jobs,
            "on": place[0],
            "code_runs": 3 * n_days,
            **figures,
            "loadavg": load,
            "profiled": profile is not None,
        }


def run(
    backends: Sequence[str], sizes: Sequence[int], profile_dir: Path | None
) -> tuple[Table, list[dict[str, Any]]]:
    """Every (backend, N, place, jobs); the table and the raw results."""
    table = Table(
        "controller: dbproc process with an in-memory executor (no code cost)",
        ["backend", "N days", "jobs", "on", "runs", "process s", "runs/s", "CPU ms/run", "load 1m"],
    )
    results: list[dict[str, Any]] = []
    for backend in backends:
        for n in sizes:
            for place in PLACES:
                if place[1] is not None and not place[1].is_dir():
                    continue
                for jobs in JOBS:
                    name = f"controller-{backend}-{n}-j{jobs}-{place[0]}.txt"
                    profile = profile_dir / name if profile_dir else None
                    r = one_case(backend, n, jobs, place, profile)
                    results.append(r)
                    _add(table, r)
    return table, results


def _add(table: Table, r: dict[str, Any]) -> None:
    runs = r["code_runs"]
    table.add(
        r["backend"],
        r["days"],
        r["jobs"],
        r["on"],
        runs,
        r["wall_s"],
        runs / max(r["wall_s"], 1e-9),
        1000 * r["cpu_s"] / runs,
        r["loadavg"],
    )
