"""Benchmark — launch: what starting a code costs, by wrapper.

``/bin/true`` is started ``sizes[0]`` times through each way dbproc can start a code
(dbproc/executors/launch.py), interleaved in rounds of 20 so that a change in load hits
each alike: the bare program (no parent-death signal, the controller's peak memory), the
``dbproc-launch`` launcher, and its fallback ``setpriv`` + GNU ``time`` + ``setpriv``. Each
start goes through the worker's own ``Wrapper`` and ``_start`` (own session, stdout and
stderr into pipes, the report read back). CPU is user+sys of the children (the wrappers
and the program), wall is from ``Popen`` to the end of the wait.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import BenchError, Table, loadavg, say, workdir

PROGRAM = ["/bin/true"]
ROUND = 20


def _start(how: str, run_root: Path) -> float:
    """Start PROGRAM once the way ``how`` says; wall seconds."""
    from dbproc.executors import launch, worker

    saved = launch.LAUNCHER
    if how == "setpriv + time + setpriv":
        launch.LAUNCHER = None
    try:
        wrapper = launch.Wrapper(run_root, "run-bench")
    finally:
        launch.LAUNCHER = saved
    try:
        command = PROGRAM if how == "bare" else wrapper.command(list(PROGRAM))
        started = time.perf_counter()
        proc, out_r, err_r = worker._start(command, run_root, dict(os.environ), wrapper)
        returncode = proc.wait()
        os.close(out_r)
        os.close(err_r)
        if how != "bare":
            code, peak = wrapper.read()
            if returncode != 0 or code not in (0, None) or peak is None:
                raise BenchError(f"{how}: the wrapper did not report the code's end ({code})")
        return time.perf_counter() - started
    finally:
        wrapper.close()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(
    backends: Sequence[str], sizes: Sequence[int], profile_dir: Path | None
) -> tuple[Table, list[dict[str, Any]]]:
    """``sizes[0]`` starts through each wrapper (no database)."""
    del backends, profile_dir
    from dbproc.executors import launch

    starts = sizes[0] if sizes else 500
    ways = ["bare", "dbproc-launch", "setpriv + time + setpriv"]
    if launch.LAUNCHER is None:
        raise BenchError("dbproc-launch is not built: reinstall dbproc where cc is found")
    if launch.SETPRIV is None or launch.GNU_TIME is None:
        ways.remove("setpriv + time + setpriv")
    walls: dict[str, list[float]] = {how: [] for how in ways}
    cpus: dict[str, float] = dict.fromkeys(ways, 0.0)
    load_start = loadavg()
    say(f"  launch: {starts} starts of {PROGRAM[0]} through each of {len(ways)} ways ...")
    with workdir("launch") as tmp:
        for _ in range(max(1, starts // ROUND)):
            for how in ways:
                before = _children_cpu()
                for _ in range(ROUND):
                    walls[how].append(_start(how, tmp))
                cpus[how] += _children_cpu() - before
    table = Table(
        f"launch: starting {PROGRAM[0]}, {starts} times each way, interleaved",
        ["way", "CPU ms a start", "wall ms (median)", "wall ms (mean)", "what it gives"],
    )
    gives = {
        "bare": "nothing: no parent-death signal, the controller's peak memory",
        "dbproc-launch": "parent-death signal, the code's own peak, exact wait status",
        "setpriv + time + setpriv": "the same, in four execs (the fallback without cc)",
    }
    results: list[dict[str, Any]] = []
    for how in ways:
        count = len(walls[how])
        cpu_ms = cpus[how] / count * 1000
        table.add(
            how,
            cpu_ms,
            statistics.median(walls[how]) * 1000,
            statistics.fmean(walls[how]) * 1000,
            gives[how],
        )
        results.append({"way": how, "starts": count, "cpu_ms": cpu_ms, "walls_s": walls[how]})
    table.notes.append(f"load average {load_start} at the start, {loadavg()} at the end")
    results.append({"pid": os.getpid(), "launcher": launch.LAUNCHER})
    return table, results
