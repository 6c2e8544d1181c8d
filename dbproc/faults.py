"""Named crash points for fault-injection tests.

``crash_point("ingest.linked")`` does nothing unless the environment variable
``DBPROC_CRASH_AT`` is ``ingest.linked:N``; then the N-th time the point is reached the
process SIGKILLs itself (no cleanup, no ``finally``), which is what a power cut or
``kill -9`` looks like to the next pass. Unset, it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "DBPROC_CRASH_AT"
#: ``DBPROC_HANG_AT=name``: the process stops for good at that point instead (a hung
#: read of a network filesystem, say), keeping its lock and its threads
HANG_VAR = "DBPROC_HANG_AT"
_HANG_AT = os.environ.get(HANG_VAR)  # read once: a process hangs or it does not
#: ``DBPROC_SIGNAL_AT=name:N``: the N-th time the point is reached the process sends
#: itself SIGTERM (a stop signal arriving at that very step)
SIGNAL_VAR = "DBPROC_SIGNAL_AT"

#: Every crash point, in the order a pass reaches them (documented in docs/reliability.md).
CRASH_POINTS = (
    "pass.flagged",
    "ingest.hashed",
    "ingest.linked",
    "ingest.committed",
    "ingest.unlinked",
    "reject.moved",
    "job.queued",
    "job.promoting",
    "job.placed",
    "job.recorded",
    "job.cleaned",
    "notify.before_delivery",
    "notify.delivered",
)

_hits: dict[str, int] = {}


def _target(value: str | None = None) -> tuple[str, int] | None:
    """``name:N`` of ``value`` (by default the variable ``DBPROC_CRASH_AT``, read now)."""
    value = os.environ.get(ENV_VAR) if value is None else value
    if not value:
        return None
    name, _, count = value.partition(":")
    return name, int(count or "1")


_SIGNAL_AT = _target(os.environ.get(SIGNAL_VAR, ""))  # read once, as DBPROC_HANG_AT
_signal_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    """SIGKILL this process at the configured hit of ``name`` (tests only); or SIGTERM,
    or hang, as the other two variables say."""
    if name == _HANG_AT:
        import threading

        threading.Event().wait()
    if _SIGNAL_AT is not None and _SIGNAL_AT[0] == name:
        _signal_hits[name] = _signal_hits.get(name, 0) + 1
        if _signal_hits[name] == _SIGNAL_AT[1]:
            os.kill(os.getpid(), signal.SIGTERM)
    target = _target()
    if target is None or target[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
