"""Reading a dbprocessing database through SQLAlchemy Core reflection.

No import of dbprocessing is needed. ``OLD`` is opened the way dbprocessing opens it: an
existing file is SQLite, text with ``://`` is a SQLAlchemy URL, and any other text is a
PostgreSQL database name reached through ``PGUSER``/``PGHOST``/``PGPORT``/``PGPASSWORD``.
The small tables are read whole; files, links and the queue are streamed in chunks.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, MetaData, Table, create_engine, select
from sqlalchemy.exc import SQLAlchemyError

from dbproc.db.engine import database_url
from dbproc.errors import DatabaseError, UsageError

#: the tables an import reads; ``release``, ``unixtime`` and ``inspector`` may be absent
REQUIRED_TABLES = ("mission", "product", "process", "productprocesslink", "file", "code")
OPTIONAL_TABLES = (
    "satellite",
    "instrument",
    "instrumentproductlink",
    "inspector",
    "filefilelink",
    "filecodelink",
    "processqueue",
    "release",
)


@dataclass(frozen=True)
class LegacyMission:
    name: str
    rootdir: str
    incoming_dir: str
    codedir: str | None
    inspectordir: str | None
    errordir: str | None


@dataclass(frozen=True)
class LegacyProduct:
    id: int
    name: str
    relative_path: str
    level: float
    format: str
    description: str | None
    instrument: str | None
    satellite: str | None


@dataclass(frozen=True)
class LegacyInspector:
    product_id: int
    filename: str
    relative_path: str
    arguments: str | None
    active: bool
    version: str


@dataclass(frozen=True)
class LegacyInput:
    product_id: int
    optional: bool
    yesterday: int
    tomorrow: int


@dataclass(frozen=True)
class LegacyProcess:
    id: int
    name: str
    output_product: int | None
    timebase: str
    extra_params: str | None
    inputs: tuple[LegacyInput, ...]


@dataclass(frozen=True)
class LegacyCode:
    id: int
    process_id: int
    filename: str
    relative_path: str
    start: dt.date
    stop: dt.date
    description: str | None
    version: tuple[int, int, int]
    output_interface: int
    active: bool
    newest: bool
    arguments: str | None


@dataclass(frozen=True)
class LegacyFile:
    id: int
    filename: str
    product_id: int
    date: dt.date | None
    start: dt.datetime | None
    stop: dt.datetime | None
    version: tuple[int, int, int]
    exists_on_disk: bool
    shasum: str | None
    process_keywords: str | None
    created: dt.datetime | None
    quality_comment: str | None
    caveats: str | None


def open_url(old: str) -> URL:
    """``OLD`` as a URL, the way dbprocessing resolves it."""
    if "://" in old:
        return database_url(old)
    path = Path(old).expanduser()
    if path.is_file():
        return database_url(str(path))
    if os.sep in old or old.endswith((".sqlite", ".db", ".sqlite3")):
        raise UsageError(f"--from {old!r}: no such file; give a dbprocessing SQLite file or URL")
    user = os.environ.get("PGUSER")
    if not user:
        raise UsageError(
            f"--from {old!r} is not a file; as a PostgreSQL database name it needs PGUSER "
            "(and PGHOST, PGPORT, PGPASSWORD as needed), or give a postgresql:// URL"
        )
    return URL.create(
        "postgresql+psycopg2",
        username=user,
        password=os.environ.get("PGPASSWORD") or None,
        host=os.environ.get("PGHOST") or None,
        port=int(os.environ["PGPORT"]) if os.environ.get("PGPORT") else None,
        database=old,
    )


def _date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value)[:10])


def _datetime(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    return dt.datetime.fromisoformat(str(value))


class LegacyDatabase:
    """A reflected dbprocessing database, read-only."""

    def __init__(self, old: str) -> None:
        self.source = old
        self.engine: Engine = create_engine(open_url(old))
        meta = MetaData()
        try:
            meta.reflect(self.engine)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot read the dbprocessing database {old!r}: {exc}") from None
        missing = [t for t in REQUIRED_TABLES if t not in meta.tables]
        if missing:
            raise UsageError(
                f"{old!r} is not a dbprocessing database: no table(s) {', '.join(missing)}"
            )
        self.tables: dict[str, Table] = dict(meta.tables)

    def close(self) -> None:
        self.engine.dispose()

    def rows(self, table: str, order: str | None = None) -> list[Any]:
        if table not in self.tables:
            return []
        t = self.tables[table]
        stmt = select(t)
        if order is not None:
            stmt = stmt.order_by(t.c[order])
        with self.engine.connect() as conn:
            return list(conn.execute(stmt))

    def mission(self) -> LegacyMission:
        rows = self.rows("mission", "mission_id")
        if not rows:
            raise UsageError(f"{self.source!r} holds no mission")
        m = rows[0]
        return LegacyMission(
            m.mission_name, m.rootdir, m.incoming_dir, m.codedir, m.inspectordir, m.errordir
        )

    def products(self) -> list[LegacyProduct]:
        instruments = {r.instrument_id: r for r in self.rows("instrument")}
        satellites = {r.satellite_id: r.satellite_name for r in self.rows("satellite")}
        out = []
        for r in self.rows("product", "product_id"):
            inst = instruments.get(r.instrument_id)
            out.append(
                LegacyProduct(
                    r.product_id,
                    r.product_name,
                    r.relative_path,
                    float(r.level),
                    r.format,
                    r.product_description,
                    inst.instrument_name if inst is not None else None,
                    satellites.get(inst.satellite_id) if inst is not None else None,
                )
            )
        return out

    def inspectors(self) -> list[LegacyInspector]:
        return [
            LegacyInspector(
                r.product,
                r.filename,
                r.relative_path,
                r.arguments,
                bool(r.active_code),
                f"{r.interface_version}.{r.quality_version}.{r.revision_version}",
            )
            for r in self.rows("inspector", "inspector_id")
        ]

    def processes(self) -> list[LegacyProcess]:
        links: dict[int, list[LegacyInput]] = {}
        has_window = "yesterday" in self.tables["productprocesslink"].c
        for r in self.rows("productprocesslink"):
            links.setdefault(r.process_id, []).append(
                LegacyInput(
                    r.input_product_id,
                    bool(r.optional),
                    int(r.yesterday or 0) if has_window else 0,
                    int(r.tomorrow or 0) if has_window else 0,
                )
            )
        return [
            LegacyProcess(
                r.process_id,
                r.process_name,
                r.output_product,
                (r.output_timebase or "").upper(),
                r.extra_params,
                tuple(
                    sorted(links.get(r.process_id, []), key=lambda i: (i.optional, i.product_id))
                ),
            )
            for r in self.rows("process", "process_id")
        ]

    def codes(self) -> list[LegacyCode]:
        return [
            LegacyCode(
                r.code_id,
                r.process_id,
                r.filename,
                r.relative_path,
                _date(r.code_start_date) or dt.date.min,
                _date(r.code_stop_date) or dt.date.max,
                r.code_description,
                (r.interface_version, r.quality_version, r.revision_version),
                r.output_interface_version,
                bool(r.active_code),
                bool(r.newest_version),
                r.arguments,
            )
            for r in self.rows("code", "code_id")
        ]

    def count_files(self) -> int:
        from sqlalchemy import func

        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(self.tables["file"])).scalar_one()
            )

    def iter_files(self, chunk: int = 2000) -> Iterator[list[LegacyFile]]:
        """Every file, by file_id, ``chunk`` at a time (keyset pagination)."""
        t = self.tables["file"]
        last = -1
        cols = t.c
        while True:
            with self.engine.connect() as conn:
                rows = list(
                    conn.execute(
                        select(t).where(cols.file_id > last).order_by(cols.file_id).limit(chunk)
                    )
                )
            if not rows:
                return
            last = rows[-1].file_id
            yield [self._file(r) for r in rows]

    def _file(self, r: Any) -> LegacyFile:
        mapping = r._mapping
        return LegacyFile(
            r.file_id,
            r.filename,
            r.product_id,
            _date(r.utc_file_date),
            _datetime(r.utc_start_time),
            _datetime(r.utc_stop_time),
            (r.interface_version, r.quality_version, r.revision_version),
            bool(r.exists_on_disk),
            mapping.get("shasum"),
            mapping.get("process_keywords"),
            _datetime(mapping.get("file_create_date")),
            mapping.get("quality_comment"),
            mapping.get("caveats"),
        )

    def pairs(self, table: str, first: str, second: str) -> Iterator[list[tuple[int, int]]]:
        """(first, second) columns of a link table, in chunks."""
        if table not in self.tables:
            return
        t = self.tables[table]
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=5000).execute(select(t.c[first], t.c[second]))
            for part in result.partitions(5000):
                yield [(int(a), int(b)) for a, b in part]

    def queue(self) -> list[tuple[int, int | None]]:
        return [(r.file_id, r.version_bump) for r in self.rows("processqueue")]

    def releases(self) -> list[tuple[int, str]]:
        return [(r.file_id, str(r.release_num)) for r in self.rows("release")]
