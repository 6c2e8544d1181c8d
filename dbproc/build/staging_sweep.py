"""Removing recorded runs' staging folders together, off the process loop.

A recorded run's staging (reliability.md B4 step 7) is handed to a helper thread, which
removes the folders it holds together: when :data:`SWEEP_RUNS` runs have been handed
over, when the space their removal would free reaches :data:`SWEEP_BYTES` (a code's
scratch files, say), and at the end of the pass. Removing one folder a run while runs go
on costs more than the removal itself on a filesystem that keeps freed inodes from reuse
for a while (ext4 without a journal searches past them for every new folder), and the
helper would contend with the loop every run. A pass that dies first leaves the folders
to the next pass's recovery, which removes every run root no active run owns.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor

#: recorded runs whose staging is removed in one sweep (the rest at the pass's end)
SWEEP_RUNS = 4096
#: what the waiting folders may hold (bytes a removal would free) before a sweep
SWEEP_BYTES = 256 << 20


def reclaimable(root: str) -> int:
    """Bytes that removing ``root`` would free: its files' sizes, but for files that
    have another link (an output placed in the archive is the same file)."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if st.st_nlink == 1:
                total += st.st_size
    return total


class StagingSweeper:
    """A helper thread that removes staging folders together (see module docstring).
    :meth:`add` a recorded run's folder; :meth:`close` removes what is left and waits."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbproc-clean")
        # touched only by the helper thread
        self._roots: list[str] = []
        self._bytes = 0

    def add(self, root: str) -> None:
        """Hand over a recorded run's staging folder."""
        self._pool.submit(self._take, root)

    def flushed(self) -> None:
        """Wait until the helper has taken everything handed over so far."""
        self._pool.submit(lambda: None).result()

    @property
    def waiting(self) -> list[str]:
        """The folders handed over and not removed yet (call :meth:`flushed` first)."""
        return list(self._roots)

    def close(self) -> None:
        """Remove every folder still waiting, and wait for it."""
        self._pool.submit(self._sweep)
        self._pool.shutdown(wait=True)

    def _take(self, root: str) -> None:
        self._roots.append(root)
        self._bytes += reclaimable(root)
        if len(self._roots) >= SWEEP_RUNS or self._bytes >= SWEEP_BYTES:
            self._sweep()

    def _sweep(self) -> None:
        roots, self._roots, self._bytes = self._roots, [], 0
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
