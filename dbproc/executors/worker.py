"""The worker-side run function shared by every executor.

:func:`run_spec` makes a fresh run directory, starts the code in its own process group
(and, on Linux, with a parent-death signal so it dies with its runner), enforces the
timeout on the whole group, and returns a :class:`JobResult`. It never raises.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from dbproc.executors import launch
from dbproc.executors.base import CANCEL_FILE, JobResult, JobSpec
from dbproc.executors.capped import CappedLog, pump
from dbproc.ingest.placement import Digest, fsync_file, hash_file

TAIL_BYTES = 4096
#: set for every code (inherited by what it starts): the run folder it works in
RUN_DIR_VAR = "DBPROC_RUN_DIR"
STDOUT = "stdout.log"
STDERR = "stderr.log"
#: how long the log pumps may take to drain after the code's group is gone
PUMP_DRAIN_SECONDS = 10.0


#: dbproc's own settings that a code must not see (the database URL holds a password)
PRIVATE_VARS = ("DBPROC_DB",)


def code_environment() -> dict[str, str]:
    """The environment a code runs with: ours, without dbproc's private settings."""
    return {k: v for k, v in os.environ.items() if k not in PRIVATE_VARS}


def tail(path: Path, size: int = TAIL_BYTES) -> str:
    """The last ``size`` bytes of a file, decoded leniently."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(0, end - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _ask_group_to_stop(pgid: int, *, timed: bool) -> None:
    """SIGTERM to the code's process group. With the ``time`` wrapper (the group's
    leader), the wrapper is spared, so that it outlives its code and reports how the
    code ended (a SIGKILL after the grace takes it too)."""
    if not timed:
        _kill_group(pgid, signal.SIGTERM)
        return
    for pid in launch.group_members(pgid):
        if pid != pgid:
            try:
                os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass


def _wait(pid: int, pidfd: int | None, seconds: float) -> tuple[int, int] | None:
    """Wait up to ``seconds`` for ``pid``; (status, maxrss KiB) when it ended."""
    if pidfd is not None:
        ready, _, _ = select.select([pidfd], [], [], max(0.0, seconds))
        if not ready:
            return None
    else:
        deadline = time.monotonic() + seconds
        delay = 0.001
        while True:
            found, status, usage = os.wait4(pid, os.WNOHANG)
            if found:
                return status, usage.ru_maxrss
            if time.monotonic() >= deadline:
                return None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    found, status, usage = os.wait4(pid, 0)
    return status, usage.ru_maxrss


def run_spec(spec: JobSpec, should_stop: Callable[[], bool] | None = None) -> JobResult:
    """Run one job to the end (see module docstring).

    The code is stopped as for a cancel when the file ``CANCEL`` appears in the run root,
    or when ``should_stop`` (polled with it) returns true.
    """
    host = socket.gethostname()
    started = time.time()
    run_dir: Path | None = None
    try:
        run_root = Path(spec.run_root)
        if not _visible(run_root):
            # The executor made it before submitting: a worker that cannot see it does not
            # share the mission's filesystem (and must not make a private copy of it).
            return _error(
                spec,
                None,
                host,
                started,
                f"the run folder {run_root} is not visible on {host}: workers must see "
                "the mission root at the same path (shared filesystem)",
            )
        run_dir = run_root / f"run-{uuid.uuid4().hex[:12]}"
        run_dir.mkdir()
        argv = list(spec.argv)
        if spec.output_name is not None:
            argv.append(str(run_dir / spec.output_name))
        if _stop_asked(run_root, should_stop):  # cancelled while it waited for a worker
            return JobResult(
                spec.run_id,
                spec.attempt,
                "cancelled",
                str(run_dir),
                tuple(argv),
                host=host,
                started=started,
                ended=time.time(),
                error="cancelled before it started",
            )
        env = {**code_environment(), **spec.env, RUN_DIR_VAR: str(run_dir)}
        missing = _missing_program(argv[0], env, run_dir)
        if missing is not None:
            return _cannot_start(spec, run_dir, argv, host, started, missing)
        rusage = run_root / f".rusage-{run_dir.name}"  # not run-*: that names executions
        command = launch.wrap(argv, rusage)
        out = CappedLog(run_dir / STDOUT, spec.log_limit)
        err = CappedLog(run_dir / STDERR, spec.log_limit)
        return _supervise(
            spec,
            command,
            argv,
            run_root,
            run_dir,
            env,
            (out, err),
            host,
            started,
            should_stop,
            rusage,
        )
    except Exception as exc:  # noqa: BLE001 - a job's failure is a result, never a raise
        return _error(
            spec, run_dir, host, started, f"could not run the code: {type(exc).__name__}: {exc}"
        )


def _cannot_start(
    spec: JobSpec, run_dir: Path, argv: Sequence[str], host: str, started: float, why: str
) -> JobResult:
    """The result of a code that could not be started (missing, not executable...)."""
    return JobResult(
        spec.run_id,
        spec.attempt,
        "code_failed",
        str(run_dir),
        tuple(argv),
        host=host,
        started=started,
        ended=time.time(),
        error=f"cannot start {argv[0]}: {why}",
    )


def _error(
    spec: JobSpec, run_dir: Path | None, host: str, started: float, message: str
) -> JobResult:
    return JobResult(
        spec.run_id,
        spec.attempt,
        "error",
        str(run_dir) if run_dir else None,
        tuple(spec.argv),
        host=host,
        started=started,
        ended=time.time(),
        error=message,
    )


def _stop_asked(run_root: Path, should_stop: Callable[[], bool] | None) -> bool:
    if (run_root / CANCEL_FILE).exists():
        return True
    try:
        return should_stop is not None and bool(should_stop())
    except Exception:  # noqa: BLE001 - a broken hook must not stop the code
        return False


def _visible(folder: Path) -> bool:
    """Does ``folder`` exist here? Re-reads the parent first when it seems not to
    (opening a folder revalidates a network filesystem's cached view of it)."""
    if folder.is_dir():
        return True
    try:
        os.listdir(folder.parent)
    except OSError:
        return False
    return folder.is_dir()


def _missing_program(program: str, env: dict[str, str], cwd: Path) -> str | None:
    """Why ``program`` cannot be executed, or None when it looks runnable.

    Checked before starting so that a missing code reads the same with or without the
    ``setpriv`` wrapper (which would otherwise exit 127 like a code could).
    """
    if os.sep in program:
        program = os.path.join(cwd, program)  # as exec sees it: relative to the run folder
        if not os.path.isfile(program):
            return "No such file or directory"
        if not os.access(program, os.X_OK):
            return "Permission denied (not executable)"
        return launch.exec_problem(Path(program))
    if shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        return "not found on PATH"
    return None


def _supervise(
    spec: JobSpec,
    command: list[str],
    argv: list[str],
    run_root: Path,
    run_dir: Path,
    env: dict[str, str],
    logs: tuple[CappedLog, CappedLog],
    host: str,
    started: float,
    should_stop: Callable[[], bool] | None,
    rusage: Path,
) -> JobResult:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        proc = subprocess.Popen(
            command,
            cwd=run_dir,
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)
        for log in logs:
            log.close()
        return _cannot_start(spec, run_dir, argv, host, started, str(exc.strerror or exc))
    os.close(out_w)
    os.close(err_w)
    pumps = [pump(out_r, logs[0]), pump(err_r, logs[1])]
    pgid = proc.pid
    pidfd: int | None = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(proc.pid)
        except OSError:
            pidfd = None
    deadline = started + spec.timeout if spec.timeout else None
    timed_out = cancelled = False
    ended: tuple[int, int] | None = None
    try:
        while ended is None:
            step = 0.5
            if deadline is not None:
                step = min(step, max(0.0, deadline - time.time()))
            ended = _wait(proc.pid, pidfd, step)
            if ended is not None:
                break
            if deadline is not None and time.time() >= deadline and not timed_out:
                timed_out = True
            if _stop_asked(run_root, should_stop):
                cancelled = True
            if timed_out or cancelled:
                _ask_group_to_stop(pgid, timed=len(command) > len(argv))
                ended = _wait(proc.pid, pidfd, spec.kill_grace)
                if ended is None:
                    _kill_group(pgid, signal.SIGKILL)
                    ended = _wait(proc.pid, pidfd, 60.0)
    finally:
        if pidfd is not None:
            os.close(pidfd)
        _kill_group(pgid, signal.SIGKILL)  # stragglers the code left behind
    status_word, maxrss = ended if ended is not None else (0, 0)
    proc.returncode = os.waitstatus_to_exitcode(status_word)
    code = proc.returncode
    for thread in pumps:
        thread.join(PUMP_DRAIN_SECONDS)
    exit_code, sig = (code, None) if code >= 0 else (None, -code)
    peak, timed_sig = launch.read_peak(rusage)
    if peak is not None:
        maxrss = peak
        if timed_sig is not None and code == 128 + timed_sig:
            exit_code, sig, code = None, timed_sig, -timed_sig
    try:
        rusage.unlink()
    except OSError:
        pass
    if timed_out:
        status, error = "timeout", f"killed after the timeout of {spec.timeout:g} s"
    elif cancelled:
        status, error = "cancelled", "cancelled"
    elif code == 0:
        status, error = "ok", None
    else:
        status = "code_failed"
        error = (
            f"exit status {code}" if sig is None else f"killed by signal {signal.Signals(sig).name}"
        )
    ended_at = time.time()
    digest: Digest | None = None
    output_error: str | None = None
    if status == "ok":
        try:
            digest = _durable_output(run_dir, spec.output_name)
        except OSError as exc:
            output_error = str(exc)
    return JobResult(
        spec.run_id,
        spec.attempt,
        status,
        str(run_dir),
        tuple(argv),
        exit_code=exit_code,
        signal=sig,
        stdout_tail=tail(run_dir / STDOUT),
        stderr_tail=tail(run_dir / STDERR),
        host=host,
        started=started,
        ended=ended_at,
        peak_memory_kb=maxrss or None,
        error=error,
        output_sha256=digest.sha256 if digest else None,
        output_size=digest.size if digest else None,
        output_error=output_error,
    )


def _durable_output(run_dir: Path, name: str | None) -> Digest | None:
    """fsync and checksum the output where it was written, off the controller's loop
    (reliability.md B4 step 4); None when there is no regular output file to read.
    Raises OSError when the output cannot be made durable."""
    if name is None:
        return None
    output = run_dir / name
    if output.is_symlink() or not output.is_file():
        return None
    fsync_file(output)
    return hash_file(output)


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
