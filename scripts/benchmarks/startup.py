"""Benchmark — start-up: what every dbproc command pays before it does anything.

Each command is run as a new process (the console script, as cron runs it) a few times to
warm the page cache, then ``repeat`` times, interleaved command by command so a change in
load hits every command alike (as hyperfine does, without needing it): mean, standard
deviation, min and median wall seconds, with the load average. Then ``python -X
importtime`` of ``dbproc status`` gives the import time by top-level package, self time
summed: what is left to make lazy. CPU seconds (user+sys of the process) are given too:
on a shared machine they vary much less than the wall.
"""

from __future__ import annotations

import collections
import os
import resource
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import PYTHON, Table, loadavg, say, workdir

WARMUP = 3
CONSOLE = Path(PYTHON).with_name("dbproc")
MAIN = ["-c", "from dbproc.cli import main; main()"]


def command_lines(db: str) -> dict[str, list[str]]:
    """The commands timed, by label."""
    entry = [str(CONSOLE)] if CONSOLE.exists() else [PYTHON, *MAIN]
    return {
        "python -c pass": [PYTHON, "-c", "pass"],
        "dbproc --version": [*entry, "--version"],
        "dbproc status (SQLite)": [*entry, "--db", db, "status"],
        "dbproc status --json": [*entry, "--db", db, "--json", "status"],
        "dbproc files": [*entry, "--db", db, "files"],
    }


def _wall(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user+sys of the process) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_profile(argv: list[str], env: dict[str, str]) -> list[tuple[str, float]]:
    """Self import time (ms) by top-level package for one run of ``argv`` under Python."""
    run = subprocess.run(
        [PYTHON, "-X", "importtime", *argv], env=env, capture_output=True, text=True, check=True
    )
    by_package: collections.Counter[str] = collections.Counter()
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line.split("|")
        self_us = int(fields[0].split(":")[1])
        name = fields[2].strip()
        top = ".".join(name.split(".")[:2]) if name.startswith("dbproc") else name.split(".")[0]
        by_package[top] += self_us
    return [(k, v / 1000) for k, v in by_package.most_common(12)]


def run(
    backends: Sequence[str], sizes: Sequence[int], profile_dir: Path | None
) -> tuple[Table, list[dict[str, Any]]]:
    """``sizes[0]`` repetitions of each command (SQLite only: start-up is backend-blind
    until the first connection)."""
    del backends, profile_dir
    repeat = sizes[0] if sizes else 20
    with workdir("startup") as tmp:
        from dbproc.examples import write_example

        mission = write_example(tmp / "mission")
        db = str(tmp / "startup.sqlite")
        env = {k: v for k, v in os.environ.items() if k != "DBPROC_DB"}
        subprocess.run(
            [PYTHON, *MAIN, "-q", "--db", db, "config", "apply", str(mission)],
            env=env,
            check=True,
            capture_output=True,
        )
        commands = command_lines(db)
        say(f"  startup: {len(commands)} commands x {repeat} runs, interleaved ...")
        for argv in commands.values():
            for _ in range(WARMUP):
                _wall(argv, env)
        walls: dict[str, list[float]] = {label: [] for label in commands}
        cpus: dict[str, list[float]] = {label: [] for label in commands}
        load_start = loadavg()
        for _ in range(repeat):
            for label, argv in commands.items():
                wall, cpu = _wall(argv, env)
                walls[label].append(wall)
                cpus[label].append(cpu)
        load_end = loadavg()
        imports = import_profile([*MAIN, "--db", db, "status"], env)
    table = Table(
        f"startup: wall seconds per command, {repeat} interleaved runs each",
        ["command", "mean s", "sd s", "min s", "median s", "CPU s (median)"],
    )
    results: list[dict[str, Any]] = []
    for label, values in walls.items():
        table.add(
            label,
            statistics.fmean(values),
            statistics.stdev(values),
            min(values),
            statistics.median(values),
            statistics.median(cpus[label]),
        )
        results.append({"command": label, "walls_s": values, "cpu_s": cpus[label]})
    table.notes.append(f"load average {load_start} at the start, {load_end} at the end")
    table.notes.append(
        "import self time of `dbproc status` by package (ms): "
        + ", ".join(f"{name} {ms:.0f}" for name, ms in imports)
    )
    results.append({"imports_ms": imports, "loadavg": [load_start, load_end]})
    return table, results
