"""SIGTERM and SIGHUP end a pass like Ctrl-C does (contract section 10).

While a pass runs (in the main thread), SIGINT, SIGTERM and SIGHUP raise
:class:`Interrupted`, a KeyboardInterrupt that remembers its signal. The pass unwinds as
for Ctrl-C: running codes are stopped and their runs recorded ``cancelled``
(build/bounds.py), the pass row is closed ``interrupted`` and the lock released
(control/locking.py), and the CLI prints one line and exits 128 + the signal number.

A few steps must not be cut in two: between a run's row being committed ``running`` and
its job being known to the executor and the process loop, an interrupt would leave a code
that nobody stops (the pass then waits for it as it exits) and a row nobody records. Such
steps run under :func:`held`: a stop signal that arrives meanwhile is raised when the step
ends; a second one is raised at once, so a step that hangs can still be interrupted.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A pass was told to stop by ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: how deep the main thread is in :func:`held` blocks, and the signal they hold back
_holding = 0
_held_signal: int | None = None


def _raise(signum: int, frame: FrameType | None) -> None:
    global _held_signal
    if _holding and _held_signal is None:
        _held_signal = signum  # raised when the held step ends
        return
    _held_signal = None
    raise Interrupted(signum)


@contextmanager
def interruptible() -> Iterator[None]:
    """Turn the stop signals into :class:`Interrupted` while the block runs (only in
    the main thread, where Python runs signal handlers; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def held() -> Iterator[None]:
    """Hold a stop signal back until the block ends, then raise it (see module docstring).

    Only in the main thread, where the signal handlers run; elsewhere nothing changes."""
    global _holding, _held_signal
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _holding += 1
    try:
        yield
    finally:
        _holding -= 1
        if not _holding and _held_signal is not None:
            signum, _held_signal = _held_signal, None
            raise Interrupted(signum)
