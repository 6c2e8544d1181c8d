"""The default executor: a thread pool on this machine, each thread supervising one code."""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from dbproc.executors.base import (
    JobResult,
    JobSpec,
    cancelled_before_start,
    prepare_run_root,
    request_cancel,
)
from dbproc.executors.worker import run_spec


def default_jobs() -> int:
    """One code per core."""
    return max(1, os.cpu_count() or 1)


class LocalExecutor:
    """Runs jobs in threads (the work is in the child processes, so threads suffice)."""

    def __init__(self, jobs: int | None = None) -> None:
        self.slots = jobs or default_jobs()
        self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="dbproc-run")
        self._futures: dict[Future[JobResult], JobSpec] = {}
        #: futures in the order they finished (each puts itself here when done)
        self._done: queue.SimpleQueue[Future[JobResult]] = queue.SimpleQueue()

    def submit(self, spec: JobSpec) -> Future[JobResult]:
        """Queue a job; it starts when a thread is free."""
        prepare_run_root(spec)
        future = self._pool.submit(run_spec, spec)
        self._futures[future] = spec
        future.add_done_callback(self._done.put)
        return future

    def next_result(self, timeout: float | None = None) -> JobResult | None:
        """The next finished job, or None when none finishes in time or none is in flight."""
        while self._futures:
            try:
                if timeout is not None and timeout <= 0:
                    future = self._done.get_nowait()
                else:
                    future = self._done.get(timeout=timeout)
            except queue.Empty:
                return None
            spec = self._futures.pop(future, None)
            if spec is not None:
                return self._result(future, spec)
        return None

    @staticmethod
    def _result(future: Future[JobResult], spec: JobSpec) -> JobResult:
        if future.cancelled():
            return cancelled_before_start(spec)
        try:
            return future.result()
        except BaseException as exc:  # noqa: BLE001 - run_spec never raises; be safe anyway
            return JobResult(spec.run_id, spec.attempt, "error", error=repr(exc))

    def as_completed(self, timeout: float | None = None) -> Iterator[JobResult]:
        """Results until nothing is in flight."""
        while self._futures:
            result = self.next_result(timeout)
            if result is None:
                return
            yield result

    def cancel(self, handle: object) -> None:
        """Drop a queued job, or ask a running one to stop (CANCEL file). Either way its
        result, status ``cancelled``, still comes from :meth:`next_result`."""
        if not isinstance(handle, Future):
            return
        spec = self._futures.get(handle)
        if spec is None or handle.cancel():
            return
        request_cancel(spec)

    def close(self, cancel_pending: bool = True) -> None:
        """Stop taking work; with ``cancel_pending``, stop running codes too."""
        if cancel_pending:
            for future in list(self._futures):
                self.cancel(future)
        self._pool.shutdown(wait=True, cancel_futures=cancel_pending)
        self._futures.clear()
