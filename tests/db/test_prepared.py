"""Hot-path statements on the driver's cursor (db/prepared.py) write what SQLAlchemy's own
execution writes, raise what it raises, and hand over to it where they cannot run alone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from dbproc.build.run_start import UPDATE_RUN as PREPARED_UPDATE_RUN
from dbproc.db import prepared
from dbproc.db.coverage import record_coverage
from dbproc.db.engine import create_db_engine
from dbproc.db.models import Run, RunStatus, table_of
from dbproc.db.prepared import Prepared
from dbproc.version import Version
from tests.db.conftest import mission_engine

RUN = table_of(Run)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    yield from mission_engine(db_url)


def _run_row(day: int) -> dict[str, Any]:
    now = dt.datetime(2026, 12, 3, 10, 0, 0, 123456)
    return {
        "pass_id": None,
        "process_id": 1,
        "code_id": 1,
        "date": dt.date(2001, 1, day),
        "slot": "",
        "output_filename": f"out_{day}.dat",
        "output_version": "1.0.0",
        "reason": "new",
        "bump": None,
        "build_key": f"key-{day}",
        "inputs": [3, 1, 2],
        "argv": ["code.py", "in.dat", "<OUTPUT>"],
        "attempt": 1,
        "status": RunStatus.RUNNING,
        "queued_at": now,
        "started_at": now,
    }


_INSERT_RUN = Prepared(RUN.insert().returning(RUN.c.id))
UPDATE_RUN = PREPARED_UPDATE_RUN.statement
_UPDATE_RUN = Prepared(UPDATE_RUN)


def _runs(connection: Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in connection.execute(select(RUN).order_by(RUN.c.id))]


def test_a_prepared_statement_writes_what_sqlalchemy_writes(engine: Engine) -> None:
    """Dates, datetimes, JSON, enums and RETURNING, one row and many, on each backend."""
    update = {
        "status": RunStatus.PROMOTING,
        "promoting": {"dst": "/a/b", "parents": [1, 2], "settle": True},
        "ended_at": dt.datetime(2026, 12, 3, 10, 0, 1, 5),
        "duration": 1.25,
        "stdout_tail": "é\n",
    }
    insert_run, update_run = Prepared(_INSERT_RUN.statement), Prepared(UPDATE_RUN)
    with engine.begin() as connection:
        fast = [insert_run.scalar(connection, _run_row(day)) for day in (1, 2)]
        update_run.execute(connection, [{"rid": rid, **update} for rid in fast])
        fast_rows = _runs(connection)
        connection.execute(RUN.delete())
        slow = [
            connection.execute(RUN.insert().returning(RUN.c.id), _run_row(day)).scalar_one()
            for day in (1, 2)
        ]
        connection.execute(UPDATE_RUN, [{"rid": rid, **update} for rid in slow])
        slow_rows = _runs(connection)
    assert [row[1:] for row in fast_rows] == [row[1:] for row in slow_rows]
    # ... and the driver ran them: no plan fell back to SQLAlchemy
    assert all(insert_run._plans.values()) and all(update_run._plans.values())
    assert fast_rows[0][1:] != fast_rows[1][1:]
    with engine.connect() as connection:  # read back through SQLAlchemy's types
        run = connection.execute(select(RUN).where(RUN.c.id == slow[0])).one()
    assert run.promoting == update["promoting"] and run.ended_at == update["ended_at"]
    assert run.date == dt.date(2001, 1, 1) and run.inputs == [3, 1, 2]


def test_the_upserts_of_coverage_count_the_same_through_the_driver(engine: Engine) -> None:
    with engine.begin() as connection:
        for day, version in ((1, "1.0.0"), (1, "1.1.0"), (2, "1.0.0")):
            record_coverage(
                connection, 2, dt.date(2001, 1, day), Version.parse(version), new_slot=day == 2
            )
        days = connection.execute(
            text("SELECT date, files, slots, version FROM coverage_day ORDER BY date")
        ).all()
        months = connection.execute(text("SELECT days, files, slots FROM coverage_month")).all()
    assert [(r.files, r.slots, r.version) for r in days] == [(2, 0, "1.1.0"), (1, 1, "1.0.0")]
    assert [tuple(r) for r in months] == [(2, 3, 1)]


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.begin()
        rid = _INSERT_RUN.scalar(connection, _run_row(1))
        with pytest.raises(IntegrityError) as caught:
            _INSERT_RUN.scalar(connection, {**_run_row(1), "id": rid})
        assert "run" in str(caught.value)
        connection.rollback()


@pytest.mark.postgres
def test_a_lost_connection_is_invalidated_and_not_handed_out_again(pg_engine: Engine) -> None:
    from tests.db.test_pg_checkout import _terminate

    engine = pg_engine
    with engine.connect() as connection:
        backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        connection.commit()
        connection.begin()
        _terminate(backend)
        with pytest.raises(DBAPIError) as caught:
            _INSERT_RUN.scalar(connection, _run_row(1))
        assert caught.value.connection_invalidated
        assert connection.invalidated
    with engine.connect() as connection:
        assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != backend


def test_sqlalchemy_runs_what_the_driver_cannot_be_handed_alone(engine: Engine) -> None:
    """A Python-side default (``attempt``), a missing parameter, no transaction begun, and
    listeners on the statements: each goes through Connection.execute, with its result."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    row = {k: v for k, v in _run_row(1).items() if k != "attempt"}
    with engine.begin() as connection:
        rid = _INSERT_RUN.scalar(connection, row)  # the default is SQLAlchemy's to apply
        assert connection.execute(select(RUN.c.attempt)).scalar_one() == 1
        with pytest.raises(Exception, match="rid"):
            _UPDATE_RUN.execute(connection, {"status": "x"})
    with engine.connect() as connection:
        assert not connection.in_transaction()
        _UPDATE_RUN.execute(connection, {"rid": rid, "status": RunStatus.FAILED})
        connection.commit()
    event.listen(engine, "before_cursor_execute", listen)
    try:
        with engine.begin() as connection:
            _UPDATE_RUN.execute(connection, {"rid": rid, "status": RunStatus.SUCCEEDED})
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert any(s.startswith("UPDATE run") for s in seen)
    with engine.connect() as connection:
        assert connection.execute(select(RUN.c.status)).scalar_one() == "succeeded"


def test_a_plan_is_compiled_once_per_set_of_names(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[tuple[str, ...]] = []
    real = prepared._compile

    def counting(statement: Any, dialect: Any, keys: tuple[str, ...]) -> Any:
        compiled.append(keys)
        return real(statement, dialect, keys)

    monkeypatch.setattr(prepared, "_compile", counting)
    statement = Prepared(UPDATE_RUN)
    with engine.begin() as connection:
        rid = _INSERT_RUN.scalar(connection, _run_row(1))
        for status in (RunStatus.PROMOTING, RunStatus.SUCCEEDED):
            statement.execute(connection, {"rid": rid, "status": status})
        statement.execute(connection, {"rid": rid, "status": RunStatus.SUCCEEDED, "host": "h"})
        assert connection.execute(select(RUN.c.host)).scalar_one() == "h"
    assert compiled == [("rid", "status"), ("host", "rid", "status")]


def test_a_text_statement_returns_its_rows_as_the_driver_gives_them(engine: Engine) -> None:
    statement = Prepared(text("SELECT CAST(:n AS INTEGER) + 1, 'x'"))
    with engine.begin() as connection:
        assert statement.rows(connection, {"n": 41}) == [(42, "x")]
    assert all(statement._plans.values())


def test_a_compiler_that_looks_different_hands_the_statement_to_sqlalchemy(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another SQLAlchemy release whose compiler lacks what db/prepared.py reads."""

    def gone(*_args: Any) -> None:
        raise AttributeError("'SQLCompiler' object has no attribute '_result_columns'")

    monkeypatch.setattr(prepared, "_plan_of", gone)
    statement = Prepared(_INSERT_RUN.statement)
    with engine.begin() as connection:
        rid = statement.scalar(connection, _run_row(1))
        assert connection.execute(select(RUN.c.id)).scalar_one() == rid
    assert list(statement._plans.values()) == [None]


@pytest.mark.postgres
def test_on_postgresql_a_file_s_coverage_and_a_batch_of_events_take_one_round_trip_each(
    pg_engine: Engine,
) -> None:
    """The two coverage upserts are one statement there; the event lock, its wake-up and
    the events themselves go as one query (and the lock is taken by it)."""
    import psycopg2.extensions

    from dbproc.feed.events import event_row, list_events, record_events

    sent: list[Any] = []

    class Counting(psycopg2.extensions.cursor):  # type: ignore[misc]
        def execute(self, query: Any, vars: Any = None) -> Any:
            sent.append(query)
            return super().execute(query, vars)

    with pg_engine.begin() as connection:
        connection.connection.dbapi_connection.cursor_factory = Counting  # type: ignore[union-attr]
        for day, version in ((1, "1.0.0"), (1, "1.1.0"), (2, "1.0.0")):
            sent.clear()
            record_coverage(
                connection, 2, dt.date(2001, 1, day), Version.parse(version), new_slot=day == 2
            )
            assert len(sent) == 1
        sent.clear()
        record_events(connection, [event_row("test.one")])
        assert len(sent) == 1
        sent.clear()
        record_events(connection, [event_row("test.many", detail={"i": i}) for i in range(3)])
        assert len(sent) == 1
        held = connection.execute(
            text(
                "SELECT count(*) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
        ).scalar_one()
        connection.connection.dbapi_connection.cursor_factory = None  # type: ignore[union-attr]
        days = connection.execute(
            text("SELECT date, files, slots, version FROM coverage_day ORDER BY date")
        ).all()
        months = connection.execute(text("SELECT days, files, slots FROM coverage_month")).all()
        events = list_events(connection)
    assert held == 1
    assert [(r.files, r.slots, r.version) for r in days] == [(2, 0, "1.1.0"), (1, 1, "1.0.0")]
    assert [tuple(r) for r in months] == [(2, 3, 1)]
    assert [e.kind for e in events] == ["test.one"] + ["test.many"] * 3
    assert [e.detail for e in events[1:]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert [e.seq for e in events] == sorted(e.seq for e in events)


def test_a_begin_sqlite_refuses_is_raised_as_sqlalchemy_raises_it(tmp_path: Path) -> None:
    """``BEGIN IMMEDIATE`` runs on the driver; a database another writer holds gives
    SQLAlchemy's ``OperationalError``, and the connection begins once it is free."""
    import sqlite3

    path = tmp_path / "held.sqlite"
    engine = create_db_engine(f"sqlite:///{path}", create=True)
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with engine.connect() as connection:
            connection.connection.dbapi_connection.execute("PRAGMA busy_timeout = 10")  # type: ignore[union-attr]
            with pytest.raises(OperationalError, match="locked") as caught:
                connection.begin()
            assert "BEGIN IMMEDIATE" in str(caught.value)
            blocker.execute("ROLLBACK")
            if connection.in_transaction():
                connection.rollback()
            with connection.begin():
                assert connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        blocker.close()
        engine.dispose()
