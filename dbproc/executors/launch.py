"""How a code is started: never through a shell, measured on its own (contract section 10).

- :func:`code_head`: a ``.py`` code without ``#!`` runs with the interpreter that runs
  dbproc, whatever its mode bits; any other code is executed directly.
- :func:`exec_problem`: a code executed directly must start with ``#!`` or be a binary
  executable. Anything else would make ``execvp`` (which ``setpriv`` and ``time`` use)
  fall back to ``/bin/sh`` on ENOEXEC and run the file as shell commands, so it is
  refused at ``config apply`` and again just before each start.
- :class:`Wrapper`: the command line around the code, and how it tells the code's end.
  The code must die with its runner (a parent-death signal) and its peak memory must be
  its own: the runner's wait4 figure would be the controller's size, because the code's
  process starts as a vfork of the controller and Linux keeps that image's high-water
  mark in the child's ``ru_maxrss`` across exec. So the code is forked from a small
  process that reports the code's wait status and ``ru_maxrss``:

  - ``dbproc-launch`` (``launcher.c``, built by ``setup.py`` at install): one exec,
    reporting through a pipe (about 1 ms of CPU a start on the bench machine);
  - without it, ``setpriv --pdeathsig KILL -- time -o FILE ... setpriv --pdeathsig KILL
    -- CODE``: the same in four execs (about 4.5 ms), GNU ``time`` writing a file
    (which it leaves open in the code, as descriptor 3);
  - with neither ``time`` nor a launcher, the parent-death guard alone, and the runner's
    own figure.
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
#: what ``dbproc-launch`` writes to its report pipe, then the wait status and the peak
LAUNCH_MARK = "dbproc-launch"


def _built_launcher() -> str | None:
    """The ``dbproc-launch`` that setup.py built beside this module, if it is there."""
    path = Path(__file__).with_name("dbproc-launch")
    return str(path) if _LINUX and os.access(path, os.X_OK) else None


LAUNCHER = _built_launcher()


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


class Wrapper:
    """The wrapper of one start of a code: its command line, the descriptor it inherits,
    and what it reports once the code has ended (see the module docstring). Use
    :meth:`command` and :attr:`pass_fds` for ``Popen``, :meth:`started` after it, then
    :meth:`read` once the wrapper has exited; :meth:`close` in every case."""

    def __init__(self, run_root: Path, name: str) -> None:
        self._read_fd: int | None = None
        self._write_fd: int | None = None
        self._file: Path | None = None
        if LAUNCHER is not None:
            self._read_fd, self._write_fd = os.pipe()
            os.set_blocking(self._read_fd, False)
        elif GNU_TIME is not None:
            self._file = run_root / f".rusage-{name}"  # not run-*: that names executions
        self._forks = self._read_fd is not None or self._file is not None

    def command(self, argv: list[str]) -> list[str]:
        """The command that runs ``argv``."""
        if self._write_fd is not None:
            assert LAUNCHER is not None
            return [LAUNCHER, str(self._write_fd), str(os.getpid()), *argv]
        guard = [SETPRIV, "--pdeathsig", "KILL", "--"] if SETPRIV else []
        if self._file is None or GNU_TIME is None:
            return [*guard, *argv]
        timed = [GNU_TIME, "-o", str(self._file), "-f", f"{PEAK_MARK} %M"]
        return [*guard, *timed, *guard, *argv]

    @property
    def forks(self) -> bool:
        """Does the wrapper stay, as the group's leader, while the code runs (the launcher
        or GNU time)? Then a SIGTERM spares it, so that it reports how the code ended."""
        return self._forks

    @property
    def pass_fds(self) -> tuple[int, ...]:
        """Descriptors the wrapper inherits (the launcher's report pipe)."""
        return () if self._write_fd is None else (self._write_fd,)

    def started(self) -> None:
        """The wrapper runs (or could not start): the runner's copy of the pipe's write
        end goes, so that a read sees the end of it once the wrapper has exited."""
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None

    def read(self) -> tuple[int | None, int | None]:
        """(the code's exit, as ``Popen.returncode`` gives it: negative for a signal;
        its peak KiB); a None where the wrapper did not say (it was killed, or there is
        none). Closes what the wrapper used."""
        try:
            if self._read_fd is not None:
                return _parse_launch(_read_all(self._read_fd))
            if self._file is not None:
                return _parse_time(self._file)
            return None, None
        finally:
            self.close()

    def close(self) -> None:
        """Close the pipe, remove the report file (idempotent)."""
        self.started()
        if self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None
        if self._file is not None:
            try:
                self._file.unlink()
            except OSError:
                pass
            self._file = None


def _read_all(fd: int) -> bytes:
    """What is in the pipe now (the wrapper has exited: it writes once, then ends)."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_launch(report: bytes) -> tuple[int | None, int | None]:
    """``dbproc-launch status S peak-kb K`` -> (exit as Popen gives it, peak KiB)."""
    words = report.decode("ascii", errors="replace").split()
    if len(words) != 5 or words[0] != LAUNCH_MARK or words[1] != "status":
        return None, None
    try:
        status, peak = int(words[2]), int(words[4])
        return os.waitstatus_to_exitcode(status), peak
    except ValueError:
        return None, None


def _parse_time(rusage_file: Path) -> tuple[int | None, int | None]:
    """(minus the terminating signal, or None; peak KiB) from a ``time -o`` file; Nones
    when unreadable. GNU time exits 128 + N when its code dies of signal N and writes
    "Command terminated by signal N" before the format line; its own exit says the rest."""
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
    if peak is None:
        return None, None
    return (None if sig is None else -sig), peak
