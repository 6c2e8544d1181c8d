"""The worker-side run function shared by every executor.

:func:`run_spec` makes a fresh run directory, starts the code in its own process group
(and, on Linux, with a parent-death signal so it dies with its runner), enforces the
timeout on the whole group (:mod:`dbproc.executors.supervision`), and returns a
:class:`JobResult`. It never raises. The calling thread does all of it, copying the code's
stdout and stderr into their capped logs as well: a run costs one thread.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from dbproc.executors import launch
from dbproc.executors.base import RUN_DIR_VAR, JobResult, JobSpec
from dbproc.executors.capped import CappedLog, Streams
from dbproc.executors.supervision import open_pidfd, stop_asked, watch
from dbproc.ingest.placement import Digest, fsync_file, hash_file

TAIL_BYTES = 4096
STDOUT = "stdout.log"
STDERR = "stderr.log"
#: how long the code's pipes are drained after its group is gone (a process that left
#: the group may hold them open; they are closed then all the same)
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
        if stop_asked(run_root, should_stop):  # cancelled while it waited for a worker
            return _unstarted(
                spec, run_dir, argv, host, started, "cancelled", "cancelled before it started"
            )
        env = {**code_environment(), **spec.env, RUN_DIR_VAR: str(run_dir)}
        missing = _missing_program(argv[0], env, run_dir)
        if missing is not None:
            return _cannot_start(spec, run_dir, argv, host, started, missing)
        wrapper = launch.Wrapper(run_root, run_dir.name)
        try:
            out = CappedLog(run_dir / STDOUT, spec.log_limit)
            err = CappedLog(run_dir / STDERR, spec.log_limit)
            return _supervise(
                spec, wrapper, argv, run_root, run_dir, env, (out, err), host, started, should_stop
            )
        finally:
            wrapper.close()
    except Exception as exc:  # noqa: BLE001 - a job's failure is a result, never a raise
        return _error(
            spec, run_dir, host, started, f"could not run the code: {type(exc).__name__}: {exc}"
        )


def _cannot_start(
    spec: JobSpec, run_dir: Path, argv: Sequence[str], host: str, started: float, why: str
) -> JobResult:
    """The result of a code that could not be started (missing, not executable...)."""
    return _unstarted(
        spec, run_dir, argv, host, started, "code_failed", f"cannot start {argv[0]}: {why}"
    )


def _unstarted(
    spec: JobSpec,
    run_dir: Path,
    argv: Sequence[str],
    host: str,
    started: float,
    status: str,
    error: str,
) -> JobResult:
    """The result of a job whose code never started: cancelled first, or not startable."""
    return JobResult(
        spec.run_id,
        spec.attempt,
        status,
        str(run_dir),
        tuple(argv),
        host=host,
        started=started,
        ended=time.time(),
        error=error,
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
    wrapper (which would otherwise exit 127 like a code could).
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
    wrapper: launch.Wrapper,
    argv: list[str],
    run_root: Path,
    run_dir: Path,
    env: dict[str, str],
    logs: tuple[CappedLog, CappedLog],
    host: str,
    started: float,
    should_stop: Callable[[], bool] | None,
) -> JobResult:
    """Start the code, watch it to the end (copying its streams), and say how it ended."""
    command = wrapper.command(argv)
    try:
        proc, out_r, err_r = _start(command, run_dir, env, wrapper)
    except OSError as exc:
        for log in logs:
            log.close()
        return _cannot_start(spec, run_dir, argv, host, started, str(exc.strerror or exc))
    streams = Streams(((out_r, logs[0]), (err_r, logs[1])))
    try:
        ended, timed_out, cancelled = watch(
            spec,
            proc.pid,
            open_pidfd(proc.pid),
            started,
            run_root,
            should_stop,
            streams,
            timed=wrapper.forks,
        )
        streams.drain(PUMP_DRAIN_SECONDS)
    finally:
        streams.close()
    status_word, maxrss = ended if ended is not None else (0, 0)
    proc.returncode = os.waitstatus_to_exitcode(status_word)
    code_exit, peak = wrapper.read()
    return _ran(
        spec,
        run_dir,
        argv,
        host,
        started,
        proc.returncode if code_exit is None else code_exit,
        maxrss if peak is None else peak,
        timed_out,
        cancelled,
    )


def _start(
    command: list[str], run_dir: Path, env: dict[str, str], wrapper: launch.Wrapper
) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start the code in its own session, its stdout and stderr into pipes; returns it
    and the pipes' read ends. Raises OSError (with every pipe closed) when it cannot."""
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
            pass_fds=wrapper.pass_fds,
        )
    except OSError:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
        wrapper.started()
    return proc, out_r, err_r


def _ran(
    spec: JobSpec,
    run_dir: Path,
    argv: list[str],
    host: str,
    started: float,
    code: int,
    maxrss: int,
    timed_out: bool,
    cancelled: bool,
) -> JobResult:
    """The result of a code that ran: its exit (as its wrapper saw it, when there is
    one), its log tails, and its output made durable when it succeeded."""
    exit_code, sig = (code, None) if code >= 0 else (None, -code)
    status, error = _outcome(spec, code, sig, timed_out=timed_out, cancelled=cancelled)
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


def _outcome(
    spec: JobSpec, code: int, sig: int | None, *, timed_out: bool, cancelled: bool
) -> tuple[str, str | None]:
    """(status, error) of a code that ran."""
    if timed_out:
        return "timeout", f"killed after the timeout of {spec.timeout:g} s"
    if cancelled:
        return "cancelled", "cancelled"
    if code == 0:
        return "ok", None
    return "code_failed", (
        f"exit status {code}" if sig is None else f"killed by signal {signal.Signals(sig).name}"
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
