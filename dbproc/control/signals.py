"""SIGTERM and SIGHUP end a pass like Ctrl-C does (contract section 10).

While a pass runs (in the main thread), SIGINT, SIGTERM and SIGHUP raise
:class:`Interrupted`, a KeyboardInterrupt that remembers its signal. The pass unwinds as
for Ctrl-C: running codes are stopped and their runs recorded ``cancelled``
(build/bounds.py), the pass row is closed ``interrupted`` and the lock released
(control/locking.py), and the CLI prints one line and exits 128 + the signal number.
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


def _raise(signum: int, frame: FrameType | None) -> None:
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
