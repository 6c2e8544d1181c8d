"""Benchmark 2 — commands on a large archive.

A synthetic, fully built archive of about 10^4, 10^5 and 10^6 file records (see
:mod:`benchmarks.archive`: 24 hourly raw files per L0 product and day, one L1 and one L2
per day, all lineage and run rows) is bulk-loaded after ``dbproc config apply``. Then,
each as a subprocess with wall time and the controller's peak RSS:

- ``plan`` with nothing pending (must report 0 actions);
- ``plan --all``: every date of every process re-planned from the database (must report 0
  actions: this is the check that the synthetic rows are what dbproc would have recorded);
- ``lineage --all`` of an L2 file in the middle of the archive;
- ``files --product L2 --missing`` over one year;
- ``status``;
- ``ingest`` of 100 new raw files (50 new days x L0_a, L0_b; ``plan`` does not look at
  incoming), then ``plan``, which must show the 50 new L1 builds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import archive
from .common import BenchError, Measured, Table, backdate, dbproc, say, scratch_db, workdir
from .mission import days_from, write_mission

FIRST_DAY = dt.date(1970, 1, 1)
PER_DAY = 24
NEW_DAYS = 50
TIMEOUT = 900.0


def _actions(m: Measured) -> int:
    if m.rc != 0:
        return -1
    return len(m.json_out())


def one_case(backend: str, n_files: int, profile: Path | None = None) -> dict[str, Any]:
    """Load an archive of about ``n_files`` records and time the commands on it."""
    with workdir(f"scale-{backend}-{n_files}") as tmp, scratch_db(backend, tmp) as db:
        mission = write_mission(tmp / "mission", hourly=True)
        dbproc(db, "-q", "config", "apply", str(mission.toml))
        days = archive.days_for(n_files, PER_DAY)
        say(f"  scale {backend} {n_files}: loading {days} days ...")
        built = archive.load(db, mission, first_day=FIRST_DAY, days=days, per_day=PER_DAY)
        say(
            f"  scale {backend}: {built.files} files, {built.links} links, {built.runs} runs "
            f"in {built.seconds:.1f} s"
        )
        middle = FIRST_DAY + dt.timedelta(days=days // 2)
        year = max(FIRST_DAY.year, middle.year - 1)
        rows: list[tuple[str, Measured, str]] = []

        def timed(
            label: str, *args: str, expect: int | None = None, prof: Path | None = None
        ) -> Measured:
            m = dbproc(db, *args, timeout=TIMEOUT, check=False, profile=prof)
            if m.rc == -9:
                rows.append((label, m, f"TIMEOUT after {TIMEOUT:.0f} s"))
                return m
            if m.rc not in (0, 3):
                raise BenchError(f"dbproc {' '.join(args)} exited {m.rc}: {m.stderr[-2000:]}")
            note = ""
            if expect is not None:
                got = _actions(m)
                note = f"{got} actions"
                if got != expect:
                    raise BenchError(
                        f"`dbproc {' '.join(args)}` reports {got} actions, expected {expect}: the "
                        "synthetic archive does not match what dbproc records (see "
                        f"dbproc/snapshot.py, dbproc/planner.py). First lines: {m.stdout[:1500]}"
                    )
            rows.append((label, m, note))
            say(f"    {label}: {m.wall:.2f} s, {m.maxrss_kb / 1024:.0f} MB {note}")
            return m

        timed("plan (nothing pending)", "--json", "plan", expect=0)
        timed("plan --all (full replan)", "--json", "plan", "--all", expect=0, prof=profile)
        lin = timed("lineage --all L2", "--json", "lineage", "--all", mission.l2_name(middle))
        if lin.rc == 0 and len(lin.json_out().get("parents", [])) != 1:
            raise BenchError(f"lineage of {mission.l2_name(middle)}: {lin.stdout[:500]}")
        miss = timed(
            f"files --missing ({year})", "--json", "files", "--product", "L2", "--missing",
            "--since", f"{year}-01-01", "--until", f"{year}-12-31",
        )
        timed("status", "--json", "status")
        new = mission.drop_l0(days_from(built.last_day + dt.timedelta(days=1), NEW_DAYS))
        backdate(new)
        timed(f"ingest {len(new)} new L0", "--json", "ingest")
        timed("plan after ingest", "--json", "plan", expect=NEW_DAYS)
        missing_count = len(miss.json_out()) if miss.rc == 0 else None
        return {
            "backend": backend,
            "target_files": n_files,
            "archive": built.__dict__ | {"first_day": str(built.first_day)},
            "load_s": built.seconds,
            "missing_rows": missing_count,
            "commands": [{"label": lbl, **m.as_dict(), "note": note} for lbl, m, note in rows],
        }


def run(
    backends: Sequence[str], sizes: Sequence[int], profile_dir: Path | None = None
) -> tuple[Table, list[dict[str, Any]]]:
    """Every (backend, size); the table and the raw results."""
    table = Table(
        "scale: commands on a synthetic fully built archive",
        [
            "backend", "file rows", "load s", "command", "wall s", "ctl CPU s", "peak RSS MB",
            "check",
        ],
    )
    results: list[dict[str, Any]] = []
    for backend in backends:
        for n in sizes:
            profile = profile_dir / f"scale-plan-all-{backend}-{n}.txt" if profile_dir else None
            r = one_case(backend, n, profile)
            results.append(r)
            for i, c in enumerate(r["commands"]):
                table.add(
                    backend if i == 0 else "",
                    r["archive"]["files"] if i == 0 else "",
                    r["load_s"] if i == 0 else "",
                    c["label"],
                    c["wall_s"],
                    c["controller_cpu_s"],
                    c["peak_rss_kb"] / 1024,
                    c["note"],
                )
    table.notes += [
        f"archive: {PER_DAY} hourly raw files per L0 product and day + 1 L1 + 1 L2 per day,"
        " with lineage and run rows; load = bulk insert (executemany / COPY)",
        "wall includes interpreter start-up; peak RSS is the dbproc process's own maximum",
    ]
    if profile_dir:
        table.notes.append(f"plan --all PROFILED under pyinstrument; profiles in {profile_dir}")
    return table, results
