"""Watching a started code's process group until it ends: waiting on it (a pidfd, or
polling where there is none), enforcing the timeout, noticing a cancel, and stopping the
group (SIGTERM, then SIGKILL after the grace). All in the thread that runs the job, which
copies the code's stdout and stderr pipes into their logs while it waits (one ``poll``
on the pidfd and the pipes), so that a code never blocks on a full pipe, not even during
the grace. Used by :mod:`dbproc.executors.worker`."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from dbproc.executors import launch
from dbproc.executors.base import CANCEL_FILE, JobSpec
from dbproc.executors.capped import Streams


def kill_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid`` (gone already: nothing to do)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def ask_group_to_stop(pgid: int, *, timed: bool) -> None:
    """SIGTERM to the code's process group. With a wrapper that forks the code (the
    group's leader: the launcher, or GNU time), the wrapper is spared, so that it
    outlives its code and reports how the code ended (a SIGKILL after the grace takes it
    too)."""
    if not timed:
        kill_group(pgid, signal.SIGTERM)
        return
    for pid in launch.group_members(pgid):
        if pid != pgid:
            try:
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass


def wait_for(
    pid: int, pidfd: int | None, seconds: float, streams: Streams
) -> tuple[int, int] | None:
    """Wait up to ``seconds`` for ``pid``, copying its pipes meanwhile; (status, maxrss
    KiB) when it ended."""
    if pidfd is not None:
        if not streams.wait((pidfd,), seconds):
            return None
    else:
        deadline = time.monotonic() + seconds
        delay = 0.001
        while True:
            found, status, usage = os.wait4(pid, os.WNOHANG)
            if found:
                return status, usage.ru_maxrss
            if time.monotonic() >= deadline:
                return None
            streams.wait((), delay)
            delay = min(delay * 2, 0.05)
    found, status, usage = os.wait4(pid, 0)
    return status, usage.ru_maxrss


def stop_asked(run_root: Path, should_stop: Callable[[], bool] | None) -> bool:
    """Is there a ``CANCEL`` file in the run root, or does ``should_stop`` say so?"""
    if (run_root / CANCEL_FILE).exists():
        return True
    try:
        return should_stop is not None and bool(should_stop())
    except Exception:  # noqa: BLE001 - a broken hook must not stop the code
        return False


def watch(
    spec: JobSpec,
    pid: int,
    pidfd: int | None,
    started: float,
    run_root: Path,
    should_stop: Callable[[], bool] | None,
    streams: Streams,
    *,
    timed: bool,
) -> tuple[tuple[int, int] | None, bool, bool]:
    """Wait for the code (group leader ``pid``) to end, copying its ``streams`` and
    stopping its group on the timeout or a cancel; then close ``pidfd`` and kill what the
    code left in its group (the caller drains the streams after that).
    Returns (status and maxrss, or None; timed out?; cancelled?)."""
    pgid = pid
    deadline = started + spec.timeout if spec.timeout else None
    timed_out = cancelled = False
    ended: tuple[int, int] | None = None
    try:
        while ended is None:
            step = 0.5
            if deadline is not None:
                step = min(step, max(0.0, deadline - time.time()))
            ended = wait_for(pid, pidfd, step, streams)
            if ended is not None:
                break
            if deadline is not None and time.time() >= deadline and not timed_out:
                timed_out = True
            if stop_asked(run_root, should_stop):
                cancelled = True
            if timed_out or cancelled:
                ask_group_to_stop(pgid, timed=timed)
                ended = wait_for(pid, pidfd, spec.kill_grace, streams)
                if ended is None:
                    kill_group(pgid, signal.SIGKILL)
                    ended = wait_for(pid, pidfd, 60.0, streams)
    finally:
        if pidfd is not None:
            os.close(pidfd)
        kill_group(pgid, signal.SIGKILL)  # stragglers the code left behind
    return ended, timed_out, cancelled


def open_pidfd(pid: int) -> int | None:
    """A pidfd of ``pid`` to wait on without polling (Linux); None where there is none."""
    if hasattr(os, "pidfd_open"):
        try:
            return os.pidfd_open(pid)
        except OSError:
            return None
    return None
