"""What the pass is doing now, and proof that it is making progress.

Library code calls :func:`report` ("inspecting X for 12 s", "running 2 codes") and
:func:`beat` from its loops; both are cheap and do nothing outside a pass. The pass lock
(:class:`dbproc.control.locking.PassLock`) listens while it is held: its heartbeat
carries the time of the last progress, not the time of the beat, so a pass stuck outside
its loops (a hung read) ages and is taken over after ``stale_after_seconds``.
"""

from __future__ import annotations

import threading
import time


class Activity:
    """The last progress (monotonic and wall time) and the text of what goes on."""

    def __init__(self, interval: float = 5.0) -> None:
        #: how often loops that wait should come back and say they are alive
        self.interval = interval
        self.text: str | None = None
        self.last = time.monotonic()
        self.last_wall = time.time()
        self.lock = threading.Lock()

    def report(self, text: str | None) -> None:
        with self.lock:
            self.text = text
            self.last = time.monotonic()
            self.last_wall = time.time()

    def beat(self) -> None:
        self.last = time.monotonic()
        self.last_wall = time.time()


_current: Activity | None = None


def listen(interval: float = 5.0) -> Activity:
    """Start recording progress (the pass lock does, while held); waiting loops should
    come back every ``interval`` seconds."""
    global _current
    _current = Activity(interval)
    return _current


def interval(default: float = 5.0) -> float:
    """How long a loop may wait before it says it is alive (see :func:`listen`)."""
    current = _current
    return min(default, current.interval) if current is not None else default


def stop(listener: Activity) -> None:
    """Stop recording (only the listener that started it)."""
    global _current
    if _current is listener:
        _current = None


def report(text: str | None) -> None:
    """Say what the pass does now (and that it progresses)."""
    current = _current
    if current is not None:
        current.report(text)


def beat() -> None:
    """Say that the pass progresses, without changing what it says it does."""
    current = _current
    if current is not None:
        current.beat()
