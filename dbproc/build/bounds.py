"""The bounds a pass puts on the codes it runs, and how it stops them when told to.

- :func:`bounded`: ``[execution] code_timeout`` for codes without their own ``timeout``,
  and ``[execution] log_limit_bytes`` for every run.
- :func:`stop_in_flight`: after SIGINT, SIGTERM or SIGHUP (see control/passes.py), ask
  every running code to stop (its process group gets SIGTERM, then SIGKILL after the
  grace) and record each run as it ends: ``cancelled``, to be built again next pass.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from dbproc.build.run_start import run_root
from dbproc.executors.base import CANCEL_FILE, JobSpec

if TYPE_CHECKING:
    from dbproc.build.processing import Processor

logger = logging.getLogger("dbproc.processing")

#: seconds the process loop waits for a result before it says it is still alive
BEAT_SECONDS = 5.0


def bounded(spec: JobSpec, code_timeout: float | None, log_limit: int | None) -> JobSpec:
    """``spec`` with the mission's defaults applied."""
    changes: dict[str, object] = {}
    if spec.timeout is None and code_timeout:
        changes["timeout"] = code_timeout
    if log_limit is not None:
        changes["log_limit"] = log_limit
    return replace(spec, **changes) if changes else spec  # type: ignore[arg-type]


def stop_in_flight(processor: Processor) -> None:
    """Cancel the processor's running codes and record how each ended."""
    if not processor._active:
        return
    logger.warning("stopping %d running code(s)", len(processor._active))
    for run_id in processor._active:
        try:
            (run_root(processor.paths, run_id) / CANCEL_FILE).touch()
        except OSError:
            pass
    wait = processor.kill_grace + 30.0
    while processor._active:
        result = processor.executor.next_result(timeout=wait)
        if result is None:
            break
        action = processor._active.pop(result.run_id, None)
        if action is None:
            continue
        outcome = processor.recorder.record(action, result, settle=False, pending_max_id=0)
        processor.report.runs.append(outcome)
