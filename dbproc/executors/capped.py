"""A code's stdout or stderr, streamed to a file and capped (contract section 10).

The child writes into a pipe; a reader thread moves it on in blocks of 64 KiB, so
neither the controller's memory nor the disk grows with what a code prints. The first
half of the limit goes straight to the log file; everything after it goes round a ring
file of the other half. At the end the ring is appended to the log in order, after a
line saying how many bytes were cut between the two: the log keeps the beginning and
the end of the stream and at most ``limit`` bytes of it (plus that line).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

BLOCK = 1 << 16


def cut_line(cut: int) -> bytes:
    """The line that replaces the middle of a capped stream."""
    return f"\n… {cut} bytes cut …\n".encode()


class CappedLog:
    """Write a stream to ``path``, keeping its head and its tail within ``limit`` bytes."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.head_limit = limit // 2
        self.tail_limit = max(1, limit - self.head_limit)
        self.total = 0
        self._log = path.open("wb")
        self._ring_path = path.with_name(path.name + ".tail")
        self._ring: int | None = None
        self._ring_written = 0

    def write(self, data: bytes) -> None:
        """Take the next bytes of the stream."""
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
        assert self._ring is not None
        while size > 0:
            block = os.pread(self._ring, min(BLOCK, size), offset)
            if not block:
                return
            self._log.write(block)
            offset += len(block)
            size -= len(block)


def pump(fd: int, log: CappedLog) -> threading.Thread:
    """Start a thread that copies the pipe ``fd`` into ``log`` until end of file, then
    closes both."""

    def run() -> None:
        try:
            while True:
                try:
                    block = os.read(fd, BLOCK)
                except OSError:
                    break
                if not block:
                    break
                log.write(block)
        finally:
            os.close(fd)
            log.close()

    thread = threading.Thread(target=run, name="dbproc-log", daemon=True)
    thread.start()
    return thread
