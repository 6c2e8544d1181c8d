"""One pass at a time (contract section 9; reliability.md B1).

The lock is an OS lock on ``<database>.lock`` for SQLite (``flock``), or a session
advisory lock on a dedicated connection for PostgreSQL; both vanish within milliseconds
of a ``kill -9``. Beside it, a ``pass_record`` row in state ``running`` (host, pid,
process start time, heartbeat) says who works. Finding such a row when the lock is free
means the last pass died: it is taken over automatically (and logged) when its process
is gone on this host, or when its heartbeat is older than ``stale_after_seconds`` on
another host.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import getpass
import hashlib
import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from dbproc.clock import utcnow
from dbproc.control import activity
from dbproc.control.takeover import take_over_stuck
from dbproc.db.engine import read_only, sqlite_path
from dbproc.db.models import PassRecord, PassState
from dbproc.db.unit import commit
from dbproc.errors import DatabaseError, LockHeld
from dbproc.faults import crash_point
from dbproc.feed.hooks import note_pass_finished

if TYPE_CHECKING:  # (a type only: reading the lock needs no mission-file code)
    from dbproc.mission import LockSettings

logger = logging.getLogger("dbproc.locking")

#: how soon a changed activity text reaches the pass row (seconds)
ACTIVITY_SECONDS = 1.0


def process_start_time(pid: int) -> str | None:
    """An id of the process's start (boot id + start tick), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
        fields = stat[stat.rindex(")") + 2 :].split()
        start_ticks = fields[19]
    except (OSError, ValueError, IndexError):
        return None
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read().strip()
    except OSError:
        boot = "?"
    return f"{boot}:{start_ticks}"


def pid_alive(pid: int, start: str | None) -> bool:
    """True when ``pid`` runs on this host and (when known) started at ``start``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start is None:
        return True
    current = process_start_time(pid)
    return current is None or current == start


@dataclass(frozen=True)
class Holder:
    """Who a ``running`` pass row says is working."""

    pass_id: int
    host: str
    pid: int
    pid_start: str | None
    heartbeat_age: float
    command: str

    def describe(self) -> str:
        """Human words for the holder."""
        return (
            f"pass {self.pass_id} ({self.command}) on host {self.host}, pid {self.pid}, "
            f"heartbeat {self.heartbeat_age:.0f} s ago"
        )


def running_holders(session: Session) -> list[Holder]:
    """Pass rows still marked running."""
    now = utcnow()
    rows = session.scalars(
        select(PassRecord).where(PassRecord.state == PassState.RUNNING).order_by(PassRecord.id)
    ).all()
    return [
        Holder(r.id, r.host, r.pid, r.pid_start, (now - r.heartbeat_at).total_seconds(), r.command)
        for r in rows
    ]


def holder_is_alive(holder: Holder, settings: LockSettings, host: str) -> bool:
    """Is the pass of ``holder`` still working (as far as this host can tell)?

    Only asked by a process that holds the OS lock: a row of this very process is then
    an earlier pass of ours that could not close its row (the lock proves it is over).
    """
    if holder.host == host:
        if holder.pid == os.getpid() and holder.pid_start == process_start_time(holder.pid):
            return False
        return pid_alive(holder.pid, holder.pid_start)
    return holder.heartbeat_age < settings.stale_after_seconds


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
        """Still held? (PostgreSQL: the lock connection answers.)"""
        if self._pg_conn is None:
            return True
        try:
            self._pg_conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001
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


class PassLock:
    """Acquire the pass lock and the pass row; heartbeat; release with an outcome.

    Use as ``with PassLock(engine, settings, "run") as lock: ...``; ``lock.pass_id`` is
    the pass row, ``lock.takeovers`` the crashed passes taken over.
    """

    def __init__(self, engine: Engine, settings: LockSettings, command: str) -> None:
        self.engine = engine
        self.settings = settings
        self.command = command
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.pass_id: int | None = None
        self.takeovers: list[Holder] = []
        self._os_lock = OsLock(engine)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress: activity.Activity | None = None
        self.lost = False

    def acquire(self) -> int:
        """Take the lock and write our pass row; raise :class:`LockHeld` when busy."""
        if not self._os_lock.try_acquire() and not self._take_over_stuck():
            raise LockHeld(self._busy_message())
        try:
            with Session(self.engine) as session:
                for holder in running_holders(session):
                    if holder_is_alive(holder, self.settings, self.host):
                        raise LockHeld(
                            f"another pass is working: {holder.describe()}"
                            + (
                                "; its process is alive on this host"
                                if holder.host == self.host
                                else "; if it is gone, wait for its heartbeat to age past "
                                f"{self.settings.stale_after_seconds:.0f} s or run "
                                "`dbproc unlock --force`"
                            )
                        )
                    logger.warning(
                        "previous %s was not finished (crashed or killed); "
                        "taking over and recovering",
                        holder.describe(),
                    )
                    session.execute(
                        update(PassRecord)
                        .where(PassRecord.id == holder.pass_id)
                        .values(
                            state=PassState.CRASHED,
                            ended_at=utcnow(),
                            outcome="crashed: taken over by a later pass",
                        )
                    )
                    self.takeovers.append(holder)
                now = utcnow()
                row = PassRecord(
                    command=self.command,
                    host=self.host,
                    pid=self.pid,
                    pid_start=process_start_time(self.pid),
                    user=_user(),
                    started_at=now,
                    heartbeat_at=now,
                    state=PassState.RUNNING,
                )
                session.add(row)
                commit(session)
                self.pass_id = row.id
        except BaseException:
            self._os_lock.release()
            raise
        crash_point("pass.flagged")
        self._progress = activity.listen(max(0.05, self.settings.heartbeat_seconds))
        self._thread = threading.Thread(target=self._beat, name="dbproc-heartbeat", daemon=True)
        self._thread.start()
        return self.pass_id

    def _take_over_stuck(self) -> bool:
        """The OS lock is held: when its holder has made no progress for
        ``stale_after_seconds``, stop it and take the lock (see control/takeover.py)."""
        try:
            with Session(read_only(self.engine)) as session:
                holders = running_holders(session)
        except Exception:  # noqa: BLE001
            return False
        stuck = [h for h in holders if h.heartbeat_age >= self.settings.stale_after_seconds]
        if not stuck or len(stuck) != len(holders):
            return False
        return take_over_stuck(self._os_lock, stuck[-1], self.host)

    def _busy_message(self) -> str:
        try:
            with Session(read_only(self.engine)) as session:
                holders = running_holders(session)
        except Exception:  # noqa: BLE001
            holders = []
        who = holders[0].describe() if holders else "another dbproc process"
        return f"another pass holds the lock: {who}; this pass did nothing"

    def _beat(self) -> None:
        interval = max(0.05, self.settings.heartbeat_seconds)
        tick = min(interval, ACTIVITY_SECONDS)
        written: tuple[float, str | None] | None = None
        since = 0.0
        while not self._stop.wait(tick):
            since += tick
            progress = self._progress
            changed = progress is not None and (written is None or written[1] != progress.text)
            if since < interval and not changed:
                continue  # a new activity text is shown within a second or so
            since = 0.0
            if not self._os_lock.check():
                self.lost = True
                logger.error(
                    "the pass lock was lost (database connection gone); "
                    "the pass stops before its next commit"
                )
                return
            if progress is None:
                continue
            written = (progress.last_wall, progress.text)
            self._write_beat(progress)

    def _write_beat(self, progress: activity.Activity) -> None:
        # the time of the pass's last progress, not of this beat: a pass stuck outside
        # its loops ages, and is taken over after stale_after_seconds
        last = dt.datetime.fromtimestamp(progress.last_wall, dt.UTC).replace(tzinfo=None)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(PassRecord)
                    .where(PassRecord.id == self.pass_id)
                    .values(heartbeat_at=last, activity=_clip(progress.text))
                )
        except Exception as exc:  # noqa: BLE001 - a missed beat is not fatal
            logger.warning("heartbeat failed: %s", exc)

    def ensure_held(self) -> None:
        """Raise before a commit when the lock was lost (fencing)."""
        if self.lost or not self._os_lock.check():
            self.lost = True
            raise DatabaseError(
                "the pass lock was lost (database connection dropped); "
                "stopping this pass; the next pass recovers"
            )

    def release(
        self, state: PassState, outcome: str, summary: dict[str, Any] | None = None
    ) -> None:
        """Close our pass row and free the lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._progress is not None:
            activity.stop(self._progress)
        try:
            if self.pass_id is not None:
                with self.engine.begin() as conn:
                    conn.execute(
                        update(PassRecord)
                        .where(PassRecord.id == self.pass_id)
                        .values(
                            state=state,
                            ended_at=utcnow(),
                            outcome=outcome,
                            summary=summary,
                            heartbeat_at=utcnow(),
                            activity=None,
                        )
                    )
                    note_pass_finished(conn, self.pass_id, state, outcome, summary)
        finally:
            self._os_lock.release()

    def __enter__(self) -> PassLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if self._stop.is_set():
            return
        if exc is None:
            self.release(PassState.DONE, "ok")
        elif isinstance(exc, KeyboardInterrupt):
            signum = getattr(exc, "signum", signal.SIGINT)
            self.release(
                PassState.INTERRUPTED,
                f"interrupted by {signal.Signals(signum).name}; running codes were "
                "stopped and their runs recorded cancelled",
            )
        else:
            self.release(PassState.FAILED, f"error: {type(exc).__name__}: {exc}"[:2000])


def _clip(text: str | None) -> str | None:
    return text[:500] if text else text


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@dataclass(frozen=True)
class UnlockResult:
    """What ``dbproc unlock`` cleared."""

    cleared: list[Holder]


def unlock(engine: Engine, settings: LockSettings, *, force: bool = False) -> UnlockResult:
    """Clear pass rows whose holder is gone; refuse (LockHeld) while a holder is alive."""
    os_lock = OsLock(engine)
    if not os_lock.try_acquire():
        raise LockHeld("a pass holds the lock right now and is alive; nothing to unlock")
    host = socket.gethostname()
    try:
        with Session(engine) as session:
            holders = running_holders(session)
            for holder in holders:
                alive = holder_is_alive(holder, settings, host)
                if alive and (holder.host == host or not force):
                    raise LockHeld(
                        f"{holder.describe()} looks alive; refusing to unlock"
                        + (
                            ""
                            if holder.host == host
                            else " (use --force if you know that host's pass is gone)"
                        )
                    )
            for holder in holders:
                session.execute(
                    update(PassRecord)
                    .where(PassRecord.id == holder.pass_id)
                    .values(
                        state=PassState.CRASHED,
                        ended_at=utcnow(),
                        outcome="crashed: cleared by dbproc unlock",
                    )
                )
            commit(session)
            return UnlockResult(holders)
    finally:
        os_lock.release()
