"""The kept log of a run: its head lines, then its capped stdout and stderr, streamed."""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbproc.db.models import (
    Run,
)
from dbproc.executors.base import JobResult
from dbproc.executors.worker import STDERR, STDOUT


@dataclass(frozen=True)
class LogHead:
    """What a kept run log says about its run."""

    id: int
    process_id: int
    date: dt.date
    status: str
    argv: Sequence[str] | None
    exit_code: int | None
    signal: int | None
    error: str | None
    host: str | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None

    @classmethod
    def of_result(
        cls,
        result: JobResult,
        process_id: int,
        day: dt.date,
        status: str,
        fields: Mapping[str, Any],
    ) -> LogHead:
        """The head of a run that ended without an error (``fields``: ``result_fields``)."""
        return cls(
            result.run_id,
            process_id,
            day,
            status,
            fields["argv"],
            result.exit_code,
            result.signal,
            None,
            result.host,
            fields["started_at"],
            fields["ended_at"],
        )

    @classmethod
    def of(cls, run: Run) -> LogHead:
        return cls(
            run.id,
            run.process_id,
            run.date,
            run.status,
            run.argv,
            run.exit_code,
            run.signal,
            run.error,
            run.host,
            run.started_at,
            run.ended_at,
        )


def write_log(target: Path, run: LogHead, run_dir: Path, process: str) -> None:
    """Write a run's kept log: its head lines, then its stdout and stderr, streamed
    (the streams are capped by the worker; none is ever read into memory whole). A stream
    the code printed nothing on has no file (executors/capped.py): its part is empty."""
    with target.open("wb") as out:
        out.write(_log_head(run, process).encode("utf-8", "replace"))
        for name, title in ((STDOUT, "stdout"), (STDERR, "stderr")):
            out.write(f"{'-' * 30} {title} {'-' * 30}\n".encode())
            try:
                with (run_dir / name).open("rb") as stream:
                    shutil.copyfileobj(stream, out, 1 << 20)
            except FileNotFoundError:
                if not run_dir.is_dir():
                    out.write(b"(missing)\n")
            except OSError:
                out.write(b"(missing)\n")


def fill_streams(run_dir: Path) -> None:
    """Give a kept run folder both stream logs, empty where the code printed nothing."""
    for name in (STDOUT, STDERR):
        with (run_dir / name).open("ab"):
            pass


def _log_head(run: LogHead, process: str) -> str:
    status = (
        f"exit status {run.exit_code}"
        if run.exit_code is not None
        else f"signal {run.signal}"
        if run.signal is not None
        else "no exit status"
    )
    return (
        f"run {run.id}: process {process} date {run.date} status {run.status}\n"
        f"command: {shlex.join(str(a) for a in (run.argv or []))}\n"
        f"result: {status}" + (f"; {run.error}" if run.error else "") + "\n"
        f"host: {run.host}  started: {run.started_at}  ended: {run.ended_at}\n"
    )


#: what the worker itself keeps in a run folder (not written by the code)
_WORKER_FILES = frozenset({"stdout.log", "stderr.log", "CANCEL"})


def what_was_written(run_dir: Path, expected: str, shown: int = 10) -> str:
    """``; it wrote: a.cat, b.cat`` (the files the code did leave in its run folder,
    which usually shows the mistake: a wrong name, version or folder)."""
    try:
        written = sorted(
            str(p.relative_to(run_dir))
            for p in run_dir.rglob("*")
            if p.is_file() and p.name != expected and p.name not in _WORKER_FILES
        )
    except OSError:
        return ""
    if not written:
        return "; it wrote no file at all in its output folder"
    more = f" and {len(written) - shown} more" if len(written) > shown else ""
    return "; it wrote: " + ", ".join(written[:shown]) + more
