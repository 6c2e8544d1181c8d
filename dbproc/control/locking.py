"""One pass at a time (contract section 9; reliability.md B1).

The lock is an OS lock on ``<database>.lock`` for SQLite (``flock``), or a session
advisory lock on a dedicated connection for PostgreSQL; both vanish within milliseconds
of a ``kill -9``. Beside it, a ``pass_record`` row in state ``running`` (host, pid,
process start time, heartbeat) says who works. Finding such a row when the lock is free
means the last pass died: it is taken over automatically (and logged) when its process
is gone on this host, or when its heartbeat is older than ``stale_after_seconds`` on
another host.

This module holds the pass row's life (:class:`PassLock`: acquire, heartbeat, release)
and ``dbproc unlock``; the OS lock is :mod:`dbproc.control.os_lock`, reading the pass rows
and telling a live holder from a dead one :mod:`dbproc.control.pass_holders`, stopping a
stuck holder :mod:`dbproc.control.takeover`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.control import activity
from dbproc.control.os_lock import OsLock
from dbproc.control.pass_holders import (
    Holder,
    holder_is_alive,
    process_start_time,
    running_holders,
)
from dbproc.control.takeover import take_over_stuck
from dbproc.db.engine import read_only
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
