"""Benchmark — the overhead workload under Snakemake, for comparison on the same machine.

Snakemake is installed with pip into a throw-away virtual environment of the bench
(``bench-results/snakemake-venv``, made on first use; never a dependency of dbproc).
The Snakefile runs the very same code command lines as the direct baseline of the
overhead benchmark over the same raw files: per day an L1 rule (concatenation), an L2
rule (ROT13) and a log rule (which appends to the log and touches a flag file, since a
Snakemake rule needs an output). ``snakemake --cores 2`` is timed, interleaved with the
direct baseline (before and after) like ``overhead``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import REPO, BenchError, Table, loadavg, say, workdir
from .mission import days_from, write_mission
from .overhead import JOBS, direct_fresh

FIRST_DAY = dt.date(2001, 1, 1)
VENV = REPO / "bench-results" / "snakemake-venv"

SNAKEFILE = """# the overhead benchmark's workload (written by scripts/bench)
DAYS = {days!r}
PY = {python!r}
CODES = {codes!r}
RAW = {raw!r}

rule all:
    input: expand("log/{{day}}.done", day=DAYS)

rule l1:
    input: a=RAW + "/bm_a_{{day}}.raw", b=RAW + "/bm_b_{{day}}.raw"
    output: "L1/bm_{{day}}_v1.0.0.cat"
    shell: "{{PY}} {{CODES}}/l0_to_l1.py {{input.a}} {{input.b}} {{output}}"

rule l2:
    input: "L1/bm_{{day}}_v1.0.0.cat"
    output: "L2/bm_{{day}}_v1.0.0.rot"
    shell: "{{PY}} {{CODES}}/l1_to_l2.py {{input}} {{output}}"

rule log:
    input: "L2/bm_{{day}}_v1.0.0.rot"
    output: touch("log/{{day}}.done")
    shell: "{{PY}} {{CODES}}/log_l2.py L2-log.txt {{wildcards.day}} {{input}}"
"""


def snakemake_program() -> Path:
    """The snakemake of the bench's own venv (made and filled on first use)."""
    program = VENV / "bin" / "snakemake"
    if program.exists():
        return program
    say(f"  snakemake: installing it into a throw-away venv {VENV} ...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [
                str(VENV / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "snakemake",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(VENV, ignore_errors=True)
        detail = getattr(exc, "stderr", "") or ""
        raise BenchError(
            f"could not install snakemake into {VENV}: {exc} {detail[-1500:]}"
        ) from exc
    return program


def one_case(n_days: int) -> dict[str, Any]:
    """direct, snakemake, direct on the N-day workload."""
    program = snakemake_program()
    version = subprocess.run(
        [str(program), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with workdir(f"snakemake-{n_days}") as tmp:
        mission = write_mission(tmp / "mission")
        days = days_from(FIRST_DAY, n_days)
        raw = tmp / "raw"
        raw.mkdir()
        for path in mission.drop_l0(days):
            shutil.move(path, raw / path.name)
        work = tmp / "snake"
        work.mkdir()
        (work / "Snakefile").write_text(
            SNAKEFILE.format(
                days=[f"{d:%Y%m%d}" for d in days],
                python=sys.executable,
                codes=str(mission.codes / "scripts"),
                raw=str(raw),
            ),
            encoding="utf-8",
        )
        load = loadavg()
        say(f"  snakemake N={n_days}: direct baseline (before) ...")
        before, _ = direct_fresh(mission, days, raw, tmp)
        say(f"  snakemake N={n_days}: snakemake --cores {JOBS} ...")
        started = time.perf_counter()
        proc = subprocess.run(
            [str(program), "--cores", str(JOBS), "--quiet", "all"],
            cwd=work,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise BenchError(f"snakemake exited {proc.returncode}: {proc.stderr[-2000:]}")
        say(f"  snakemake N={n_days}: direct baseline (after) ...")
        after, _ = direct_fresh(mission, days, raw, tmp)
    return {
        "days": n_days,
        "code_runs": 3 * n_days,
        "snakemake_version": version,
        "snakemake_wall_s": wall,
        "direct_walls_s": [before, after],
        "loadavg": load,
    }


def run(
    backends: Sequence[str], sizes: Sequence[int], profile_dir: Path | None
) -> tuple[Table, list[dict[str, Any]]]:
    """Every N (no database: backends do not apply)."""
    del backends, profile_dir
    table = Table(
        f"snakemake: the overhead workload with snakemake --cores {JOBS}",
        [
            "snakemake",
            "N days",
            "code runs",
            "direct s",
            "snakemake s",
            "ratio",
            "direct spread",
            "load 1m",
        ],
    )
    results = []
    for n in sizes:
        r = one_case(n)
        results.append(r)
        direct = sum(r["direct_walls_s"]) / 2
        table.add(
            r["snakemake_version"],
            n,
            r["code_runs"],
            direct,
            r["snakemake_wall_s"],
            r["snakemake_wall_s"] / direct,
            "{:.2f}/{:.2f}".format(*r["direct_walls_s"]),
            r["loadavg"],
        )
        say(table.render().splitlines()[-1])
    table.notes.append("interleaved: direct, snakemake, direct; ratio against their mean")
    return table, results
