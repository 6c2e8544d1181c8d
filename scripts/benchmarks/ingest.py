"""Benchmark 3 — ingest throughput.

The benchmark mission with M raw files (M/2 days x L0_a, L0_b) waiting in incoming,
backdated so no settle check is needed; ``dbproc ingest`` is timed once with format-only
raw products (identified by their filename format alone) and once with a Python inspector
that parses the name and reads the file's first line. Each ingested file is placed
(hard link), checksummed, registered and queues the (process, date) pairs it affects.

Figures: files per second over the whole command (wall, start-up included), files per
second inside the pass (the ``seconds`` dbproc reports for its ingest step), and the
controller's CPU per file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import BenchError, Table, backdate, dbproc, say, scratch_db, workdir
from .mission import days_from, write_mission

FIRST_DAY = dt.date(2001, 1, 1)
VARIANTS = ("format-only", "inspector")


def one_case(backend: str, n_files: int, variant: str, profile: Path | None) -> dict[str, Any]:
    """Ingest ``n_files`` raw files on one backend."""
    with workdir(f"ingest-{backend}") as tmp, scratch_db(backend, tmp) as db:
        mission = write_mission(tmp / "mission", inspector=variant == "inspector")
        dbproc(db, "-q", "config", "apply", str(mission.toml))
        dropped = mission.drop_l0(days_from(FIRST_DAY, n_files // 2))
        backdate(dropped)
        say(f"  ingest {backend} {variant} {len(dropped)} files ...")
        result = dbproc(db, "--json", "ingest", profile=profile)
        report = result.json_out()
        counts = report.get("ingest", {}).get("counts", {})
        if counts.get("ingested") != len(dropped):
            raise BenchError(f"ingest took {counts} of {len(dropped)} files")
        inner = float(report.get("ingest", {}).get("seconds") or "nan")
        return {
            "backend": backend,
            "variant": variant,
            "files": len(dropped),
            "inner_s": inner,
            "dbproc": result.as_dict(),
            "profiled": profile is not None,
        }


def run(
    backends: Sequence[str], sizes: Sequence[int], profile_dir: Path | None
) -> tuple[Table, list[dict[str, Any]]]:
    """Every (backend, size, variant); the table and the raw results."""
    table = Table(
        "ingest: dbproc ingest of files waiting in incoming",
        [
            "backend", "products", "files", "wall s", "files/s", "in-pass s", "files/s in pass",
            "ctl CPU ms/file", "peak RSS MB",
        ],
    )
    results: list[dict[str, Any]] = []
    for backend in backends:
        for n in sizes:
            for variant in VARIANTS:
                profile = (
                    profile_dir / f"ingest-{backend}-{variant}-{n}.txt" if profile_dir else None
                )
                r = one_case(backend, n, variant, profile)
                results.append(r)
                d = r["dbproc"]
                table.add(
                    backend,
                    variant,
                    r["files"],
                    d["wall_s"],
                    r["files"] / d["wall_s"],
                    r["inner_s"],
                    r["files"] / r["inner_s"] if r["inner_s"] else float("nan"),
                    d["controller_cpu_s"] / r["files"] * 1000,
                    d["peak_rss_kb"] / 1024,
                )
                say(table.render().splitlines()[-1])
    table.notes += [
        "wall = the whole command (interpreter start-up, imports, lock, recovery check, ingest)",
        "in-pass = the ingest step's own 'seconds' from `dbproc ingest --json`",
    ]
    if profile_dir:
        table.notes.append(f"PROFILED under pyinstrument (slower); profiles in {profile_dir}")
    return table, results
