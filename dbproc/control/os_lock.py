"""The mutual-exclusion half of the pass lock: ``flock`` on ``<database>.lock`` for SQLite,
a session advisory lock on a dedicated connection for PostgreSQL (see control/locking.py).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from dbproc.db.engine import pg_socket_readable, sqlite_path


class OsLock:
    """The mutual-exclusion part: flock for SQLite, an advisory lock for PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._fd: int | None = None
        self._pg_engine: Engine | None = None
        self._pg_conn: Connection | None = None
        self._key: int | None = None

    def try_acquire(self) -> bool:
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            path = sqlite_path(url)
            if path is None:
                return True  # in-memory: nothing else can see it
            lock_path = Path(str(path) + ".lock")
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except PermissionError:
                # a user who may only read the database (``dbproc status``) still probes
                try:
                    fd = os.open(lock_path, os.O_RDONLY)
                except FileNotFoundError:
                    return True  # no lock file: no pass can hold it
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return False
                raise
            self._fd = fd
            return True
        self._pg_engine = create_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args=_pg_connect_args(url),
        )
        conn = self._pg_engine.connect()
        schema_key = conn.execute(
            text("SELECT current_database() || ':' || coalesce(current_schema(), '')")
        ).scalar_one()
        digest = hashlib.sha256(f"dbproc:{schema_key}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
        if not got:
            conn.close()
            self._pg_engine.dispose()
            self._pg_engine = None
            return False
        self._pg_conn = conn
        return True

    def check(self) -> bool:
        """Still held? (PostgreSQL: the lock connection is alive.)

        The lock lives as long as its session, and a session the server ends says so on
        the connection's socket (see :func:`~dbproc.db.engine.pg_socket_readable`): the
        connection is pinged only when its socket has something to read, so the fence a
        pass checks before each commit costs no round trip while the lock is held. The
        pass's own connections go to the same server, so a session lost without a word
        (the server's host gone) fails their commits as well.
        """
        if self._pg_conn is None:
            return True
        try:
            if not pg_socket_readable(self._pg_conn.connection.dbapi_connection):
                return True
            self._pg_conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - a closed socket, a failed ping: the lock is gone
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
        if self._pg_conn is not None:
            try:
                self._pg_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            except Exception:  # noqa: BLE001 - the connection may be gone; the lock with it
                pass
            finally:
                self._pg_conn.close()
                self._pg_conn = None
        if self._pg_engine is not None:
            self._pg_engine.dispose()
            self._pg_engine = None


def _pg_connect_args(url: Any) -> dict[str, Any]:
    return {
        "connect_timeout": 10,
        "application_name": "dbproc-lock",
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
