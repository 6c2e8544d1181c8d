"""Import rate of ``dbproc import-dbprocessing`` on a synthetic dbprocessing archive.

    .venv/bin/python scripts/benchmarks/import_dbprocessing.py [--files 100000]
        [--backend sqlite|postgresql] [--work DIR]

Builds a dbprocessing database with dbprocessing's own table layout (the fixture's SQLite
schema, tests/fixtures/dbprocessing/archive/dbpfix.sqlite, emptied of files) holding
``--files`` files on disk: 3/4 L0 (three versions per day) and 1/4 L1 (each with three L0
parents and a code link), then times the import in a child process (``dbproc
import-dbprocessing``), and prints files/s and the child's peak RSS (ru_maxrss).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "dbprocessing" / "archive"
PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def build(work: Path, n_files: int) -> Path:
    """The synthetic dbprocessing archive under ``work``; returns its database."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(FIXTURE, work)
    db = work / "dbpfix.sqlite"
    conn = sqlite3.connect(db)
    for table in ("release", "processqueue", "filecodelink", "filefilelink", "file"):
        conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
    shutil.rmtree(work / "L0")
    shutil.rmtree(work / "L1")
    shutil.rmtree(work / "L2")
    (work / "L0").mkdir()
    n_l1 = n_files // 4
    n_days = n_l1
    start = dt.date(1900, 1, 1)
    rows, links, code_links = [], [], []
    fid = 0
    l0_ids: list[int] = []
    for day_n in range(n_days):
        day = start + dt.timedelta(days=day_n)
        for version in range(3):
            fid += 1
            name = f"dbpfix_L0_{day:%Y%m%d}_v1.{version}.0.dat"
            data = f"raw packets of {day} version {version}\n".encode()
            (work / "L0" / name).write_bytes(data)
            rows.append((fid, name, day, version, 1, hashlib.sha1(data).hexdigest(), 0.0))  # noqa: S324
        l0_ids.append(fid)
    for day_n in range(n_l1):
        day = start + dt.timedelta(days=day_n)
        fid += 1
        name = f"dbpfix_L1_{day:%Y%m%d}_v1.0.0.dat"
        folder = work / "L1" / f"{day:%Y}"
        folder.mkdir(parents=True, exist_ok=True)
        data = f"L1 of {day}\n".encode()
        (folder / name).write_bytes(data)
        rows.append((fid, name, day, 0, 3, hashlib.sha1(data).hexdigest(), 1.0))  # noqa: S324
        for k in (day_n - 1, day_n, day_n + 1):
            if 0 <= k < n_days:
                links.append((l0_ids[k], fid))
        code_links.append((fid, 1))
    conn.executemany(
        "INSERT INTO file (file_id, filename, utc_file_date, utc_start_time, utc_stop_time, "
        "data_level, interface_version, quality_version, revision_version, "
        "file_create_date, exists_on_disk, product_id, shasum) VALUES "
        "(?, ?, ?, ?, ?, ?, 1, ?, 0, '2020-01-01 00:00:00.000000', 1, ?, ?)",
        [
            (
                i,
                n,
                d.isoformat(),
                f"{d} 00:00:00.000000",
                f"{d + dt.timedelta(days=1)} 00:00:00.000000",
                level,
                q,
                p,
                sha,
            )
            for i, n, d, q, p, sha, level in rows
        ],
    )
    conn.executemany("INSERT INTO filefilelink (source_file, resulting_file) VALUES (?, ?)", links)
    conn.executemany(
        "INSERT INTO filecodelink (resulting_file, source_code) VALUES (?, ?)", code_links
    )
    conn.commit()
    conn.close()
    return db


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--files", type=int, default=100_000)
    p.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--work", type=Path, default=Path("/tmp/dbproc-bench-import"))
    args = p.parse_args()
    began = time.monotonic()
    db = build(args.work / "old", args.files)
    built = time.monotonic() - began
    if args.backend == "sqlite":
        target = str(args.work / "new.sqlite")
        Path(target).unlink(missing_ok=True)
    else:
        import sqlalchemy as sa

        schema = "bench_import"
        engine = sa.create_engine(PG)
        with engine.begin() as c:
            c.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            c.execute(sa.text(f"CREATE SCHEMA {schema}"))
        engine.dispose()
        target = f"{PG}?options=-csearch_path%3D{schema}"
    cmd = [
        sys.executable,
        "-m",
        "dbproc",
        "--db",
        target,
        "--json",
        "import-dbprocessing",
        "--from",
        str(db),
        "--old-root",
        str(db.parent),
        "--mission-file",
        str(args.work / "new" / "mission.toml"),
    ]
    load = os.getloadavg()
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if out.returncode != 0:
        sys.exit(f"import failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    report = json.loads(out.stdout)
    imported = report["counts"]["files imported"]
    print(
        json.dumps(
            {
                "backend": args.backend,
                "files": imported,
                "links": report["counts"].get("file links imported", 0),
                "seconds": round(seconds, 1),
                "files_per_second": round(imported / seconds),
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "build_seconds": round(built, 1),
                "loadavg_before": [round(x, 2) for x in load],
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
