"""Starting a run and recording how it ended: the job-commit order of reliability.md B4.

start: one transaction inserts the run row. Success: verify the output with its
product's inspector, fsync and checksum it, mark the run ``promoting`` (one transaction),
link the output into the archive without clobbering, then ONE transaction records the
file, its parents, code and run and clears the work it settles; staging is removed last.
A crash after ``promoting`` is rolled forward by the next pass instead of recomputed,
and so is a write error while placing (the run stays ``promoting``); a write error
before ``promoting`` abandons the run, which queues it again.
Failure: logs and partial output go to ``<errors>/runs/<run id>/`` and the run is marked.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dbproc.build.planner import BuildAction
from dbproc.clock import utcnow
from dbproc.db.files import (
    Consumer,
    IdentityTaken,
    MissionPaths,
    absolute_path,
    destination,
    register_file,
    stored_path,
)
from dbproc.db.models import ForcedRebuild, Pending, Run, RunStatus, table_of
from dbproc.executors.base import JobResult, JobSpec
from dbproc.executors.worker import STDERR, STDOUT
from dbproc.faults import crash_point
from dbproc.ingest.inspection import FileFacts, InspectorSet, ProductRule, facts_json
from dbproc.ingest.placement import Digest, Occupied, fsync_file, hash_file, place
from dbproc.mission import resolve_code_path
from dbproc.version import Version

logger = logging.getLogger("dbproc.recording")

_RUN = table_of(Run)
_PENDING = table_of(Pending)
_FORCED = table_of(ForcedRebuild)
_INSERT_RUN = _RUN.insert().returning(_RUN.c.id)
_SET_RUN_ROOT = (
    _RUN.update().where(_RUN.c.id == bindparam("rid")).values(run_root=bindparam("root"))
)
_RUN_FOR_LOG = select(
    _RUN.c.code_id,
    _RUN.c.process_id,
    _RUN.c.date,
    _RUN.c.argv,
    _RUN.c.exit_code,
    _RUN.c.signal,
    _RUN.c.host,
    _RUN.c.started_at,
    _RUN.c.ended_at,
    _RUN.c.run_root,
).where(_RUN.c.id == bindparam("rid"))
_SETTLE_PENDING = _PENDING.delete().where(
    _PENDING.c.process_id == bindparam("pid"),
    _PENDING.c.date == bindparam("day"),
    _PENDING.c.id <= bindparam("upto"),
)
_FORCED_DONE = _FORCED.delete().where(
    _FORCED.c.process_id == bindparam("pid"),
    _FORCED.c.date == bindparam("day"),
    _FORCED.c.slot == bindparam("slot"),
)

RESULT_STATUS = {
    "timeout": RunStatus.TIMEOUT,
    "worker_lost": RunStatus.WORKER_LOST,
    "cancelled": RunStatus.ABANDONED,
}


def run_logs_dir(paths: MissionPaths) -> Path:
    """Where the full logs of successful runs are kept."""
    return paths.root / ".dbproc" / "logs"


def run_root(paths: MissionPaths, run_id: int) -> Path:
    """The staging folder of one run (on the data root's filesystem)."""
    return paths.staging / f"run-{run_id}"


def substitute(arg: str, values: Mapping[str, str]) -> str:
    """Replace ``{DATE}`` and friends in a code argument; other braces stay as they are."""
    for key, value in values.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def build_argv(action: BuildAction, paths: MissionPaths) -> tuple[str, ...]:
    """``CODE [args...] INPUT...`` (the output path is added by the worker); no shell."""
    code_path = resolve_code_path(paths.codes, action.code.path)
    if code_path.suffix == ".py" and not os.access(code_path, os.X_OK):
        head = [sys.executable, str(code_path)]
    else:
        head = [str(code_path)]
    d = action.date
    values = {
        "DATE": f"{d:%Y%m%d}",
        "Y": f"{d:%Y}",
        "m": f"{d:%m}",
        "d": f"{d:%d}",
        "ROOTDIR": str(paths.root),
        "CODEDIR": str(paths.codes),
        "CODEVERSION": str(action.code.version),
    }
    args = [substitute(a, values) for a in action.code.args]
    inputs = [str(absolute_path(paths.root, f.path)) for f in action.inputs]
    return (*head, *args, *inputs)


@dataclass
class RunOutcome:
    """What recording one result did."""

    run_id: int
    status: RunStatus
    process: str
    date: dt.date
    reason: str | None = None
    output: str | None = None
    version: str | None = None
    error: str | None = None
    queued: list[tuple[int, dt.date]] = field(default_factory=list)

    @classmethod
    def of(cls, run_id: int, status: RunStatus, action: BuildAction, **kwargs: Any) -> RunOutcome:
        """An outcome for a planned action."""
        version = str(action.output_version) if action.output_version else None
        return cls(
            run_id,
            status,
            action.process,
            action.date,
            action.reason.value,
            version=version,
            **kwargs,
        )

    def as_json(self) -> dict[str, Any]:
        """JSON shape of a finished run in a pass report."""
        return {
            "run_id": self.run_id,
            "process": self.process,
            "date": self.date.isoformat(),
            "output": self.output,
            "version": self.version,
            "reason": self.reason,
            "status": self.status.value,
            "error": self.error,
        }


def start_run(
    session: Session,
    action: BuildAction,
    *,
    process_id: int,
    pass_id: int | None,
    paths: MissionPaths,
    kill_grace: float,
) -> JobSpec:
    """Insert the run row (one transaction) and return the job to submit."""
    argv = build_argv(action, paths)
    now = utcnow()
    connection = session.connection()
    run_id: int = connection.execute(
        _INSERT_RUN,
        {
            "pass_id": pass_id,
            "process_id": process_id,
            "code_id": action.code.id,
            "date": action.date,
            "slot": action.slot,
            "output_filename": action.output_filename,
            "output_version": str(action.output_version) if action.output_version else None,
            "reason": action.reason.value,
            "bump": action.bump.value if action.bump else None,
            "build_key": action.build_key,
            "inputs": [f.id for f in action.inputs],
            "argv": list(argv) + (["<OUTPUT>"] if action.output_filename else []),
            "status": RunStatus.RUNNING,
            "queued_at": now,
            "started_at": now,
        },
    ).scalar_one()
    root = run_root(paths, run_id)
    connection.execute(_SET_RUN_ROOT, {"rid": run_id, "root": str(root)})
    session.commit()
    crash_point("job.queued")
    env = {
        "DBPROC_RUN_ID": str(run_id),
        "DBPROC_PROCESS": action.process,
        "DBPROC_DATE": action.date.isoformat(),
    }
    return JobSpec(
        run_id=run_id,
        attempt=1,
        argv=argv,
        run_root=str(root),
        output_name=action.output_filename,
        env=env,
        timeout=action.code.timeout,
        kill_grace=kill_grace,
    )


def _when(epoch: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None) if epoch else None


def _result_fields(result: JobResult) -> dict[str, Any]:
    started, ended = _when(result.started), _when(result.ended)
    return {
        "exit_code": result.exit_code,
        "signal": result.signal,
        "host": result.host,
        "started_at": started,
        "ended_at": ended,
        "duration": (result.ended - result.started) if result.started and result.ended else None,
        "peak_memory_kb": result.peak_memory_kb,
        "stdout_tail": result.stdout_tail,
        "stderr_tail": result.stderr_tail,
        "argv": list(result.argv) if result.argv else None,
    }


def _facts_json(facts: FileFacts) -> dict[str, Any]:
    return {**facts_json(facts), "product_id": facts.product.id, "slot": facts.slot}


def facts_from_json(data: Mapping[str, Any], rule: ProductRule) -> FileFacts:
    """Rebuild the facts saved in a ``promoting`` record."""
    return FileFacts(
        rule,
        dt.date.fromisoformat(data["date"]),
        dt.datetime.fromisoformat(data["start"]),
        dt.datetime.fromisoformat(data["stop"]),
        Version.parse(data["version"]),
        dict(data["keywords"]),
        dict(data["metadata"]),
        data["slot"],
    )


class Recorder:
    """Records results of one pass's runs; the caller's loop owns the session."""

    def __init__(
        self,
        session: Session,
        paths: MissionPaths,
        rules: Mapping[str, ProductRule],
        process_ids: Mapping[str, int],
        output_products: Mapping[str, str | None],
        *,
        clean_in_background: bool = False,
    ) -> None:
        self.session = session
        self._cleaner = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbproc-clean")
            if clean_in_background
            else None
        )
        self.paths = paths
        self.rules = rules
        self.process_ids = process_ids
        self.output_products = output_products
        self.consumers: dict[int, list[Consumer]] = {}
        self.widest: dict[int, float] = {}
        self.inspectors = InspectorSet(list(rules.values()), paths.codes)
        self.early_cutoff: frozenset[str] | None = None  # loaded by build.cutoff

    def record(
        self, action: BuildAction, result: JobResult, *, settle: bool, pending_max_id: int
    ) -> RunOutcome:
        """Record ``result``; with ``settle``, clear the pending rows of (process, date)."""
        self.session.rollback()
        if not result.ok:
            return self._fail(
                action,
                result,
                RESULT_STATUS.get(result.status, RunStatus.FAILED),
                result.error or result.status,
                settle,
                pending_max_id,
            )
        if action.output_filename is None:
            return self._succeed_without_output(action, result, settle, pending_max_id)
        assert result.run_dir is not None
        output = Path(result.run_dir) / action.output_filename
        if output.is_symlink() or not output.is_file():
            return self._fail(
                action,
                result,
                RunStatus.FAILED,
                f"the code exited 0 but wrote no file {action.output_filename}",
                settle,
                pending_max_id,
            )
        product = self.output_products[action.process]
        assert product is not None
        verdict = self.inspectors.identify(output, action.output_filename, only=product)
        facts = verdict.facts
        problem = _output_problem(action, facts, verdict.message)
        if problem is not None or facts is None:
            return self._fail(
                action,
                result,
                RunStatus.FAILED,
                problem or "unrecognised output",
                settle,
                pending_max_id,
            )
        try:
            if result.output_error is not None:  # never retry a failed fsync
                raise OSError(result.output_error)
            digest = _worker_digest(result, output)
            if digest is None:  # an executor that does not: make it durable here
                fsync_file(output)
                digest = hash_file(output)
        except OSError as exc:  # the disk, not the code: build it again next pass
            return self._fail(
                action,
                result,
                RunStatus.ABANDONED,
                f"could not make the output durable: {exc}; it is built again next pass",
                settle,
                pending_max_id,
            )
        from dbproc.build import cutoff  # early cutoff (lifecycle.md); imports this module

        reproduced = cutoff.reproduces(self, action, digest)
        if reproduced is not None:
            return cutoff.record_unchanged(self, action, result, reproduced, settle,
                                           pending_max_id)
        dst = destination(self.paths.root, facts.product.dir, facts.date, output.name)
        promoting = {
            "run_dir": result.run_dir,
            "output": str(output),
            "dst": str(dst),
            "sha256": digest.sha256,
            "size": digest.size,
            "facts": _facts_json(facts),
            "parents": [f.id for f in action.inputs],
            "settle": settle,
            "pending_max_id": pending_max_id,
        }
        self.session.execute(
            _RUN.update()
            .where(_RUN.c.id == result.run_id)
            .values(status=RunStatus.PROMOTING, promoting=promoting, **_result_fields(result))
        )
        self.session.commit()
        crash_point("job.promoting")
        return self.finish_promotion(
            result.run_id, action.process, action.date, action.slot, promoting, action=action
        )

    def finish_promotion(
        self,
        run_id: int,
        process: str,
        day: dt.date,
        slot: str,
        promoting: Mapping[str, Any],
        *,
        action: BuildAction | None = None,
    ) -> RunOutcome:
        """Place and record a run in state ``promoting`` (also used by recovery)."""
        rule = self.rules[promoting["facts"]["product"]]
        facts = facts_from_json(promoting["facts"], rule)
        staged, dst = Path(promoting["output"]), Path(promoting["dst"])
        digest = Digest(promoting["sha256"], promoting["size"])
        try:
            if staged.exists():  # fsynced before the run became ``promoting``
                place(staged, dst, digest, self.paths.staging / "promote", sync_source=False)
            elif not (dst.is_file() and hash_file(dst) == digest):
                return self._fail_promotion(
                    run_id,
                    process,
                    day,
                    "the staged output is gone and the archive holds no copy of it",
                )
        except Occupied as exc:
            return self._fail_promotion(run_id, process, day, f"cannot place the output: {exc}")
        except OSError as exc:  # disk full, I/O error: the next pass places it
            error = (
                f"could not place the output {dst.name}: {exc}; the run stays promoting "
                "and the next pass places it"
            )
            logger.error("run %s: %s", run_id, error)
            return RunOutcome(run_id, RunStatus.PROMOTING, process, day, error=error)
        crash_point("job.placed")
        run = self.session.execute(_RUN_FOR_LOG, {"rid": run_id}).one()
        queued: list[tuple[int, dt.date]] = []
        try:
            register_file(
                self.session,
                facts,
                filename=dst.name,
                path=stored_path(self.paths.root, dst),
                sha256=digest.sha256,
                size=digest.size,
                code_id=run.code_id,
                run_id=run_id,
                parents=promoting["parents"],
                consumers=self.consumers,
                cause=f"{process} built {dst.name}",
                queued=queued,
                widest=self.widest,
            )
        except (IdentityTaken, IntegrityError) as exc:
            self.session.rollback()
            return self._fail_promotion(
                run_id, process, day, f"the output {dst.name} is already registered ({exc})"
            )
        ended_at = run.ended_at or utcnow()
        head = _LogHead(run_id, run.process_id, run.date, RunStatus.SUCCEEDED, run.argv,
                        run.exit_code, run.signal, None, run.host, run.started_at, ended_at)
        self.session.execute(
            _RUN.update()
            .where(_RUN.c.id == run_id)
            .values(
                status=RunStatus.SUCCEEDED,
                log_path=self._keep_log(head, Path(promoting["run_dir"])),
                promoting=None,
                ended_at=ended_at,
            )
        )
        self._settle(
            run.process_id,
            day,
            slot,
            promoting.get("settle", True),
            promoting.get("pending_max_id", 0),
            forced_done=True,
        )
        self.session.commit()
        crash_point("job.recorded")
        self._clean(run.run_root)
        crash_point("job.cleaned")
        logger.info("run %s: %s %s made %s", run_id, process, day, dst.name)
        return RunOutcome(
            run_id,
            RunStatus.SUCCEEDED,
            process,
            day,
            action.reason.value if action else "recovered",
            output=dst.name,
            version=str(facts.version),
            queued=queued,
        )

    def _succeed_without_output(
        self, action: BuildAction, result: JobResult, settle: bool, pending_max_id: int
    ) -> RunOutcome:
        fields = _result_fields(result)
        process_id = self.process_ids[action.process]
        head = _LogHead(result.run_id, process_id, action.date, RunStatus.SUCCEEDED,
                        fields["argv"], result.exit_code, result.signal, None, result.host,
                        fields["started_at"], fields["ended_at"])
        log_path = self._keep_log(head, Path(result.run_dir) if result.run_dir else None)
        self.session.execute(
            _RUN.update()
            .where(_RUN.c.id == result.run_id)
            .values(status=RunStatus.SUCCEEDED, log_path=log_path, **fields)
        )
        self._settle(
            process_id, action.date, action.slot, settle, pending_max_id, forced_done=True
        )
        self.session.commit()
        crash_point("job.recorded")
        self._clean(str(run_root(self.paths, result.run_id)))
        logger.info("run %s: %s %s succeeded", result.run_id, action.process, action.date)
        return RunOutcome.of(result.run_id, RunStatus.SUCCEEDED, action)

    def _fail(
        self,
        action: BuildAction,
        result: JobResult,
        status: RunStatus,
        error: str,
        settle: bool,
        pending_max_id: int,
    ) -> RunOutcome:
        run = self.session.get(Run, result.run_id)
        assert run is not None
        for key, value in _result_fields(result).items():
            setattr(run, key, value)
        run.status = status
        run.error = error
        run.log_path = self._keep_failure(run, result, error)
        if status is not RunStatus.ABANDONED:
            self._settle(
                run.process_id, action.date, action.slot, settle, pending_max_id, forced_done=False
            )
        else:
            self._requeue(run.process_id, action.date, f"run {run.id} abandoned: {error}")
        self.session.commit()
        logger.error(
            "run %s: %s %s %s: %s (log: %s)",
            run.id,
            action.process,
            action.date,
            status.value,
            error,
            run.log_path,
        )
        return RunOutcome.of(run.id, status, action, error=error)

    def _fail_promotion(self, run_id: int, process: str, day: dt.date, error: str) -> RunOutcome:
        run = self.session.get(Run, run_id)
        assert run is not None
        run.status = RunStatus.ABANDONED
        run.error = error
        self._requeue(run.process_id, day, f"run {run_id} abandoned: {error}")
        self.session.commit()
        logger.error("run %s: %s", run_id, error)
        return RunOutcome(run_id, RunStatus.ABANDONED, process, day, error=error)

    def _requeue(self, process_id: int, day: dt.date, cause: str) -> None:
        """Queue (process, day) again: an abandoned run settles nothing, and the rows that
        planned it may be settled by the end of the pass (a process planned in full)."""
        self.session.add(Pending(process_id=process_id, date=day, cause=cause[:500]))

    def _settle(
        self,
        process_id: int,
        day: dt.date,
        slot: str,
        settle: bool,
        pending_max_id: int,
        *,
        forced_done: bool,
    ) -> None:
        if settle:
            self.session.execute(
                _SETTLE_PENDING, {"pid": process_id, "day": day, "upto": pending_max_id}
            )
        if forced_done:
            self.session.execute(_FORCED_DONE, {"pid": process_id, "day": day, "slot": slot})

    def _keep_log(self, run: _LogHead, run_dir: Path | None) -> str | None:
        if run_dir is None:
            return None
        folder = run_logs_dir(self.paths) / str(run.id // 1000)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{run.id}.log"
        try:
            target.write_text(_log_text(run, run_dir), encoding="utf-8")
        except OSError as exc:
            logger.warning("could not keep the log of run %s: %s", run.id, exc)
            return None
        return str(target)

    def _keep_failure(self, run: Run, result: JobResult, error: str) -> str | None:
        folder = self.paths.failed_runs / str(run.id)
        try:
            if folder.exists():
                shutil.rmtree(folder)
            folder.parent.mkdir(parents=True, exist_ok=True)
            if result.run_dir and Path(result.run_dir).is_dir():
                shutil.move(result.run_dir, folder)
            else:
                folder.mkdir()
            run.error = error
            (folder / "run.log").write_text(_log_text(_LogHead.of(run), folder),
                                            encoding="utf-8")
        except OSError as exc:
            logger.warning("could not keep the failed run %s under %s: %s", run.id, folder, exc)
            return None
        finally:
            if run.run_root:
                shutil.rmtree(run.run_root, ignore_errors=True)
        return str(folder / "run.log")

    def _clean(self, root: str | None) -> None:
        """Remove a recorded run's staging (reliability.md B4 step 7). With background
        cleaning on, a helper thread does it while the next runs go on; :meth:`close`
        waits for it. A pass that dies first leaves the folders to the next pass's
        recovery, which removes every run root no active run owns."""
        if not root:
            return
        if self._cleaner is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            self._cleaner.submit(shutil.rmtree, root, ignore_errors=True)

    def close(self) -> None:
        """Wait for background cleaning to finish."""
        if self._cleaner is not None:
            self._cleaner.shutdown(wait=True)
            self._cleaner = None


@dataclass(frozen=True)
class _LogHead:
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
    def of(cls, run: Run) -> _LogHead:
        return cls(run.id, run.process_id, run.date, run.status, run.argv, run.exit_code,
                   run.signal, run.error, run.host, run.started_at, run.ended_at)


def _log_text(run: _LogHead, run_dir: Path) -> str:
    def read(name: str) -> str:
        try:
            return (run_dir / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(missing)\n"

    status = (
        f"exit status {run.exit_code}"
        if run.exit_code is not None
        else f"signal {run.signal}"
        if run.signal is not None
        else "no exit status"
    )
    return (
        f"run {run.id}: process {run.process_id} date {run.date} status {run.status}\n"
        f"command: {shlex.join(str(a) for a in (run.argv or []))}\n"
        f"result: {status}" + (f"; {run.error}" if run.error else "") + "\n"
        f"host: {run.host}  started: {run.started_at}  ended: {run.ended_at}\n"
        f"{'-' * 30} stdout {'-' * 30}\n{read(STDOUT)}"
        f"{'-' * 30} stderr {'-' * 30}\n{read(STDERR)}"
    )


def _worker_digest(result: JobResult, output: Path) -> Digest | None:
    """The digest the worker took after fsyncing the output, if it still fits the file."""
    if result.output_sha256 is None or result.output_size is None:
        return None
    if output.stat().st_size != result.output_size:
        return None
    return Digest(result.output_sha256, result.output_size)


def _output_problem(
    action: BuildAction, facts: FileFacts | None, message: str | None
) -> str | None:
    if facts is None:
        return f"the output {action.output_filename} is not recognised: {message}"
    expected = (action.date, action.output_version, action.slot)
    found = (facts.date, facts.version, facts.slot)
    if found != expected:
        return (
            f"the output {action.output_filename} reads as date {facts.date}, version "
            f"{facts.version}, keywords {facts.slot or '-'}; expected {action.date}, "
            f"{action.output_version}, {action.slot or '-'}"
        )
    return None
