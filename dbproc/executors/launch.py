"""How a code is started: never through a shell, measured on its own (contract section 10).

- :func:`code_head`: a ``.py`` code without ``#!`` runs with the interpreter that runs
  dbproc, whatever its mode bits; any other code is executed directly.
- :func:`exec_problem`: a code executed directly must start with ``#!`` or be a binary
  executable. Anything else would make ``execvp`` (which ``setpriv`` and ``time`` use)
  fall back to ``/bin/sh`` on ENOEXEC and run the file as shell commands, so it is
  refused at ``config apply`` and again just before each start.
- :func:`wrap`: the command line around the code. ``setpriv --pdeathsig KILL`` makes it
  die with its runner; GNU ``time`` forks it from a small process and reports *its*
  peak memory. (The runner's own wait4 figure would be the controller's size: the code's
  process starts as a vfork of the controller, and Linux keeps that image's high-water
  mark in the child's ``ru_maxrss`` across exec.)
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

#: the first bytes of executables the kernel runs without a shell
BINARY_MAGIC = (
    b"#!",
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O (for a code shared with a Mac)
)
_LINUX = sys.platform.startswith("linux")
SETPRIV = shutil.which("setpriv") if _LINUX else None
GNU_TIME = next((p for p in ("/usr/bin/time", "/bin/time") if os.access(p, os.X_OK)), None)
#: the last line of the ``time -o`` file holds this, then the peak in KiB
PEAK_MARK = "dbproc-peak-kb"


def runs_with_interpreter(path: Path) -> bool:
    """A ``.py`` code without a ``#!`` line: run with ``sys.executable``."""
    return path.suffix == ".py" and not _starts_with(path, b"#!")


def code_head(path: Path) -> list[str]:
    """The start of a code's command line: the code itself, or the interpreter and it."""
    if runs_with_interpreter(path):
        return [sys.executable, str(path)]
    return [str(path)]


def exec_problem(path: Path) -> str | None:
    """Why ``path`` cannot be executed without a shell, or None when it can."""
    if runs_with_interpreter(path):
        return None
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    if any(head.startswith(magic) for magic in BINARY_MAGIC):
        return None
    return (
        "it has no '#!' line and is not a binary executable, so only a shell could run "
        "it and dbproc never runs code through a shell: add a first line such as "
        "'#!/usr/bin/env python3' (or name a Python code *.py)"
    )


def _starts_with(path: Path, magic: bytes) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(len(magic)) == magic
    except OSError:
        return False


def wrap(argv: list[str], rusage_file: Path | None) -> list[str]:
    """The command that runs ``argv`` (see the module docstring); ``rusage_file``
    receives the code's peak memory when GNU time is there."""
    guard = [SETPRIV, "--pdeathsig", "KILL", "--"] if SETPRIV else []
    if GNU_TIME is None or rusage_file is None:
        return [*guard, *argv]
    timed = [GNU_TIME, "-o", str(rusage_file), "-f", f"{PEAK_MARK} %M"]
    return [*guard, *timed, *guard, *argv]


def group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (Linux ``/proc``)."""
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
            fields = stat[stat.rindex(b")") + 2 :].split()
        except (OSError, ValueError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            found.append(int(entry))
    return found


def read_peak(rusage_file: Path) -> tuple[int | None, int | None]:
    """(peak KiB, terminating signal) from a ``time -o`` file; Nones when unreadable.

    GNU time exits 128 + N when its code dies of signal N and writes "Command
    terminated by signal N" before the format line."""
    try:
        lines = rusage_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None, None
    peak = sig = None
    for line in lines:
        if line.startswith(PEAK_MARK):
            try:
                peak = int(line.split()[1])
            except (IndexError, ValueError):
                peak = None
        elif "terminated by signal" in line:
            try:
                sig = int(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                sig = None
    return peak, sig
