"""Processes a code left behind: found by the run folder in their environment
(``DBPROC_RUN_DIR``, which every code gets and passes on), and killed once no pass uses
the staging folder. Linux only (``/proc``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from dbproc.executors.base import RUN_DIR_VAR


def stray_processes(folder: Path) -> list[int]:
    """Live processes of codes run under ``folder`` (a staging folder): their environment
    names a run folder inside it (``DBPROC_RUN_DIR``, which every code gets and passes
    on to what it starts).

    A code dies with the pass that runs it (parent-death signal), but what the code
    started itself does not; those are found here. Only the environment counts, not the
    current folder, so an operator's shell that looks around in staging is left alone.
    Linux only (``/proc``); elsewhere nothing is found.
    """
    try:
        prefix = str(folder.resolve()) + os.sep
        entries = os.listdir("/proc")
    except OSError:
        return []
    marker = f"{RUN_DIR_VAR}={prefix}".encode()
    me = os.getpid()
    found = []
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
            if stat[stat.rindex(b")") + 2 :].startswith(b"Z"):
                continue  # a zombie: dead already
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
        except (OSError, ValueError):
            continue  # gone, or not ours
        if any(item.startswith(marker) for item in environ.split(b"\0")):
            found.append(int(entry))
    return found


def kill_strays(folder: Path, rounds: int = 5) -> list[int]:
    """SIGKILL every process :func:`stray_processes` finds (again, while new ones
    appear); return their pids. Only for a folder no live pass uses (under the lock)."""
    killed: list[int] = []
    for _ in range(rounds):
        pids = [p for p in stray_processes(folder) if p not in killed]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)
    return killed
