"""Worker processes that run inspectors for the controller (contract section 10).

A pool is started lazily on the first call that needs an inspector and lives for the pass
(or the command). Calls go to the workers many at a time, as lines on their stdin; each
result comes back as one line, so the controller times every call on its own: a call
started when the previous result of its worker arrived. A call that overruns its timeout
or whose worker dies is settled as ``inspector_timeout`` / ``inspector_crashed``; the
worker is replaced and the calls queued behind it go to a fresh one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbproc.control import activity

WORKER_SCRIPT = Path(__file__).with_name("inspector_worker.py")
#: calls sent to a worker ahead of its results (keeps the pipes busy, bounds a requeue)
WINDOW = 32
DEFAULT_WORKERS = 2
DEFAULT_MAX_ANSWER_BYTES = 1 << 20


@dataclass(frozen=True)
class Call:
    """One inspector call: ``function`` of the module at ``module`` on file ``path``."""

    module: str
    function: str
    path: str
    args: dict[str, Any]
    timeout: float
    label: str


@dataclass(frozen=True)
class Outcome:
    """How a call ended: ``kind`` is ``ok`` (``answer`` is the inspector's value),
    ``error`` (raised or invalid), ``load`` (the module would not load), ``timeout`` or
    ``crashed``; ``message``/``detail`` say why."""

    kind: str
    answer: Any = None
    message: str = ""
    detail: str | None = None


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    inflight: deque[int] = field(default_factory=deque)
    head_since: float = 0.0
    rbuf: bytearray = field(default_factory=bytearray)
    wbuf: bytearray = field(default_factory=bytearray)

    @property
    def out_fd(self) -> int:
        assert self.proc.stdout is not None
        return self.proc.stdout.fileno()

    @property
    def in_fd(self) -> int:
        assert self.proc.stdin is not None
        return self.proc.stdin.fileno()


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$d" in obj:
            return dt.date.fromisoformat(obj["$d"])
        if "$dt" in obj:
            return dt.datetime.fromisoformat(obj["$dt"])
    return obj


def ended_how(returncode: int | None) -> str:
    """Words for how a worker process ended."""
    if returncode is None:
        return "its process ended"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"its process was killed by {name}"
    return f"its process exited with status {returncode}"


class InspectorPool:
    """Run inspector calls in worker processes; see the module docstring."""

    def __init__(
        self, workers: int = DEFAULT_WORKERS, max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    ) -> None:
        self.size = max(1, workers)
        self.max_answer_bytes = max_answer_bytes
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self.started = 0  # worker processes started, replacements included

    def run(
        self, calls: Sequence[Call], on_wait: Callable[[str, float], None] | None = None
    ) -> list[Outcome]:
        """Every call's outcome, in order. ``on_wait(label, seconds)`` is told what the
        longest-running call is while the pool waits."""
        with self._lock:
            return _Run(self, calls, on_wait).go()

    def _spawn(self) -> _Worker:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT), str(self.max_answer_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal is the controller's to handle
            close_fds=True,
        )
        os.set_blocking(proc.stdin.fileno(), False)  # type: ignore[union-attr]
        self.started += 1
        worker = _Worker(proc)
        self._workers.append(worker)
        return worker

    def _discard(self, worker: _Worker) -> int | None:
        """Kill a worker (its whole process group) and reap it; its exit status."""
        self._workers.remove(worker)
        try:
            os.killpg(worker.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for stream in (worker.proc.stdin, worker.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        return worker.proc.wait()

    def close(self) -> None:
        """Stop every worker: end of input first, a kill for one that does not go."""
        with self._lock:
            for worker in list(self._workers):
                try:
                    if worker.proc.stdin is not None:
                        worker.proc.stdin.close()
                except OSError:
                    pass
                try:
                    worker.proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    pass
                self._discard(worker)


class _Run:
    """One :meth:`InspectorPool.run`: the select loop over the workers."""

    def __init__(
        self,
        pool: InspectorPool,
        calls: Sequence[Call],
        on_wait: Callable[[str, float], None] | None,
    ) -> None:
        self.pool = pool
        self.calls = calls
        self.on_wait = on_wait
        self.outcomes: list[Outcome | None] = [None] * len(calls)
        self.pending: deque[int] = deque(range(len(calls)))
        self.left = len(calls)

    def go(self) -> list[Outcome]:
        while self.left:
            self._assign()
            workers = [w for w in self.pool._workers if w.inflight]
            if not workers:
                continue
            now = time.monotonic()
            deadline = min(w.head_since + self.calls[w.inflight[0]].timeout for w in workers)
            wait = max(0.0, min(deadline - now, 1.0))
            readable, writable, _ = select.select(
                [w.out_fd for w in workers], [w.in_fd for w in workers if w.wbuf], [], wait
            )
            for w in workers:
                if w.wbuf and w.in_fd in writable:
                    self._write(w)
                if w in self.pool._workers and w.out_fd in readable:
                    self._read(w)
            now = time.monotonic()
            for w in [w for w in self.pool._workers if w.inflight]:
                head = w.inflight[0]
                if now - w.head_since >= self.calls[head].timeout:
                    call = self.calls[head]
                    self._fail_head(
                        w,
                        Outcome(
                            "timeout",
                            message=f"did not answer within {call.timeout:g} s "
                            "([ingest] inspector_timeout); its worker was killed",
                        ),
                    )
            self._tell_wait()
        return [o if o is not None else Outcome("crashed", message="lost") for o in self.outcomes]

    def _tell_wait(self) -> None:
        busy = [w for w in self.pool._workers if w.inflight]
        activity.beat()
        if not busy or self.on_wait is None:
            return
        oldest = min(busy, key=lambda w: w.head_since)
        seconds = time.monotonic() - oldest.head_since
        self.on_wait(self.calls[oldest.inflight[0]].label, seconds)

    def _assign(self) -> None:
        if not self.pending:
            return
        idle = [w for w in self.pool._workers if len(w.inflight) < WINDOW]
        while len(self.pool._workers) < self.pool.size and len(idle) * WINDOW < len(self.pending):
            idle.append(self.pool._spawn())
        if not idle:
            return
        for w in sorted(idle, key=lambda w: len(w.inflight)):
            while self.pending and len(w.inflight) < WINDOW:
                index = self.pending.popleft()
                call = self.calls[index]
                if not w.inflight:
                    w.head_since = time.monotonic()
                w.inflight.append(index)
                request = {
                    "i": index,
                    "m": call.module,
                    "f": call.function,
                    "p": call.path,
                    "a": call.args,
                }
                w.wbuf += (json.dumps(request) + "\n").encode()
            self._write(w)

    def _write(self, w: _Worker) -> None:
        try:
            sent = os.write(w.in_fd, w.wbuf)
        except BlockingIOError:
            return
        except OSError:  # the worker is gone: its reading end tells how
            w.wbuf.clear()
            return
        del w.wbuf[:sent]

    def _read(self, w: _Worker) -> None:
        try:
            data = os.read(w.out_fd, 1 << 16)
        except OSError:
            data = b""
        if not data:
            self._crashed(w)
            return
        w.rbuf += data
        while True:
            newline = w.rbuf.find(b"\n")
            if newline < 0:
                break
            line = bytes(w.rbuf[:newline])
            del w.rbuf[: newline + 1]
            self._settle(w, line)
        if len(w.rbuf) > self.pool.max_answer_bytes + 4096:
            self._fail_head(
                w,
                Outcome(
                    "error",
                    message=f"returned an answer larger than {self.pool.max_answer_bytes} bytes",
                ),
            )

    def _settle(self, w: _Worker, line: bytes) -> None:
        try:
            message = json.loads(line, object_hook=_decode)
            index = int(message["i"])
        except (ValueError, KeyError, TypeError):
            self._fail_head(w, Outcome("error", message="its worker sent an unreadable answer"))
            return
        if not w.inflight or w.inflight[0] != index:
            self._fail_head(w, Outcome("error", message="its worker answered out of order"))
            return
        w.inflight.popleft()
        w.head_since = time.monotonic()
        if "e" in message:
            kind = "load" if message.get("k") == "load" else "error"
            self._done(index, Outcome(kind, message=str(message["e"]), detail=message.get("t")))
        else:
            self._done(index, Outcome("ok", answer=message.get("r")))

    def _done(self, index: int, outcome: Outcome) -> None:
        if self.outcomes[index] is None:
            self.outcomes[index] = outcome
            self.left -= 1

    def _crashed(self, w: _Worker) -> None:
        status = self.pool._discard(w)
        if w.inflight:
            head = w.inflight.popleft()
            self._done(
                head, Outcome("crashed", message=f"{ended_how(status)} while inspecting this file")
            )
        self.pending.extendleft(reversed(w.inflight))

    def _fail_head(self, w: _Worker, outcome: Outcome) -> None:
        self.pool._discard(w)
        if w.inflight:
            self._done(w.inflight.popleft(), outcome)
        self.pending.extendleft(reversed(w.inflight))
