"""The Dask executor: runs jobs on an existing Dask distributed cluster.

Workers call the same :func:`~dbproc.executors.worker.run_spec` as the local executor, so
each execution gets its own run directory under the run root (on a filesystem the
controller and every worker see at the same path), its own process group and its timeout
on the worker. Dask re-runs a job whose worker died; dbproc lets it do so once (the
scheduler's ``allowed-failures``), then records ``worker_lost``. Only the run directory of
the attempt that reported back is ever promoted.
"""

from __future__ import annotations

import logging
import queue
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from typing import Any

import dask.config
from dask.utils import parse_timedelta
from distributed import Client, Future
from distributed.comm.addressing import get_address_host_port, parse_address
from distributed.comm.registry import get_backend
from distributed.scheduler import KilledWorker

from dbproc.errors import ConfigError, DbprocError, UsageError
from dbproc.executors.base import (
    JobResult,
    JobSpec,
    cancelled_before_start,
    prepare_run_root,
    request_cancel,
)
from dbproc.executors.worker import run_spec

logger = logging.getLogger(__name__)

#: how many times a job may lose its worker and still be re-run (once: two deaths make
#: ``worker_lost``)
ALLOWED_FAILURES = 1


class SchedulerLost(DbprocError):
    """The connection to the Dask scheduler is gone for good (exit 1): the pass stops, and
    the runs it left behind are abandoned and built again by the next pass."""


def _check_address(address: str, timeout: float) -> None:
    """Refuse a malformed or unreachable scheduler address before making a Client.

    (A Client that fails to connect lingers until garbage collection, then blocks in its
    own clean-up; checking first keeps the common mistakes quick and clean.)
    """
    try:
        scheme, _ = parse_address(address)
        get_backend(scheme)
    except ValueError as exc:
        raise UsageError(f"bad Dask scheduler address {address!r}: {exc}") from exc
    if scheme != "tcp":  # (a bare probe of a TLS port would only log a failed handshake)
        return
    try:
        host, port = get_address_host_port(address)
    except ValueError:
        return  # no port: let Dask apply its default
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address}: {exc.strerror or exc}"
        ) from exc


def _allowed_failures_setter(value: int) -> Callable[..., int]:
    """A function for ``run_on_scheduler`` that sets ``allowed-failures``.

    It is a closure so that it is pickled by value: the scheduler does not need dbproc.
    """

    def set_allowed_failures(dask_scheduler: Any) -> int:
        dask_scheduler.allowed_failures = value
        return int(dask_scheduler.allowed_failures)

    return set_allowed_failures


def run_on_worker(spec: JobSpec) -> JobResult:
    """:func:`run_spec` on a Dask worker; the code also stops once the scheduler no longer
    wants the task (it was cancelled, or the controller that submitted it is gone)."""
    return run_spec(spec, should_stop=_released_here())


def _released_here() -> Callable[[], bool] | None:
    """Whether the scheduler has released the task this thread runs, if that can be told.

    Dask cannot interrupt a running task: a released one only turns ``cancelled`` on its
    worker. This reads that state (Dask internals, so any surprise means "cannot tell").
    """
    try:
        from dask.context import thread_state
        from distributed import get_worker

        tasks = get_worker().state.tasks
        key = thread_state.key
    except Exception:  # noqa: BLE001 - not on a worker, or another Dask version
        return None

    def released() -> bool:
        task = tasks.get(key)
        return task is None or task.state == "cancelled"

    return released


class DaskExecutor:
    """Submits jobs to the scheduler at ``address`` (``tcp://host:8786``).

    ``jobs`` caps how many jobs the controller keeps submitted; by default it is the
    number of worker threads the cluster has at the moment (at least 1), so a cluster that
    grows is used as it grows. ``timeout`` limits the wait for the scheduler to answer
    (default: Dask's ``distributed.comm.timeouts.connect``, 30 s).
    """

    def __init__(
        self,
        address: str,
        *,
        jobs: int | None = None,
        timeout: float | None = None,
        allowed_failures: int = ALLOWED_FAILURES,
    ) -> None:
        self.address = address
        if timeout is None:
            timeout = float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect")))
        self.timeout = timeout
        _check_address(address, timeout)
        try:
            self.client = Client(address, set_as_default=False, timeout=timeout)
        except ValueError as exc:
            raise UsageError(f"bad Dask scheduler address {address!r}: {exc}") from exc
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
        self.allowed_failures = self._set_allowed_failures(allowed_failures)
        self._jobs = jobs
        self._threads = 0
        self._futures: dict[Future[JobResult], JobSpec] = {}
        self._cancelled: deque[JobResult] = deque()
        self._done: queue.Queue[Future[JobResult]] = queue.Queue()
        if self._count_threads() == 0:
            logger.warning(
                "the Dask scheduler at %s has no workers yet; jobs wait until one connects", address
            )

    def _set_allowed_failures(self, value: int) -> int | None:
        """Make the scheduler re-run a job whose worker died at most ``value`` times."""
        try:
            effective = int(self.client.run_on_scheduler(_allowed_failures_setter(value)))
        except Exception as exc:  # noqa: BLE001 - keep the scheduler's own setting
            logger.warning(
                "could not set allowed-failures=%d on the Dask scheduler (%s); set "
                "distributed.scheduler.allowed-failures there, or a job whose worker "
                "dies may be re-run more often",
                value,
                exc,
            )
            return None
        if effective != value:
            logger.warning(
                "the Dask scheduler kept allowed-failures=%d (asked for %d)", effective, value
            )
        return effective

    def _count_threads(self) -> int:
        if self.client.status != "running":  # do not wait for a reconnection here
            return self._threads
        try:
            self._threads = sum(int(n) for n in self.client.nthreads().values())
        except Exception as exc:  # noqa: BLE001 - a lost scheduler shows up in next_result
            logger.debug("could not count the Dask worker threads: %s", exc)
        return self._threads

    @property
    def slots(self) -> int:
        """``jobs`` when given, else the cluster's worker threads now (at least 1)."""
        if self._jobs:
            return self._jobs
        return max(1, self._count_threads())

    def submit(self, spec: JobSpec) -> Future[JobResult]:
        """Send a job to the cluster (its run root is made here, on the shared filesystem)."""
        self._ensure_connected()
        prepare_run_root(spec)
        # Keys are global on a scheduler that several missions may share: make them unique.
        key = f"dbproc-run-{spec.run_id}-{spec.attempt}-{uuid.uuid4().hex[:8]}"
        future: Future[JobResult] = self.client.submit(
            run_on_worker, spec, key=key, pure=False, retries=0
        )
        self._futures[future] = spec
        future.add_done_callback(self._done.put)  # called in a Dask thread; Queue is safe
        return future

    def _ensure_connected(self) -> None:
        """Wait while the client reconnects (Dask tries for ``timeout``); raise
        :class:`SchedulerLost` when it gave up. A reconnection cancels every job in flight."""
        deadline = time.monotonic() + self.timeout + 5.0
        while self.client.status in ("newly-created", "connecting"):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if self.client.status != "running":
            raise SchedulerLost(
                f"lost the Dask scheduler at {self.address} (client "
                f"{self.client.status}); the runs in flight are abandoned and "
                "the next pass builds them again"
            )

    def next_result(self, timeout: float | None = None) -> JobResult | None:
        """The next finished job, or None when none finishes in time or none is in flight."""
        if self._cancelled:
            return self._cancelled.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._futures:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                future = self._done.get(timeout=remaining)
            except queue.Empty:
                return None
            spec = self._futures.pop(future, None)
            if spec is not None:  # else: cancelled, its result was already handed out
                return self._result(future, spec)
        return None

    def _result(self, future: Future[JobResult], spec: JobSpec) -> JobResult:
        if future.cancelled():
            # Not by us (that result was handed out already): the scheduler forgot the task,
            # for instance because this client lost its connection. Stop the code if it
            # still runs; the run is abandoned and the next pass builds it again.
            request_cancel(spec)
            return cancelled_before_start(
                spec, f"the Dask scheduler at {self.address} dropped the job (connection lost?)"
            )
        try:
            result = future.result()
        except KilledWorker as exc:
            return JobResult(
                spec.run_id,
                spec.attempt,
                "worker_lost",
                argv=tuple(spec.argv),
                error=f"the worker running it died {self._deaths()}: {exc}",
            )
        except CancelledError as exc:
            request_cancel(spec)
            return cancelled_before_start(spec, f"the Dask scheduler dropped the job ({exc})")
        except Exception as exc:  # noqa: BLE001 - a job's failure is a result
            return JobResult(
                spec.run_id,
                spec.attempt,
                "error",
                argv=tuple(spec.argv),
                error=f"the cluster failed the job: {type(exc).__name__}: {exc}",
            )
        if not isinstance(result, JobResult):
            return JobResult(
                spec.run_id,
                spec.attempt,
                "error",
                argv=tuple(spec.argv),
                error=f"the worker returned {type(result).__name__}, not a result",
            )
        return result

    def _deaths(self) -> str:
        if self.allowed_failures is None:
            return "too often"
        deaths = self.allowed_failures + 1
        return "once" if deaths == 1 else "twice" if deaths == 2 else f"{deaths} times"

    def as_completed(self, timeout: float | None = None) -> Iterator[JobResult]:
        """Results until nothing is in flight."""
        while self._futures or self._cancelled:
            result = self.next_result(timeout)
            if result is None:
                return
            yield result

    def cancel(self, handle: object) -> None:
        """Stop a job: the CANCEL file stops a running code (its worker polls for it), and
        the scheduler forgets the task. Its result, status ``cancelled``, comes next."""
        if not isinstance(handle, Future):
            return
        spec = self._futures.pop(handle, None)
        if spec is None:
            return
        request_cancel(spec)
        try:
            handle.cancel()
        except Exception as exc:  # noqa: BLE001 - best effort; the CANCEL file does the work
            logger.debug("could not cancel %s on the scheduler: %s", handle.key, exc)
        self._cancelled.append(
            cancelled_before_start(spec, "cancelled (a running code is stopped by its worker)")
        )

    def close(self, cancel_pending: bool = True) -> None:
        """Cancel what is left (when asked) and disconnect. Either way the scheduler then
        drops this client's tasks, and their workers stop the codes that still run."""
        if cancel_pending:
            for future in list(self._futures):
                self.cancel(future)
        self._futures.clear()
        self._cancelled.clear()
        try:
            self.client.close(timeout=10)
        except Exception as exc:  # noqa: BLE001 - closing a dead connection
            logger.debug("closing the Dask client: %s", exc)
