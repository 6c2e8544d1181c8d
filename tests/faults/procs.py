"""Passes as real subprocesses (so SIGKILL is real), and finding code processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dbproc.faults import ENV_VAR
from tests.helpers import CliHarness


def dbproc_argv(cli: CliHarness, *args: str) -> list[str]:
    """``python -m dbproc --db DB ARGS``."""
    return [sys.executable, "-m", "dbproc", "--db", cli.db, *args]


def spawn(
    cli: CliHarness, *args: str, env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``dbproc ARGS`` in its own session; output to ``log`` (else discarded)."""
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            dbproc_argv(cli, *args),
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


def run_crashing(
    cli: CliHarness,
    point: str,
    hit: int,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``dbproc ARGS`` with ``DBPROC_CRASH_AT=point:hit``; return how it ended."""
    return subprocess.run(
        dbproc_argv(cli, *args),
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {}), ENV_VAR: f"{point}:{hit}"},
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the pass and everything in its process group, and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def processes_mentioning(marker: str) -> list[int]:
    """Pids of live processes (not zombies) whose command line or environment holds
    ``marker`` (e.g. the mission folder: every code of the mission is run from it)."""
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
            if stat[stat.rindex(b")") + 2 :].startswith(b"Z"):
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    environ = fh.read()
            except PermissionError:
                environ = b""
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue
        if needle in cmdline or needle in environ:
            found.append(int(entry))
    return found


def code_processes(folder: Path) -> list[int]:
    """Live processes working inside ``folder`` (their current directory is under it, or
    their environment names it): the codes a pass runs in its staging folder, and
    whatever those codes started."""
    found = []
    prefix = str(folder.resolve()) + os.sep
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
            if stat[stat.rindex(b")") + 2 :].startswith(b"Z"):
                continue
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except (OSError, ValueError):
            continue
        if (cwd + os.sep).startswith(prefix):
            found.append(int(entry))
    return found


def wait_until(predicate: object, seconds: float, what: str, step: float = 0.05) -> None:
    """Poll ``predicate()`` until true; fail naming ``what`` after ``seconds``."""
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")
