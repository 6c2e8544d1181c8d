"""``together()``: on PostgreSQL the result-less statements of a block go in one round
trip, in their order, in their transaction (dbproc/db/prepared.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, bindparam, create_engine, func, select, text
from sqlalchemy.exc import IntegrityError

from dbproc.db.models import Event, table_of
from dbproc.db.prepared import HELD, Prepared, together
from tests.db.conftest import mission_engine

EVENT = table_of(Event)
_ADD = Prepared(EVENT.insert())
_COUNT = Prepared(select(func.count()).select_from(EVENT).where(EVENT.c.kind == bindparam("k")))
_DUPLICATE = Prepared(text("INSERT INTO event (seq, time, kind) VALUES (:seq, :time, 'dup')"))
NOW = dt.datetime(2026, 12, 4, 12, 0, 0)


def _event(kind: str) -> dict[str, Any]:
    return {"time": NOW, "kind": kind, "detail": {"k": kind}}


def _counting(connection: Connection) -> list[Any]:
    """The queries sent on ``connection``'s driver connection from now on."""
    import psycopg2.extensions

    sent: list[Any] = []

    class Counting(psycopg2.extensions.cursor):  # type: ignore[misc]
        def execute(self, query: Any, vars: Any = None) -> Any:
            sent.append(query)
            return super().execute(query, vars)

    connection.connection.dbapi_connection.cursor_factory = Counting  # type: ignore[union-attr]
    return sent


def _kinds(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(EVENT.c.kind).order_by(EVENT.c.seq)))


@pytest.mark.postgres
def test_held_statements_go_with_the_next_that_returns_rows_in_their_order(
    pg_engine: Engine,
) -> None:
    with pg_engine.begin() as connection:
        sent = _counting(connection)
        with together(connection):
            for kind in ("a", "b", "b"):
                _ADD.execute(connection, _event(kind))
            _ADD.execute(connection, [_event("c"), _event("c")])
            assert sent == []  # held so far
            assert _COUNT.scalar(connection, {"k": "b"}) == 2  # sees them: sent first
            assert len(sent) == 1
            _ADD.execute(connection, _event("d"))
        assert len(sent) == 2  # the rest at the end of the block
    assert _kinds(pg_engine) == ["a", "b", "b", "c", "c", "d"]


@pytest.mark.postgres
def test_a_statement_through_sqlalchemy_or_a_commit_sends_the_held_ones_first(
    pg_engine: Engine,
) -> None:
    with pg_engine.connect() as connection:
        connection.begin()
        with together(connection):
            _ADD.execute(connection, _event("a"))
            # SQLAlchemy's own statement sees the held insert
            seen = connection.execute(select(func.count()).select_from(EVENT)).scalar_one()
            assert seen == 1
            _ADD.execute(connection, _event("b"))
            connection.commit()  # inside the block: the held insert is sent before it
        assert connection.info.get(HELD) is None
    assert _kinds(pg_engine) == ["a", "b"]


@pytest.mark.postgres
def test_a_rollback_or_an_exception_drops_what_is_held(pg_engine: Engine) -> None:
    with pg_engine.connect() as connection:
        connection.begin()
        with together(connection):
            _ADD.execute(connection, _event("rolled back"))
            connection.rollback()
        connection.begin()
        with pytest.raises(RuntimeError), together(connection):
            _ADD.execute(connection, _event("raised"))
            raise RuntimeError("the caller ends its unit")
        assert connection.info.get(HELD) is None
        connection.rollback()
        connection.begin()
        _ADD.execute(connection, _event("after"))
        connection.commit()
    assert _kinds(pg_engine) == ["after"]


@pytest.mark.postgres
def test_an_error_in_a_held_statement_is_raised_as_sqlalchemy_raises_it(
    pg_engine: Engine,
) -> None:
    with pg_engine.connect() as connection:
        connection.begin()
        with pytest.raises(IntegrityError) as caught, together(connection):
            _DUPLICATE.execute(connection, {"seq": 1, "time": NOW})
            _DUPLICATE.execute(connection, {"seq": 1, "time": NOW})
        assert "event" in str(caught.value)
        connection.rollback()
    assert _kinds(pg_engine) == []


def test_elsewhere_statements_run_at_once(db_url: str) -> None:
    """SQLite has no round trips to save; an engine without ``hold_statements`` (a plain
    one on the same URL) holds nothing either."""
    for engine in mission_engine(db_url):
        plain = create_engine(engine.url)
        try:
            sqlite = engine.dialect.name == "sqlite"
            for target in (engine, plain) if sqlite else (plain,):
                with target.begin() as connection, together(connection):
                    _ADD.execute(connection, _event("now"))
                    assert HELD not in connection.info
                    assert _COUNT.scalar(connection, {"k": "now"}) >= 1
        finally:
            plain.dispose()
