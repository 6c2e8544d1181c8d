"""Recording how a run ended: the job-commit order of reliability.md B4.

start: one transaction inserts the run row. Success: verify the output with its
product's inspector, fsync and checksum it, mark the run ``promoting`` (one transaction),
link the output into the archive without clobbering, then ONE transaction records the
file, its parents, code and run and clears the work it settles; staging is removed last.
Results that finished together are recorded as a group (:meth:`Recorder.record_all`):
one transaction marks them all ``promoting``, each output is placed, one transaction
records them all; each run's own order stays the same.
A crash after ``promoting`` is rolled forward by the next pass instead of recomputed,
and so is a write error while placing (the run stays ``promoting``); a write error
before ``promoting`` abandons the run, which queues it again. The output is judged by
:mod:`dbproc.build.output_checks`, placed and registered by :mod:`dbproc.build.promotion`
(early cutoff: :mod:`dbproc.build.cutoff`).
Failure: logs and partial output go to ``<errors>/runs/<run id>/`` and the run is marked.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import bindparam
from sqlalchemy.orm import Session

from dbproc.build.output_checks import check_output, durable_digest
from dbproc.build.planner import BuildAction
from dbproc.build.promotion import Promotion, finish_promotion, finish_promotions
from dbproc.build.run_log_files import LogHead, fill_streams, write_log
from dbproc.build.run_start import (
    RESULT_STATUS,
    UPDATE_RUN,
    RunOutcome,
    result_fields,
    run_logs_dir,
    run_root,
    stored_facts_json,
)
from dbproc.build.staging_sweep import StagingSweeper
from dbproc.db.dependents import Consumer
from dbproc.db.file_paths import MissionPaths, destination
from dbproc.db.models import ForcedRebuild, Pending, Run, RunStatus, table_of
from dbproc.db.prepared import Prepared, together
from dbproc.db.unit import commit, release
from dbproc.executors.base import JobResult
from dbproc.faults import crash_point
from dbproc.feed.hooks import note_run_failed
from dbproc.ingest.facts import ProductRule
from dbproc.ingest.inspection import InspectorSet

logger = logging.getLogger("dbproc.recording")

_PENDING = table_of(Pending)
_FORCED = table_of(ForcedRebuild)
_SETTLE_PENDING = Prepared(
    _PENDING.delete().where(
        _PENDING.c.process_id == bindparam("pid"),
        _PENDING.c.date == bindparam("day"),
        _PENDING.c.id <= bindparam("upto"),
    )
)
_FORCED_DONE = Prepared(
    _FORCED.delete().where(
        _FORCED.c.process_id == bindparam("pid"),
        _FORCED.c.date == bindparam("day"),
        _FORCED.c.slot == bindparam("slot"),
    )
)


class Finished(NamedTuple):
    """A result to record, and how much of its key's pending work recording it settles."""

    action: BuildAction
    result: JobResult
    settle: bool
    pending_max_id: int


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
        self._cleaner = StagingSweeper() if clean_in_background else None
        self.paths = paths
        self.rules = rules
        self.process_ids = process_ids
        self.output_products = output_products
        self.consumers: dict[int, list[Consumer]] = {}
        self.widest: dict[int, float] = {}
        self.inspectors = InspectorSet(list(rules.values()), paths.codes)
        self.early_cutoff: frozenset[str] | None = None  # loaded by build.cutoff
        self._log_folders: set[Path] = set()  # the kept logs' folders made so far
        self._names: dict[int, str] | None = None  # process id -> name, for the logs

    def record(
        self, action: BuildAction, result: JobResult, *, settle: bool, pending_max_id: int
    ) -> RunOutcome:
        """Record ``result``; with ``settle``, clear the pending rows of (process, date)."""
        [outcome] = self.record_all([Finished(action, result, settle, pending_max_id)])
        return outcome

    def record_all(self, finished: Sequence[Finished]) -> list[RunOutcome]:
        """Record results that finished together; the outcomes in their order.

        A failure, a success without output or an early cutoff is recorded on its own;
        the outputs to promote go as a group: ONE transaction marks them all
        ``promoting``, then each is placed and ONE transaction records them all
        (:func:`~dbproc.build.promotion.finish_promotions`)."""
        release(self.session)
        outcomes: dict[int, RunOutcome] = {}
        group: list[tuple[Promotion, JobResult]] = []
        for one in finished:
            checked = self._check(one)
            if isinstance(checked, RunOutcome):
                outcomes[one.result.run_id] = checked
            else:
                group.append((checked, one.result))
        if group:
            rows = [
                {
                    "rid": item.run_id,
                    "status": RunStatus.PROMOTING,
                    "promoting": item.promoting,
                    **result_fields(result),
                }
                for item, result in group
            ]
            UPDATE_RUN.execute(self.session.connection(), rows)
            commit(self.session)
            for _ in group:
                crash_point("job.promoting")
            promoted = finish_promotions(self, [item for item, _ in group])
            outcomes.update((outcome.run_id, outcome) for outcome in promoted)
        return [outcomes[one.result.run_id] for one in finished]

    def _check(self, one: Finished) -> Promotion | RunOutcome:
        """The promotion a successful result's output asks for, or the outcome of
        recording a result that needs none (failed, no output, early cutoff)."""
        action, result, settle, pending_max_id = one
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
        facts = check_output(self.inspectors, self.output_products, action, result, output)
        if isinstance(facts, str):
            return self._fail(action, result, RunStatus.FAILED, facts, settle, pending_max_id)
        try:
            digest = durable_digest(result, output)
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
        return Promotion(result.run_id, action.process, action.date, action.slot, promoting, action)

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
        """Place and record a run in state ``promoting`` (also used by recovery); see
        :func:`dbproc.build.promotion.finish_promotion`."""
        return finish_promotion(self, run_id, process, day, slot, promoting, action=action)

    def _succeed_without_output(
        self, action: BuildAction, result: JobResult, settle: bool, pending_max_id: int
    ) -> RunOutcome:
        fields = result_fields(result)
        process_id = self.process_ids[action.process]
        head = LogHead.of_result(result, process_id, action.date, RunStatus.SUCCEEDED, fields)
        log_path = self._keep_log(head, Path(result.run_dir) if result.run_dir else None)
        connection = self.session.connection()
        with together(connection):  # PostgreSQL: one round trip for both
            UPDATE_RUN.execute(
                connection,
                {
                    "rid": result.run_id,
                    "status": RunStatus.SUCCEEDED,
                    "log_path": log_path,
                    **fields,
                },
            )
            self._settle(
                process_id,
                action.date,
                action.slot,
                settle,
                pending_max_id,
                forced_done=action.forced,
            )
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
        connection = self.session.connection()
        if settle:
            _SETTLE_PENDING.execute(
                connection, {"pid": process_id, "day": day, "upto": pending_max_id}
            )
        if forced_done:
            _FORCED_DONE.execute(connection, {"pid": process_id, "day": day, "slot": slot})

    def _process_name(self, process_id: int) -> str:
        if self._names is None:
            self._names = {pid: name for name, pid in self.process_ids.items()}
        return self._names.get(process_id, str(process_id))

    def _keep_log(self, run: LogHead, run_dir: Path | None) -> str | None:
        if run_dir is None:
            return None
        folder = run_logs_dir(self.paths) / str(run.id // 1000)
        target = folder / f"{run.id}.log"
        try:
            if folder not in self._log_folders:  # made once a pass, not once a run
                folder.mkdir(parents=True, exist_ok=True)
                self._log_folders.add(folder)
            try:
                write_log(target, run, run_dir, self._process_name(run.process_id))
            except FileNotFoundError:  # the folder went meanwhile (a prune): make it again
                folder.mkdir(parents=True, exist_ok=True)
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
                fill_streams(folder)
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
        """Remove a recorded run's staging (reliability.md B4 step 7): at once, or with
        background cleaning on, by :class:`~dbproc.build.staging_sweep.StagingSweeper`
        together with other runs' (:meth:`close` removes what is left and waits)."""
        if not root:
            return
        if self._cleaner is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            self._cleaner.add(root)

    def close(self) -> None:
        """Remove what is left of the runs' staging and wait for it; stop the inspector
        workers."""
        self.inspectors.close()
        if self._cleaner is not None:
            self._cleaner.close()
            self._cleaner = None
