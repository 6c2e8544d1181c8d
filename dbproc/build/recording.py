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
import shutil
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dbproc.build.planner import BuildAction
from dbproc.build.run_log_files import (
    LogHead,
    what_was_written,
    write_log,
)
from dbproc.build.run_start import (
    RESULT_STATUS,
    RUN_TABLE,
    RunOutcome,
    facts_from_json,
    result_fields,
    run_logs_dir,
    run_root,
    stored_facts_json,
)
from dbproc.clock import utcnow
from dbproc.db.dependents import Consumer
from dbproc.db.file_paths import MissionPaths, destination, stored_path
from dbproc.db.files import IdentityTaken, register_file
from dbproc.db.models import (
    ForcedRebuild,
    Pending,
    Run,
    RunStatus,
    table_of,
)
from dbproc.db.unit import commit, discard, release
from dbproc.executors.base import JobResult
from dbproc.faults import crash_point
from dbproc.feed.hooks import note_run_failed
from dbproc.ingest.inspection import FileFacts, InspectorSet, ProductRule
from dbproc.ingest.placement import Digest, Occupied, fsync_file, hash_file, place

logger = logging.getLogger("dbproc.recording")

_PENDING = table_of(Pending)
_FORCED = table_of(ForcedRebuild)
_RUN_FOR_LOG = select(
    RUN_TABLE.c.code_id,
    RUN_TABLE.c.process_id,
    RUN_TABLE.c.date,
    RUN_TABLE.c.argv,
    RUN_TABLE.c.exit_code,
    RUN_TABLE.c.signal,
    RUN_TABLE.c.host,
    RUN_TABLE.c.started_at,
    RUN_TABLE.c.ended_at,
    RUN_TABLE.c.run_root,
).where(RUN_TABLE.c.id == bindparam("rid"))
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
        release(self.session)
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
                f"the code exited 0 but wrote no file {action.output_filename}"
                + what_was_written(Path(result.run_dir), action.output_filename),
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
            return cutoff.record_unchanged(self, action, result, reproduced, settle, pending_max_id)
        dst = destination(self.paths.root, facts.product.dir, facts.date, output.name)
        promoting = {
            "run_dir": result.run_dir,
            "output": str(output),
            "dst": str(dst),
            "sha256": digest.sha256,
            "size": digest.size,
            "facts": stored_facts_json(facts),
            "parents": [f.id for f in action.inputs],
            "settle": settle,
            "pending_max_id": pending_max_id,
        }
        self.session.execute(
            RUN_TABLE.update()
            .where(RUN_TABLE.c.id == result.run_id)
            .values(status=RunStatus.PROMOTING, promoting=promoting, **result_fields(result))
        )
        commit(self.session)
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
            discard(self.session)
            return self._fail_promotion(
                run_id, process, day, f"the output {dst.name} is already registered ({exc})"
            )
        ended_at = run.ended_at or utcnow()
        head = LogHead(
            run_id,
            run.process_id,
            run.date,
            RunStatus.SUCCEEDED,
            run.argv,
            run.exit_code,
            run.signal,
            None,
            run.host,
            run.started_at,
            ended_at,
        )
        self.session.execute(
            RUN_TABLE.update()
            .where(RUN_TABLE.c.id == run_id)
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
        commit(self.session)
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
        fields = result_fields(result)
        process_id = self.process_ids[action.process]
        head = LogHead.of_result(result, process_id, action.date, RunStatus.SUCCEEDED, fields)
        log_path = self._keep_log(head, Path(result.run_dir) if result.run_dir else None)
        self.session.execute(
            RUN_TABLE.update()
            .where(RUN_TABLE.c.id == result.run_id)
            .values(status=RunStatus.SUCCEEDED, log_path=log_path, **fields)
        )
        self._settle(process_id, action.date, action.slot, settle, pending_max_id, forced_done=True)
        commit(self.session)
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
        for key, value in result_fields(result).items():
            setattr(run, key, value)
        run.status = status
        run.error = error
        run.log_path = self._keep_failure(run, result, error)
        if status not in (RunStatus.ABANDONED, RunStatus.CANCELLED):
            self._settle(
                run.process_id, action.date, action.slot, settle, pending_max_id, forced_done=False
            )
        else:
            self._requeue(run.process_id, action.date, f"run {run.id} {status.value}: {error}")
        note_run_failed(self.session, run, action.process, status, error)
        commit(self.session)
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
        commit(self.session)
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

    def _process_name(self, process_id: int) -> str:
        names = {pid: name for name, pid in self.process_ids.items()}
        return names.get(process_id, str(process_id))

    def _keep_log(self, run: LogHead, run_dir: Path | None) -> str | None:
        if run_dir is None:
            return None
        folder = run_logs_dir(self.paths) / str(run.id // 1000)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{run.id}.log"
        try:
            write_log(target, run, run_dir, self._process_name(run.process_id))
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
            write_log(
                folder / "run.log", LogHead.of(run), folder, self._process_name(run.process_id)
            )
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
        """Wait for background cleaning to finish; stop the inspector workers."""
        self.inspectors.close()
        if self._cleaner is not None:
            self._cleaner.shutdown(wait=True)
            self._cleaner = None


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
