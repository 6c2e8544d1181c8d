"""Taking the lock from a pass that holds it but makes no progress.

A pass refreshes its heartbeat only when it progresses (control/activity.py), and every
wait on user code is bounded, so a heartbeat older than ``[lock] stale_after_seconds``
means the pass is stuck outside user code (a hung read of a network filesystem, say).
Its OS lock is still held, so it must be stopped before the lock can be had:

- on this host: SIGTERM (the pass ends as if interrupted, when it can), then SIGKILL;
- on another host, with PostgreSQL: its lock connection is terminated on the server;
- on another host with SQLite nothing can be done from here (exit 4 names it).

A pass stopped like this is crash-safe by design (reliability.md); the usual takeover of
its row and recovery follow.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from dbproc.control.pass_holders import Holder, pid_alive

if TYPE_CHECKING:
    from dbproc.control.os_lock import OsLock

logger = logging.getLogger("dbproc.locking")

#: seconds given to a stopped pass to let go of the lock, per step
LET_GO_SECONDS = 10.0


def take_over_stuck(os_lock: OsLock, holder: Holder, host: str) -> bool:
    """Stop ``holder``'s pass and take the OS lock; False when that is not possible."""
    logger.warning(
        "%s has made no progress for %.0f s: it is stuck; stopping it and taking over",
        holder.describe(),
        holder.heartbeat_age,
    )
    if holder.host == host:
        if not pid_alive(holder.pid, holder.pid_start):
            return _wait_for(os_lock, LET_GO_SECONDS)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(holder.pid, sig)
            except ProcessLookupError:
                pass
            if _wait_for(os_lock, LET_GO_SECONDS):
                return True
        return False
    if os_lock.engine.url.get_backend_name() == "postgresql" and os_lock._key is not None:
        _terminate_lock_backend(os_lock)
        return _wait_for(os_lock, LET_GO_SECONDS)
    logger.error(
        "cannot stop a stuck pass on host %s from here: stop it there, or remove its lock",
        holder.host,
    )
    return False


def _wait_for(os_lock: OsLock, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    delay = 0.05
    while True:
        if os_lock.try_acquire():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _terminate_lock_backend(os_lock: OsLock) -> None:
    """End the server session that holds the advisory lock (its pass's lock connection)."""
    assert os_lock._key is not None
    key = os_lock._key & 0xFFFFFFFFFFFFFFFF
    engine = create_engine(os_lock.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = "
                    "'advisory' AND granted AND classid = CAST(:hi AS oid) AND "
                    "objid = CAST(:lo AS oid) AND objsubid = 1"
                ),
                {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
            )
    except Exception as exc:  # noqa: BLE001 - then the lock stays held: exit 4
        logger.error("could not end the stuck pass's lock connection: %s", exc)
    finally:
        engine.dispose()
