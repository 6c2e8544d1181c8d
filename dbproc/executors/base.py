"""The Executor interface (reliability.md A5): plain-data jobs in, plain-data results out.

Every executor runs the same worker-side function, :func:`dbproc.executors.worker.run_spec`,
so what CI tests locally is what runs on a cluster.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

#: a file in a job's run root that asks the worker to stop the code (Dask cannot
#: interrupt a running task, so the worker-side loop polls for it)
CANCEL_FILE = "CANCEL"
#: set for every code (inherited by what it starts): the run folder it works in
RUN_DIR_VAR = "DBPROC_RUN_DIR"


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to run one code once. Picklable; stored with the run as JSON."""

    run_id: int
    attempt: int
    argv: tuple[str, ...]
    run_root: str
    output_name: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    kill_grace: float = 10.0
    #: bytes each of stdout and stderr keeps (head and tail); ``[execution] log_limit_bytes``
    log_limit: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class JobResult:
    """How one execution ended. ``status`` is one of ``ok``, ``code_failed``, ``timeout``,
    ``cancelled``, ``worker_lost``, ``error``; ``run_dir`` is where it wrote."""

    run_id: int
    attempt: int
    status: str
    run_dir: str | None = None
    argv: tuple[str, ...] = ()
    exit_code: int | None = None
    signal: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    host: str | None = None
    started: float | None = None
    ended: float | None = None
    peak_memory_kb: int | None = None
    error: str | None = None
    #: the output's sha256 and size, taken on the worker after fsyncing it (None when
    #: there is no output file or it could not be read there: the controller does it)
    output_sha256: str | None = None
    output_size: int | None = None
    #: why the worker could not fsync or read the output (the run is then abandoned and
    #: built again: a failed fsync is never retried, its pages may be lost already)
    output_error: str | None = None

    @property
    def ok(self) -> bool:
        """Did the code exit 0?"""
        return self.status == "ok"


def prepare_run_root(spec: JobSpec) -> None:
    """Make the job's run root on the controller before submitting it.

    The worker only makes run folders *inside* it, so a worker that does not share the
    controller's filesystem fails with a clear message instead of writing elsewhere.
    """
    Path(spec.run_root).mkdir(parents=True, exist_ok=True)


def request_cancel(spec: JobSpec) -> None:
    """Ask whichever worker runs ``spec`` to stop it (best effort)."""
    try:
        (Path(spec.run_root) / CANCEL_FILE).touch()
    except OSError:
        pass


def cancelled_before_start(spec: JobSpec, why: str = "cancelled") -> JobResult:
    """The result of a job cancelled before (or while) a worker reported on it."""
    now = time.time()
    return JobResult(
        spec.run_id,
        spec.attempt,
        "cancelled",
        argv=tuple(spec.argv),
        started=now,
        ended=now,
        error=why,
    )


class Handle(Protocol):
    """Whatever an executor returns from :meth:`Executor.submit`."""


class Executor(Protocol):
    """Runs :class:`JobSpec` s somewhere and hands back :class:`JobResult` s.

    Every submitted job yields exactly one result from :meth:`next_result`, a cancelled
    one included (status ``cancelled``).
    """

    @property
    def slots(self) -> int:
        """How many jobs may usefully run at once (the controller submits no more)."""

    def submit(self, spec: JobSpec) -> object:
        """Start (or queue) a job; returns a handle."""

    def next_result(self, timeout: float | None = None) -> JobResult | None:
        """The next finished job (None on timeout or when nothing is in flight).

        Never raises for a job's own failure: that is a result's status.
        """

    def as_completed(self, timeout: float | None = None) -> Iterator[JobResult]:
        """Results as jobs finish, until none is in flight."""

    def cancel(self, handle: object) -> None:
        """Best effort, idempotent: stop a queued or running job."""

    def close(self, cancel_pending: bool = True) -> None:
        """Release workers; with ``cancel_pending``, stop what still runs."""
