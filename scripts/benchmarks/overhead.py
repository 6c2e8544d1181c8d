"""Benchmark 1 — controller overhead against the physical limit.

A mission of N days x 2 raw files (L0_a, L0_b); L1 = DAILY concatenation of the day's two
raw files (window 0/0), L2 = FILE ROT13 of each L1, and a RUN step logging each L2: 3N
code runs and 2N output files. All 2N raw files are dropped into incoming (backdated an
hour, as files that arrived between two cron passes), then ``dbproc run --jobs 2`` is
timed. The *direct* baseline runs the very same code command lines over the same inputs
with a 2-wide thread pool and no controller, level by level (every L1, then every L2,
then every logger run): that is the physical limit on this machine. The baseline runs
before *and* after dbproc (interleaved), and the ratio is against their mean, with the
load average recorded: a busy machine cannot flatter the ratio unnoticed.

Figures: both walls, their ratio, dbproc seconds per output file (dbprocessing: about
1.17 s), controller milliseconds per code run from the walls
((dbproc - direct) x jobs / runs), and the controller's own CPU per code run (user+sys of
the dbproc process alone, measured inside it; its codes' CPU is reported separately).
"""

from __future__ import annotations

import datetime as dt
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .common import BenchError, Table, backdate, dbproc, loadavg, say, scratch_db, workdir
from .mission import Mission, days_from, direct_argv, write_mission

FIRST_DAY = dt.date(2001, 1, 1)
JOBS = 2
DBPROCESSING_S_PER_FILE = 1.17


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_level(pool: ThreadPoolExecutor, commands: Sequence[tuple[list[str], Path]]) -> None:
    def one(item: tuple[list[str], Path]) -> int:
        argv, cwd = item
        return subprocess.run(
            argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ).returncode

    failed = [rc for rc in pool.map(one, commands) if rc != 0]
    if failed:
        raise BenchError(f"direct baseline: {len(failed)} code runs failed")


def _raw(mission: Mission, raw: Path, day: dt.date) -> tuple[Path, Path]:
    return raw / mission.l0_name("a", day), raw / mission.l0_name("b", day)


def direct(mission: Mission, days: list[dt.date], raw: Path, out: Path) -> tuple[float, float]:
    """Run every code with no controller; (wall seconds, children CPU seconds)."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        l1 = {d: out / "L1" / mission.l1_name(d) for d in days}
        l2 = {d: out / "L2" / mission.l2_name(d) for d in days}
        for folder in (out / "L1", out / "L2"):
            folder.mkdir(parents=True, exist_ok=True)
        codes, log = mission.codes, out / "L2-log.txt"
        level1 = [
            (direct_argv(codes, "l0_to_l1.py", *_raw(mission, raw, d), l1[d]), out) for d in days
        ]
        _run_level(pool, level1)
        _run_level(pool, [(direct_argv(codes, "l1_to_l2.py", l1[d], l2[d]), out) for d in days])
        level3 = [(direct_argv(codes, "log_l2.py", log, f"{d:%Y%m%d}", l2[d]), out) for d in days]
        _run_level(pool, level3)
    return time.perf_counter() - t0, _children_cpu() - cpu0


def direct_fresh(
    mission: Mission, days: list[dt.date], raw: Path, tmp: Path
) -> tuple[float, float]:
    """One direct baseline into a new output folder (removed afterwards)."""
    out = Path(tempfile.mkdtemp(prefix="direct-out-", dir=tmp))
    try:
        return direct(mission, days, raw, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def one_case(backend: str, n_days: int, profile: Path | None) -> dict[str, Any]:
    """Interleaved runs of the N-day mission on one backend: the direct baseline, then
    ``dbproc run``, then the direct baseline again. The ratio is taken against the mean of
    the two baselines, so a load that changes during the case shows as a spread between
    them instead of flattering (or hurting) dbproc."""
    with workdir(f"overhead-{backend}-{n_days}") as tmp, scratch_db(backend, tmp) as db:
        mission = write_mission(tmp / "mission")
        days = days_from(FIRST_DAY, n_days)
        dropped = mission.drop_l0(days)
        raw = tmp / "direct-raw"
        raw.mkdir()
        for path in dropped:
            shutil.copy2(path, raw / path.name)
        backdate(dropped)
        dbproc(db, "-q", "config", "apply", str(mission.toml))
        load_before = loadavg()
        say(f"  overhead N={n_days}: direct baseline (before) ...")
        before_wall, before_cpu = direct_fresh(mission, days, raw, tmp)
        say(f"  overhead {backend} N={n_days}: dbproc run --jobs {JOBS} ...")
        run = dbproc(db, "--json", "run", "--jobs", str(JOBS), profile=profile)
        say(f"  overhead N={n_days}: direct baseline (after) ...")
        after_wall, after_cpu = direct_fresh(mission, days, raw, tmp)
        report = run.json_out()
        counts = report.get("process", {}).get("counts", {})
        runs, succeeded = counts.get("runs"), counts.get("succeeded")
        if run.rc != 0 or succeeded != 3 * n_days:
            raise BenchError(f"dbproc run made {runs} runs ({succeeded} ok), expected {3 * n_days}")
        return {
            "backend": backend,
            "days": n_days,
            "code_runs": 3 * n_days,
            "outputs": 2 * n_days,
            "direct_wall_s": (before_wall + after_wall) / 2,
            "direct_walls_s": [before_wall, after_wall],
            "direct_codes_cpu_s": (before_cpu + after_cpu) / 2,
            "dbproc": run.as_dict(),
            "loadavg": [load_before, loadavg()],
            "profiled": profile is not None,
        }


def run(
    backends: Sequence[str], sizes: Sequence[int], profile_dir: Path | None
) -> tuple[Table, list[dict[str, Any]]]:
    """Every (backend, N); the table and the raw results."""
    table = Table(
        f"overhead: dbproc run --jobs {JOBS} vs the same codes run directly (2 threads)",
        [
            "backend", "N days", "code runs", "outputs", "direct s", "dbproc s", "ratio",
            "s/output", "ctl ms/run (wall)", "ctl CPU ms/run", "codes CPU s (dbproc/direct)",
            "peak RSS MB", "direct spread", "load 1m",
        ],
    )
    results: list[dict[str, Any]] = []
    for backend in backends:
        for n in sizes:
            profile = profile_dir / f"overhead-{backend}-{n}.txt" if profile_dir else None
            r = one_case(backend, n, profile)
            results.append(r)
            d = r["dbproc"]
            runs = r["code_runs"]
            table.add(
                backend,
                n,
                runs,
                r["outputs"],
                r["direct_wall_s"],
                d["wall_s"],
                d["wall_s"] / r["direct_wall_s"],
                d["wall_s"] / r["outputs"],
                (d["wall_s"] - r["direct_wall_s"]) * JOBS / runs * 1000,
                d["controller_cpu_s"] / runs * 1000,
                f"{d['children_cpu_s']:.1f}/{r['direct_codes_cpu_s']:.1f}",
                d["peak_rss_kb"] / 1024,
                "{:.2f}/{:.2f}".format(*r["direct_walls_s"]),
                r["loadavg"][0],
            )
            say(table.render().splitlines()[-1])
    table.notes += [
        f"reference: dbprocessing costs about {DBPROCESSING_S_PER_FILE} s wall per output file",
        "ctl ms/run (wall) = (dbproc wall - direct wall) x jobs / code runs; dbproc wall includes"
        " ingesting the 2N raw files and interpreter start-up",
        "ctl CPU = user+sys of the dbproc process itself (all threads, not its codes) per run",
        "interleaved: direct, dbproc, direct; 'direct s' is the mean of the two baselines"
        " (both in 'direct spread'), 'load 1m' the load average when the case started",
    ]
    if profile_dir:
        table.notes.append(f"PROFILED under pyinstrument (slower); profiles in {profile_dir}")
    return table, results
