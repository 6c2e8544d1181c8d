"""The fence a pass checks before each commit (control/os_lock.py ``OsLock.check``): on
PostgreSQL the lock's connection is pinged only when its socket has something to read, so
a held lock costs no round trip, and a lock whose session the server ended is seen lost."""

from __future__ import annotations

import select
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text

from dbproc.control.os_lock import OsLock
from dbproc.db.engine import create_db_engine
from tests.conftest import PG_URL, require_postgres
from tests.db.test_pg_checkout import _terminate

pytestmark = pytest.mark.postgres


@pytest.fixture
def lock() -> Iterator[OsLock]:
    require_postgres()
    engine = create_db_engine(PG_URL)
    lock = OsLock(engine)
    assert lock.try_acquire()
    yield lock
    lock.release()
    engine.dispose()


def _statements_on(lock: OsLock) -> list[str]:
    """The statements sent on the lock's connection from now on."""
    seen: list[str] = []
    assert lock._pg_conn is not None

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(lock._pg_conn, "before_cursor_execute", before)
    return seen


def _backend_of(lock: OsLock) -> int:
    assert lock._pg_conn is not None
    return int(lock._pg_conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _another_pass_can_lock(engine: Engine) -> bool:
    other = OsLock(engine)
    try:
        return other.try_acquire()
    finally:
        other.release()


def test_a_held_lock_is_checked_without_a_round_trip(lock: OsLock) -> None:
    sent = _statements_on(lock)
    assert all(lock.check() for _ in range(5))
    assert sent == []
    assert not _another_pass_can_lock(lock.engine)


def test_a_lock_whose_session_the_server_ended_is_lost(lock: OsLock) -> None:
    _terminate(_backend_of(lock))
    assert lock.check() is False
    assert lock.check() is False  # and stays lost
    assert _another_pass_can_lock(lock.engine)  # the server freed the advisory lock


def test_a_socket_with_something_harmless_to_read_is_pinged_and_the_lock_held(
    lock: OsLock,
) -> None:
    assert lock._pg_conn is not None
    lock._pg_conn.execute(text("LISTEN dbproc_fence_test"))
    notifier = create_engine(PG_URL)
    try:
        with notifier.begin() as conn:
            conn.execute(text("NOTIFY dbproc_fence_test"))
    finally:
        notifier.dispose()
    # the server sends the notification to the idle connection on its own: wait for it
    fileno = lock._pg_conn.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
    assert select.select([fileno], [], [], 10)[0], "the notification did not arrive"
    sent = _statements_on(lock)
    assert lock.check() is True
    assert sent == ["SELECT 1"]
    assert not _another_pass_can_lock(lock.engine)
