"""A code's stdout or stderr, streamed to a file and capped (contract section 10).

The child writes into a pipe; the thread that supervises the code moves it on in blocks
of 64 KiB whenever it is readable (:class:`Streams`, waited on together with the code by
:mod:`dbproc.executors.supervision`), so neither the controller's memory nor the disk
grows with what a code prints, and no thread is started for it. The first half of the
limit goes straight to the log file; everything after it goes round a ring file of the
other half. At the end the ring is appended to the log in order, after a line saying how
many bytes were cut between the two: the log keeps the beginning and the end of the
stream and at most ``limit`` bytes of it (plus that line).
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

BLOCK = 1 << 16


def cut_line(cut: int) -> bytes:
    """The line that replaces the middle of a capped stream."""
    return f"\n… {cut} bytes cut …\n".encode()


class CappedLog:
    """Write a stream to ``path``, keeping its head and its tail within ``limit`` bytes.

    The file is made at the stream's first byte: a code that prints nothing on a stream
    leaves no file for it (a new file is the dearest part of a quiet run on some
    filesystems), and readers take a missing log for an empty one.
    """

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.head_limit = limit // 2
        self.tail_limit = max(1, limit - self.head_limit)
        self.total = 0
        self._log: BinaryIO | None = None
        self._ring_path = path.with_name(path.name + ".tail")
        self._ring: int | None = None
        self._ring_written = 0

    def write(self, data: bytes) -> None:
        """Take the next bytes of the stream."""
        if not data:
            return
        if self._log is None:
            self._log = self.path.open("wb")
        self.total += len(data)
        room = self.head_limit - self._log.tell() if self._ring is None else 0
        if room > 0:
            self._log.write(data[:room])
            data = data[room:]
        if data:
            self._to_ring(data)

    def _to_ring(self, data: bytes) -> None:
        if self._ring is None:
            self._ring = os.open(self._ring_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        if len(data) > self.tail_limit:  # only the end of it can stay
            self._ring_written += len(data) - self.tail_limit
            data = data[-self.tail_limit :]
        while data:
            at = self._ring_written % self.tail_limit
            part = data[: self.tail_limit - at]
            os.pwrite(self._ring, part, at)
            self._ring_written += len(part)
            data = data[len(part) :]

    def close(self) -> None:
        """Put the ring's bytes after the head, in order, with the cut line when needed."""
        if self._log is None:
            return
        try:
            if self._ring is not None:
                kept = min(self._ring_written, self.tail_limit)
                cut = self._ring_written - kept
                if cut:
                    self._log.write(cut_line(cut))
                start = self._ring_written % self.tail_limit if cut else 0
                for offset, size in ((start, kept - start), (0, start)) if cut else ((0, kept),):
                    self._copy_ring(offset, size)
        finally:
            self._log.close()
            if self._ring is not None:
                os.close(self._ring)
                self._ring = None
                try:
                    os.unlink(self._ring_path)
                except OSError:
                    pass

    def _copy_ring(self, offset: int, size: int) -> None:
        assert self._ring is not None and self._log is not None
        while size > 0:
            block = os.pread(self._ring, min(BLOCK, size), offset)
            if not block:
                return
            self._log.write(block)
            offset += len(block)
            size -= len(block)


class Streams:
    """A code's open output pipes, each copied into its :class:`CappedLog` whenever it is
    readable, by the one thread that waits on them (and on the code: :meth:`wait`).

    ``poll`` rather than ``select``: a busy controller's descriptors may pass 1023."""

    def __init__(self, pipes: Iterable[tuple[int, CappedLog]]) -> None:
        self._open: dict[int, CappedLog] = dict(pipes)
        self._poll = select.poll()
        for fd in self._open:
            self._poll.register(fd, select.POLLIN)

    def wait(self, fds: Sequence[int], seconds: float) -> bool:
        """Copy what the pipes bring for up to ``seconds``; True as soon as one of ``fds``
        is readable, False when the time is up (or, with no ``fds``, when the last open
        pipe has ended)."""
        for fd in fds:
            self._poll.register(fd, select.POLLIN)
        try:
            return self._wait(fds, time.monotonic() + max(0.0, seconds))
        finally:
            for fd in fds:
                self._poll.unregister(fd)

    def _wait(self, fds: Sequence[int], end: float) -> bool:
        while True:
            ready = self._poll.poll(max(0.0, end - time.monotonic()) * 1000)
            woken = False
            for fd, _ in ready:
                if fd in self._open:
                    self._copy(fd)
                else:
                    woken = True
            if woken:
                return True
            if not ready or time.monotonic() >= end or not (fds or self._open):
                return False  # (the last pipe just ended: nothing left to wait on)

    def drain(self, seconds: float) -> None:
        """Copy until every pipe is at its end or ``seconds`` have passed (a process that
        left the code's group may hold one open); then close them all."""
        end = time.monotonic() + seconds
        try:
            while self._open and (left := end - time.monotonic()) > 0:
                self.wait((), left)
        finally:
            self.close()

    def close(self) -> None:
        """Close every pipe still open, and its log."""
        for fd in list(self._open):
            self._close(fd)

    def _copy(self, fd: int) -> None:
        """One read of the pipe ``fd`` into its log; at end of file, close both."""
        try:
            block = os.read(fd, BLOCK)
        except OSError:
            block = b""
        if block:
            try:
                self._open[fd].write(block)
                return
            except OSError:  # the log takes no more: the code gets EPIPE, as from no reader
                pass
        self._close(fd)

    def _close(self, fd: int) -> None:
        log = self._open.pop(fd)
        self._poll.unregister(fd)
        os.close(fd)
        with contextlib.suppress(OSError):  # a full disk must not fail the run
            log.close()
