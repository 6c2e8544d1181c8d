"""An in-memory executor: no process, no thread, results handed back in a chosen order.

It exists so the process loop's bookkeeping (slots, queue refills, replans, retries) can be
stepped by hand in tests, the way huey's in-memory storage lets a queue be tested without
a broker, and so the benchmarks can measure the controller alone (``scripts/bench``).

A *behaviour* decides what each job does: it is called with the job and the folder the
job would run in, may write the output there (``spec.output_name``), and returns the code's
exit status (0 = success). :func:`copy_inputs` is the default: it writes the concatenation
of the input files, as the example mission's codes do. Which finished job is reported next
is chosen by ``pick`` (default: the oldest submitted), so a test can finish the second job
before the first. A job runs only when a result is waited for, so a poll
(``next_result(timeout=0)``) finds nothing finished, unless ``together`` says that every
job in flight finishes with the one waited for (a group of results arriving at once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dbproc.executors.base import CANCEL_FILE, JobResult, JobSpec, prepare_run_root

Behaviour = Callable[[JobSpec, Path], int]
Pick = Callable[[Sequence[JobSpec]], JobSpec]


def copy_inputs(spec: JobSpec, run_dir: Path) -> int:
    """Write the concatenated inputs to the output (the example codes' work); exit 0.

    The inputs are the arguments that name existing files, as the code would see them."""
    if spec.output_name is None:
        return 0
    with (run_dir / spec.output_name).open("wb") as out:
        for arg in spec.argv[1:]:
            path = Path(arg)
            if path.is_file():
                out.write(path.read_bytes())
    return 0


def oldest(in_flight: Sequence[JobSpec]) -> JobSpec:
    """The job submitted first."""
    return in_flight[0]


@dataclass
class Event:
    """One thing the executor saw, for tests to assert on: ``submit``, ``result``, ``cancel``."""

    kind: str
    run_id: int
    status: str | None = None


@dataclass
class MemoryExecutor:
    """Runs each job in the caller's thread when its result is asked for."""

    slots: int = 1
    behaviour: Behaviour = copy_inputs
    pick: Pick = oldest
    #: a poll (``timeout=0``) hands back the other jobs in flight too, as if they had
    #: finished while the first result was waited for
    together: bool = False
    events: list[Event] = field(default_factory=list)
    _in_flight: list[JobSpec] = field(default_factory=list)
    _cancelled: set[int] = field(default_factory=set)

    @property
    def in_flight(self) -> list[JobSpec]:
        """Submitted jobs whose result has not been handed back yet, oldest first."""
        return list(self._in_flight)

    def submit(self, spec: JobSpec) -> JobSpec:
        """Take a job; nothing runs until :meth:`next_result`."""
        prepare_run_root(spec)
        self._in_flight.append(spec)
        self.events.append(Event("submit", spec.run_id))
        return spec

    def next_result(self, timeout: float | None = None) -> JobResult | None:
        """Run the job ``pick`` chooses and return its result (None when none is in flight,
        and for a poll, ``timeout=0``, unless ``together``)."""
        if not self._in_flight or (timeout == 0 and not self.together):
            return None
        spec = self.pick(self.in_flight)
        self._in_flight.remove(spec)
        result = self._run(spec)
        self.events.append(Event("result", spec.run_id, result.status))
        return result

    def _run(self, spec: JobSpec) -> JobResult:
        started = time.time()
        argv = tuple(spec.argv)
        if spec.run_id in self._cancelled or (Path(spec.run_root) / CANCEL_FILE).exists():
            return JobResult(
                spec.run_id,
                spec.attempt,
                "cancelled",
                argv=argv,
                started=started,
                ended=time.time(),
                error="cancelled",
            )
        run_dir = Path(spec.run_root) / f"run-memory-{spec.attempt}"
        run_dir.mkdir(parents=True, exist_ok=True)
        if spec.output_name is not None:
            argv = (*argv, str(run_dir / spec.output_name))
        try:
            code = self.behaviour(spec, run_dir)
        except Exception as exc:  # noqa: BLE001 - a behaviour's failure is the job's failure
            return JobResult(
                spec.run_id,
                spec.attempt,
                "error",
                str(run_dir),
                argv,
                started=started,
                ended=time.time(),
                error=repr(exc),
            )
        return JobResult(
            spec.run_id,
            spec.attempt,
            "ok" if code == 0 else "code_failed",
            str(run_dir),
            argv,
            exit_code=code,
            host="memory",
            started=started,
            ended=time.time(),
            error=None if code == 0 else f"exit status {code}",
        )

    def as_completed(self, timeout: float | None = None) -> Iterator[JobResult]:
        """Results until nothing is in flight."""
        while self._in_flight:
            result = self.next_result(timeout)
            if result is None:
                return
            yield result

    def cancel(self, handle: object) -> None:
        """Mark a job cancelled: its result says so when it is asked for (as it does for a
        job whose run root holds a ``CANCEL`` file, the pass's way to stop every code)."""
        if isinstance(handle, JobSpec):
            self._cancelled.add(handle.run_id)
            self.events.append(Event("cancel", handle.run_id))

    def close(self, cancel_pending: bool = True) -> None:
        """Forget what is in flight (a real executor would stop it)."""
        if cancel_pending:
            self._in_flight.clear()
