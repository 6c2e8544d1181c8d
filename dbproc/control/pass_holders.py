"""Who a ``running`` pass row says is working, and whether that process still lives.

A pass row records host, pid and the process start time; these helpers read the rows and
tell a live holder from a dead one (a reused pid is told apart by its start time).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db.models import PassRecord, PassState

if TYPE_CHECKING:  # (a type only: reading the lock needs no mission-file code)
    from dbproc.mission import LockSettings


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
