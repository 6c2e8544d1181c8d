"""Benchmark — the data life-cycle commands on a synthetic archive of about 10^5 files.

    PYTHONPATH=scripts .venv/bin/python -m benchmarks.lifecycle [--backend sqlite] [--files N]

Loads the archive of :mod:`benchmarks.archive` (after ``config apply``), then times, each
as a subprocess with wall time and peak RSS: ``export prov --all`` in PROV-JSON, PROV-N,
PROV-XML and RDF, ``export prov`` of one L2 file (whole ancestry), ``export prov --product
L2``, ``release create``, ``release diff`` of two releases, ``purge`` (dry run) and
``export rocrate`` of one L2 file. Prints one line per command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os

from . import archive
from .common import dbproc, say, scratch_db, workdir
from .mission import write_mission

FIRST_DAY = dt.date(1970, 1, 1)
PER_DAY = 24


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument(
        "--formats",
        default="json,provn,xml,rdf",
        help="PROV formats of the --all export (rdf takes longest)",
    )
    args = parser.parse_args()
    with workdir(f"lifecycle-{args.backend}") as tmp, scratch_db(args.backend, tmp) as db:
        mission = write_mission(tmp / "mission", hourly=True)
        dbproc(db, "-q", "config", "apply", str(mission.toml))
        days = archive.days_for(args.files, PER_DAY)
        built = archive.load(db, mission, first_day=FIRST_DAY, days=days, per_day=PER_DAY)
        say(
            f"{args.backend}: {built.files} files, {built.links} links, {built.runs} runs "
            f"(load {built.seconds:.1f} s); load average {os.getloadavg()[0]:.2f}"
        )
        middle = mission.l2_name(FIRST_DAY + dt.timedelta(days=days // 2))
        suffix = {"json": "json", "provn": "provn", "xml": "xml", "rdf": "ttl"}
        steps = [
            (
                f"export prov --all ({fmt})",
                ["export", "prov", "--all", "--format", fmt, "-o", str(tmp / f"all.{suffix[fmt]}")],
            )
            for fmt in args.formats.split(",")
        ]
        steps += [
            ("export prov one L2", ["export", "prov", middle, "-o", str(tmp / "one.json")]),
            (
                "export prov --product L2",
                ["export", "prov", "--product", "L2", "-o", str(tmp / "l2.json")],
            ),
            (
                "export rocrate one L2",
                ["--json", "export", "rocrate", middle, "--to", str(tmp / "crate")],
            ),
            ("release create r1", ["--json", "release", "create", "r1"]),
            (
                "release create r2 --product L2",
                ["--json", "release", "create", "r2", "--product", "L2"],
            ),
            ("release diff r1 r2", ["--json", "release", "diff", "r1", "r2"]),
            ("purge (dry run)", ["--json", "purge"]),
        ]
        for label, argv in steps:
            m = dbproc(db, "-q", *argv, timeout=1800)
            size = ""
            out = argv[argv.index("-o") + 1] if "-o" in argv else None
            if out:
                size = f", {os.path.getsize(out) / 1e6:.1f} MB"
            say(
                f"  {label}: {m.wall:.2f} s, peak {m.maxrss_kb / 1024:.0f} MB{size}; "
                f"load {os.getloadavg()[0]:.2f}"
            )


if __name__ == "__main__":
    main()
