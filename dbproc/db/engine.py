"""Turning ``--db`` into an engine, and sessions that never hold a transaction by accident.

SQLite connections use WAL, foreign keys, ``synchronous=FULL`` and a busy timeout, and
begin their transactions with ``BEGIN IMMEDIATE`` so that two writers wait for each other
instead of failing (SQLAlchemy's documented pysqlite recipe); work that only reads uses
:func:`read_only`, whose deferred ``BEGIN`` never waits for a writer in WAL mode.

A PostgreSQL connection is checked when the pool hands it out, without a round trip:
a server that drops a connection (``pg_terminate_backend``, a restart) says so on its
socket, so only a connection whose socket has something to read while it sat idle is
pinged, and replaced when the ping fails (:func:`_pg_alive`). A pass's units then cost
one round trip less each than SQLAlchemy's ``pool_pre_ping``.

A SQLite file this user may not write (or in a folder it may not write) is opened
read-only (``mode=ro``, else ``immutable``), so every reading command works on it; a
missing file is created only when the caller says so (``config apply``, ``db upgrade``).
A path or URL that cannot be opened raises :class:`~dbproc.errors.DatabaseUnreachable`
(exit 2, contract section 11).
"""

from __future__ import annotations

import importlib.util
import os
import re
import select
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError
from sqlalchemy.exc import DatabaseError as SADatabaseError
from sqlalchemy.orm import Session, sessionmaker

from dbproc.db.prepared import driver_error, hold_statements, instrumented
from dbproc.errors import DatabaseError, DatabaseUnreachable, SchemaMissing, UsageError

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: execution option: this connection only reads (SQLite: a deferred BEGIN, which in WAL
#: mode never waits for a writer, instead of BEGIN IMMEDIATE)
READ_ONLY = "dbproc_read_only"


def database_url(value: str) -> URL:
    """``--db`` value → URL: text with ``://`` is a SQLAlchemy URL, anything else a SQLite path."""
    if not value or not value.strip():
        raise UsageError("no database given; pass --db URL or set DBPROC_DB")
    if "://" in value:
        try:
            url = make_url(value)
            url.port  # noqa: B018 - a bad port only shows when it is read
        except (ArgumentError, ValueError) as exc:
            reason = str(exc).replace(value, mask_password(value))
            raise UsageError(
                f"--db {mask_password(value)!r} is not a database URL: {reason}"
            ) from None
        return _with_installed_driver(url)
    path = Path(value).expanduser().resolve()
    return URL.create("sqlite", database=str(path))


def _with_installed_driver(url: URL) -> URL:
    """A bare ``postgresql://`` URL names SQLAlchemy's default driver (psycopg 3 since
    SQLAlchemy 2.1); dbproc installs psycopg2, so use it when psycopg 3 is not there."""
    if url.drivername != "postgresql":
        return url
    if importlib.util.find_spec("psycopg") is None:
        return url.set(drivername="postgresql+psycopg2")
    return url


#: the user name, then everything up to the last "@" (over-masking is the safe side)
_USERINFO = re.compile(r"(?P<head>://[^/?#@:]*:)(?P<secret>.*)@", re.DOTALL)


def mask_password(text: str) -> str:
    """``text`` with the password of anything shaped like ``scheme://user:password@`` hidden
    (for URLs too broken to parse)."""
    return _USERINFO.sub(lambda m: f"{m['head']}***@", text)


def display_url(url: URL | str) -> str:
    """The URL with any password hidden, for messages and logs."""
    if isinstance(url, str):
        try:
            url = database_url(url)
        except UsageError:
            return "<unparseable database URL>"
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL (None for other backends or in-memory databases)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser().resolve()


def _on_sqlite_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.close()


def _on_sqlite_connect_read_only(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _on_sqlite_begin(conn: Any) -> None:
    _begin(conn, "BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def _on_sqlite_begin_read_only(conn: Any) -> None:
    _begin(conn, "BEGIN")


def _begin(conn: Any, sql: str) -> None:
    """Begin on the driver's connection (a unit of the process loop costs three; through
    ``exec_driver_sql`` each is about 20 µs more), its error raised as SQLAlchemy
    raises it; through SQLAlchemy when something listens to the statements."""
    if instrumented(conn):
        conn.exec_driver_sql(sql)
        return
    try:
        conn.connection.dbapi_connection.execute(sql)
    except sqlite3.Error as error:
        raise driver_error(conn, None, sql, (), error) from error


def read_only(engine: Engine) -> Engine:
    """``engine`` for work that only reads: on SQLite its transactions do not take the
    write lock, so they neither wait for a pass's writes nor make the pass wait."""
    return engine.execution_options(**{READ_ONLY: True})


def create_db_engine(
    url: URL | str, *, check: bool = True, create: bool = True, **kwargs: Any
) -> Engine:
    """An engine for ``url``; with ``check``, connect once and turn failure into a clear error.

    SQLite: a missing file is created only with ``create`` (otherwise
    :class:`~dbproc.errors.SchemaMissing`, and no file appears); a file this user may
    only read is opened read-only (``mode=ro``, else ``immutable``). A path or URL that
    cannot be opened raises :class:`~dbproc.errors.DatabaseUnreachable` (exit 2).
    """
    if isinstance(url, str):
        url = database_url(url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(url, create=create, **kwargs)
    elif backend == "postgresql":
        # PGAPPNAME (libpq's own variable) tags a deployment's connections
        connect_args = {
            "connect_timeout": 10,
            "application_name": os.environ.get("PGAPPNAME") or "dbproc",
        }
        try:
            engine = create_engine(url, connect_args=connect_args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - e.g. missing driver
            raise DatabaseError(f"cannot use database {display_url(url)}: {exc}") from exc
        if not kwargs.get("pool_pre_ping"):
            event.listen(engine, "checkout", _pg_alive)
        hold_statements(engine)  # dbproc.db.prepared.together
    else:
        raise UsageError(f"database {display_url(url)}: only sqlite and postgresql are supported")
    if check:
        try:
            with engine.connect():
                pass
        except (OperationalError, SADatabaseError) as exc:
            engine.dispose()
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0:1]
            raise DatabaseUnreachable(
                f"cannot connect to database {display_url(url)}: {' '.join(reason)}"
                + _hint(url, " ".join(reason))
            ) from exc
    return engine


def pg_socket_readable(dbapi_connection: Any) -> bool:
    """Whether the server sent anything on an idle PostgreSQL connection. A healthy idle
    connection's socket is silent; one the server drops (``pg_terminate_backend``, a
    restart, ``idle_session_timeout``) holds the reason and the end of the stream, and one
    whose peer vanished reports the TCP keepalive's error. Asked without a round trip;
    raises ``OSError``/``ValueError`` when the socket cannot be polled (closed)."""
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    return bool(readable)


def _pg_alive(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool check-out of a PostgreSQL connection: an idle connection's socket has nothing
    to read unless the server sent something, which for a connection it drops is the
    reason and the end of the stream. Only then is it pinged; a failed ping (or a socket
    that cannot be polled) raises DisconnectionError, and the pool connects afresh."""
    try:
        if not pg_socket_readable(dbapi_connection):
            return
    except (OSError, ValueError) as exc:
        raise DisconnectionError(f"the connection's socket is gone: {exc}") from exc
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:  # noqa: BLE001 - any failure of the ping means a new connection
        raise DisconnectionError(f"the server dropped the connection: {exc}") from exc


def _hint(url: URL, reason: str) -> str:
    if "not a database" in reason:
        return "; is --db the right file?"
    if "password authentication failed" in reason:
        return "; check the user and password in --db (or ~/.pgpass)"
    if "Connection refused" in reason or "could not connect" in reason:
        return "; is the server running, and are host and port in --db right?"
    return ""


def _sqlite_engine(url: URL, *, create: bool, **kwargs: Any) -> Engine:
    path = sqlite_path(url)
    writable = path is None or _check_sqlite_path(url, path, create=create)
    connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    if writable:
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    assert path is not None
    engine = create_engine(url, creator=lambda: _connect_read_only(path), **kwargs)
    event.listen(engine, "connect", _on_sqlite_connect_read_only)
    event.listen(engine, "begin", _on_sqlite_begin_read_only)
    return engine


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to ``path``: ``mode=ro``, or ``immutable`` when a WAL file
    cannot be read that way (its ``-shm`` cannot be created in a folder we may not write)."""
    uri = f"file:{quote(str(path))}?mode=ro"
    timeout = SQLITE_BUSY_TIMEOUT_MS / 1000
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        conn.close()
        conn = sqlite3.connect(
            uri + "&immutable=1", uri=True, timeout=timeout, check_same_thread=False
        )
    return conn


def _check_sqlite_path(url: URL, path: Path, *, create: bool) -> bool:
    """Whether the file can be opened for writing; raise when it cannot be opened at all."""
    folder = path.parent
    if path.exists():
        if path.is_dir():
            raise DatabaseUnreachable(
                f"SQLite database {display_url(url)} is a folder; give the path of a file"
            )
        if not os.access(path, os.R_OK):
            raise DatabaseUnreachable(
                f"SQLite database {display_url(url)} is not readable by this user; "
                "fix its permissions"
            )
        # writing needs the file and the folder (for the -wal and -shm files)
        return os.access(path, os.W_OK) and os.access(folder, os.W_OK | os.X_OK)
    if not folder.is_dir():
        raise DatabaseUnreachable(
            f"cannot open SQLite database {display_url(url)}: folder "
            f"{folder} does not exist; create it or give another path"
        )
    if not create:
        raise SchemaMissing(
            f"no database at {path}: the file does not exist (nothing was created); "
            "check the --db path, or create it with `dbproc config apply MISSION_FILE`"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseUnreachable(
            f"cannot create SQLite database {display_url(url)}: folder "
            f"{folder} is not writable; fix its permissions or use another path"
        )
    return True


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)
