"""A pooled PostgreSQL connection the server dropped is replaced at check-out (db/engine.py
``_pg_alive``: a connection is pinged only when its socket has something to read)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from dbproc.db.engine import create_db_engine
from tests.conftest import PG_URL, require_postgres

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine() -> Iterator[Engine]:
    require_postgres()
    engine = create_db_engine(PG_URL)
    yield engine
    engine.dispose()


def _backend(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(backend: int) -> None:
    other = create_engine(PG_URL)
    try:
        with other.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
            # pg_terminate_backend only signals: wait (bounded) until the backend is gone
            deadline = time.monotonic() + 10
            while connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": backend}
            ).scalar_one():
                assert time.monotonic() < deadline, f"backend {backend} did not exit"
                connection.rollback()  # a new snapshot of pg_stat_activity
    finally:
        other.dispose()


def test_a_connection_the_server_dropped_is_replaced_at_check_out(engine: Engine) -> None:
    first = _backend(engine)
    _terminate(first)
    second = _backend(engine)  # would raise "server closed the connection unexpectedly"
    assert second != first
    assert _backend(engine) == second  # the new one is pooled in turn
