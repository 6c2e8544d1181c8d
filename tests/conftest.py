"""Shared fixtures: real SQLite and real PostgreSQL, an example mission per test.

PostgreSQL comes from ``DBPROC_TEST_POSTGRES_URL`` (default: the local test server);
each test gets its own schema, so tests cannot see each other. When the server cannot be
reached the PostgreSQL cases skip, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dbproc.examples import write_example
from tests.helpers import CliHarness

PG_URL = os.environ.get(
    "DBPROC_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
_pg_state: dict[str, str | None] = {}


def postgres_unreachable() -> str | None:
    """None when the test PostgreSQL answers, else the reason."""
    if "reason" not in _pg_state:
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _pg_state["reason"] = None
        except Exception as exc:  # noqa: BLE001
            _pg_state["reason"] = f"PostgreSQL at {PG_URL} unreachable: {exc}".splitlines()[0]
    return _pg_state["reason"]


def require_postgres() -> None:
    """Skip (or, under CI=true, fail) when PostgreSQL is unreachable."""
    reason = postgres_unreachable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def make_pg_schema_url() -> tuple[str, str]:
    """Create a fresh schema; return (URL whose search_path is that schema, schema)."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_pg_schema(schema: str) -> None:
    """Drop a schema made by :func:`make_pg_schema_url`."""
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL on an empty database, on each backend in turn."""
    if request.param == "sqlite":
        yield str(tmp_path / "mission.sqlite")
        return
    url, schema = make_pg_schema_url()
    try:
        yield url
    finally:
        drop_pg_schema(schema)


@pytest.fixture
def mission_file(tmp_path: Path) -> Path:
    """The rot13 example mission written under tmp_path/mission, raw files in incoming."""
    return write_example(tmp_path / "mission")


@pytest.fixture
def cli(db_url: str, mission_file: Path) -> CliHarness:
    """A CLI harness bound to ``db_url`` and the example mission (not yet applied)."""
    return CliHarness(db_url, mission_file)


@pytest.fixture
def applied(cli: CliHarness) -> CliHarness:
    """The harness after ``config apply`` of the example mission."""
    cli.ok("config", "apply", str(cli.mission_file))
    return cli
