"""A synthetic, fully built archive bulk-loaded straight into the dbproc schema.

The schema is made by ``dbproc config apply`` (so the migrations run and the products,
processes and codes are registered); this module then writes, day after day, exactly the
rows a series of successful passes would have left for the benchmark mission with
``per_day`` hourly raw files per L0 product:

- ``per_day`` L0_a and ``per_day`` L0_b files (slot ``@HH0000``, interval [HH:00, next
  midnight)), with no code;
- one L1 (v1.0.0) made by the L0_to_L1 code from all of the day's raw files, one L2
  (v1.0.0) made by L1_to_L2 from the L1, each with its ``file_link`` rows and its
  succeeded ``run`` row (same ``build_key``, ``inputs`` and ``argv`` dbproc records);
- one succeeded L2_log run whose inputs are the L2.

The pending rows left by ``config apply`` are deleted (a pass would have settled them).
Rows are written with the DB-API directly for speed: ``executemany`` with
``synchronous=OFF`` on SQLite, ``COPY ... FROM STDIN`` on PostgreSQL. Values are
formatted the way SQLAlchemy stores them (checked against rows dbproc itself wrote).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.engine import Engine

from dbproc.build.plan_types import build_key
from dbproc.db.coverage import rebuild_coverage
from dbproc.db.models import Code, File, FileLink, Pending, Process, Product, Run

from .mission import Mission

DAY = dt.timedelta(days=1)
Row = tuple[Any, ...]
DAYS_PER_BATCH = 1000
FAKE_SHA = "0" * 64
FILE_COLS = [
    "id", "product_id", "filename", "date", "start", "stop", "interface", "quality",
    "revision", "slot", "keywords", "metadata", "size", "sha256", "path", "registered_at",
    "code_id", "run_id", "is_newest", "on_disk",
]
RUN_COLS = [
    "id", "process_id", "code_id", "date", "slot", "output_filename", "output_version",
    "reason", "build_key", "inputs", "argv", "status", "attempt", "exit_code", "host",
    "queued_at", "started_at", "ended_at", "duration",
]
LINK_COLS = ["child_id", "parent_id"]


@dataclass(frozen=True)
class Archive:
    """What was loaded."""

    first_day: dt.date
    days: int
    per_day: int
    files: int
    links: int
    runs: int
    seconds: float

    @property
    def last_day(self) -> dt.date:
        """The last day with data."""
        return self.first_day + (self.days - 1) * DAY


def days_for(n_files: int, per_day: int) -> int:
    """Days needed for about ``n_files`` file rows."""
    return max(1, math.ceil(n_files / (2 * per_day + 2)))


@dataclass(frozen=True)
class _Ids:
    products: dict[str, int]
    processes: dict[str, int]
    codes: dict[str, int]
    code_paths: dict[str, str]


def _ids(engine: Engine) -> _Ids:
    with engine.connect() as conn:
        products = {n: i for i, n in conn.execute(select(Product.id, Product.name))}
        processes = {n: i for i, n in conn.execute(select(Process.id, Process.name))}
        rows = conn.execute(
            select(Process.name, Code.id, Code.path)
            .join(Code, Code.process_id == Process.id)
            .where(Code.active.is_(True))
        ).all()
    return _Ids(
        products, processes, {n: i for n, i, _ in rows}, {n: p for n, _, p in rows}
    )


class _Rows:
    """Row tuples for a range of days (see module docstring)."""

    def __init__(self, mission: Mission, ids: _Ids, first_day: dt.date, per_day: int) -> None:
        self.m = mission
        self.ids = ids
        self.first = first_day
        self.per_day = per_day
        self.now = dt.datetime(2024, 1, 1, 0, 0, 0)
        self.python = sys.executable
        self.code = {n: str(mission.codes / p) for n, p in ids.code_paths.items()}

    def day(self, index: int) -> tuple[list[Row], list[Row], list[Row]]:
        """(file rows, link rows, run rows) of day ``index``."""
        m, ids, k = self.m, self.ids, self.per_day
        d = self.first + index * DAY
        midnight = dt.datetime(d.year, d.month, d.day)
        stop = midnight + DAY
        fid = index * (2 * k + 2) + 1
        rid = index * 3 + 1
        files: list[tuple[Any, ...]] = []
        raw_ids: list[int] = []
        raw_paths: list[str] = []
        for tag in ("a", "b"):
            for hour in range(k):
                name = m.l0_name(tag, d, hour)
                path = f"L0/{d:%Y}/{name}"
                files.append((
                    fid, ids.products[f"L0_{tag}"], name, d, midnight + dt.timedelta(hours=hour),
                    stop, 1, 0, 0, f"@{hour:02d}0000", "{}", "{}", 20, FAKE_SHA, path, self.now,
                    None, None, True, True,
                ))
                raw_ids.append(fid)
                raw_paths.append(str(m.root / path))
                fid += 1
        l1_id, l2_id = fid, fid + 1
        l1, l2 = m.l1_name(d), m.l2_name(d)
        l1_path, l2_path = f"L1/{d:%Y}/{l1}", f"L2/{d:%Y}/{d:%m}/{l2}"
        files.append((
            l1_id, ids.products["L1"], l1, d, midnight, stop, 1, 0, 0, "", "{}", "{}",
            20 * 2 * k, FAKE_SHA, l1_path, self.now, ids.codes["L0_to_L1"], rid, True, True,
        ))
        files.append((
            l2_id, ids.products["L2"], l2, d, midnight, stop, 1, 0, 0, "", "{}", "{}",
            20 * 2 * k, FAKE_SHA, l2_path, self.now, ids.codes["L1_to_L2"], rid + 1, True, True,
        ))
        links = [(l1_id, p) for p in raw_ids] + [(l2_id, l1_id)]
        runs = [
            self._run(rid, "L0_to_L1", d, l1, raw_ids, [*raw_paths, "<OUTPUT>"]),
            self._run(rid + 1, "L1_to_L2", d, l2, [l1_id], [str(m.root / l1_path), "<OUTPUT>"]),
            self._run(
                rid + 2, "L2_log", d, None, [l2_id],
                [f"{m.root}/L2-log.txt", f"{d:%Y%m%d}", str(m.root / l2_path)],
            ),
        ]
        return files, links, runs

    def _run(
        self, rid: int, process: str, d: dt.date, output: str | None, inputs: list[int],
        tail: list[str],
    ) -> tuple[Any, ...]:
        code = self.ids.codes[process]
        argv = [self.python, self.code[process], *tail]
        return (
            rid, self.ids.processes[process], code, d, "", output, "1.0.0" if output else None,
            "new", build_key(code, inputs), json.dumps(inputs), json.dumps(argv), "succeeded",
            1, 0, "bench", self.now, self.now, self.now, 0.05,
        )


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def _pg_value(v: Any) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return str(v)


class _Writer:
    """Bulk insert through the DB-API of one connection."""

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        self.raw = engine.raw_connection()
        self.cur = self.raw.cursor()
        if self.dialect == "sqlite":
            self.cur.execute("PRAGMA synchronous=OFF")

    def write(self, table: str, cols: list[str], rows: list[tuple[Any, ...]]) -> None:
        quoted = ", ".join(f'"{c}"' for c in cols)
        if self.dialect == "sqlite":
            marks = ", ".join("?" for _ in cols)
            self.cur.executemany(
                f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})',
                [tuple(_sqlite_value(v) for v in r) for r in rows],
            )
            return
        buf = io.StringIO()
        for r in rows:
            buf.write("\t".join(_pg_value(v) for v in r))
            buf.write("\n")
        buf.seek(0)
        self.cur.copy_expert(f'COPY "{table}" ({quoted}) FROM STDIN', buf)

    def finish(self) -> None:
        self.raw.commit()
        if self.dialect == "postgresql":
            for table in ("file", "run"):
                self.cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM \"{table}\"))"
                )
            self.raw.commit()
        self.cur.close()
        self.raw.close()


def _check_columns() -> None:
    """The column lists name real columns of dbproc's tables (fail early after a change)."""
    for model, cols in ((File, FILE_COLS), (Run, RUN_COLS), (FileLink, LINK_COLS)):
        known = set(model.__table__.columns.keys())
        unknown = set(cols) - known
        if unknown:
            raise RuntimeError(f"{model.__tablename__} has no column(s) {sorted(unknown)}")


def _batches(days: int) -> Iterator[range]:
    for start in range(0, days, DAYS_PER_BATCH):
        yield range(start, min(days, start + DAYS_PER_BATCH))


def load(db: str, mission: Mission, *, first_day: dt.date, days: int, per_day: int) -> Archive:
    """Bulk-load ``days`` built days into the (applied, otherwise empty) database."""
    _check_columns()
    started = time.perf_counter()
    engine = create_engine(db)
    ids = _ids(engine)
    maker = _Rows(mission, ids, first_day, per_day)
    writer = _Writer(engine)
    n_files = n_links = n_runs = 0
    for batch in _batches(days):
        files: list[tuple[Any, ...]] = []
        links: list[tuple[Any, ...]] = []
        runs: list[tuple[Any, ...]] = []
        for index in batch:
            f, lk, r = maker.day(index)
            files += f
            links += lk
            runs += r
        writer.write(Run.__tablename__, RUN_COLS, runs)
        writer.write(File.__tablename__, FILE_COLS, files)
        writer.write(FileLink.__tablename__, LINK_COLS, links)
        n_files, n_links, n_runs = n_files + len(files), n_links + len(links), n_runs + len(runs)
    writer.finish()
    with engine.begin() as conn:
        conn.execute(delete(Pending))
        rebuild_coverage(conn)  # register_file keeps it; this bulk load bypasses that
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return Archive(
        first_day, days, per_day, n_files, n_links, n_runs, time.perf_counter() - started
    )
