"""The real dbprocessing fixture, as SQLite and as a PostgreSQL schema with dbprocessing's
table layout (the SQLite tables reflected, created in PostgreSQL with Core, rows copied)."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, Table, create_engine, insert, select

from tests.conftest import drop_pg_schema, make_pg_schema_url
from tests.helpers import CliHarness

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dbprocessing"


@dataclass
class OldArchive:
    """A copy of the fixture archive and the database that describes it."""

    root: Path
    source: str  # what --from takes
    sqlite: Path  # the SQLite original (to read the expected rows from)

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.sqlite) as conn:
            return list(conn.execute(sql))


def copy_to_postgres(sqlite_path: Path, url: str) -> None:
    """dbprocessing's tables in PostgreSQL: reflected from SQLite, generic types, rows."""
    source = create_engine(f"sqlite:///{sqlite_path}")
    target = create_engine(url)
    meta = MetaData()
    meta.reflect(source)
    copy = MetaData()
    for table in meta.sorted_tables:
        columns = [Column(c.name, c.type.as_generic(), nullable=c.nullable) for c in table.columns]
        pk = [c.name for c in table.primary_key.columns]
        Table(table.name, copy, *columns, *([PrimaryKeyConstraint(*pk)] if pk else []))
    copy.create_all(target)
    with source.connect() as src, target.begin() as dst:
        for table in meta.sorted_tables:
            rows = [dict(r._mapping) for r in src.execute(select(table))]
            if rows:
                dst.execute(insert(copy.tables[table.name]), rows)
    source.dispose()
    target.dispose()


@pytest.fixture
def old(cli: CliHarness, tmp_path: Path) -> Iterator[OldArchive]:
    """The fixture archive under tmp_path/old, its database on the backend of ``cli``."""
    root = tmp_path / "old"
    shutil.copytree(FIXTURE / "archive", root, symlinks=True)
    sqlite_path = root / "dbpfix.sqlite"
    if "postgresql" not in cli.db:
        yield OldArchive(root, str(sqlite_path), sqlite_path)
        return
    url, schema = make_pg_schema_url()
    try:
        copy_to_postgres(sqlite_path, url)
        yield OldArchive(root, url, sqlite_path)
    finally:
        drop_pg_schema(schema)


def import_args(old: OldArchive, mission: Path, *extra: str) -> tuple[str, ...]:
    return (
        "import-dbprocessing",
        "--from",
        old.source,
        "--old-root",
        str(old.root),
        "--mission-file",
        str(mission),
        *extra,
    )
