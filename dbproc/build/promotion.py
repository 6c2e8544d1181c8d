"""Finishing a ``promoting`` run: the last steps of the job-commit order (reliability.md B4).

:func:`finish_promotion` links the staged output into the archive without clobbering,
then ONE transaction registers the file with its parents, code and run, marks the run
``succeeded`` and settles the work it did; the staging is removed last. The
:class:`~dbproc.build.recording.Recorder` calls it once ``promoting`` is committed, and
recovery for the runs a dead pass left ``promoting``. A write error while placing leaves
the run ``promoting`` for the next pass; an output that cannot be placed or registered
abandons the run, which queues it again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from dbproc.build.planner import BuildAction
from dbproc.build.run_log_files import LogHead
from dbproc.build.run_start import RUN_TABLE, RunOutcome, facts_from_json
from dbproc.clock import utcnow
from dbproc.db.file_paths import stored_path
from dbproc.db.files import IdentityTaken, register_file
from dbproc.db.models import Run, RunStatus
from dbproc.db.unit import commit, discard
from dbproc.faults import crash_point
from dbproc.ingest.placement import Digest, Occupied, hash_file, place

if TYPE_CHECKING:
    from dbproc.build.recording import Recorder

logger = logging.getLogger("dbproc.recording")  # the recorder's log lines, as before

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


def finish_promotion(
    recorder: Recorder,
    run_id: int,
    process: str,
    day: dt.date,
    slot: str,
    promoting: Mapping[str, Any],
    *,
    action: BuildAction | None = None,
) -> RunOutcome:
    """Place and record a run in state ``promoting`` (also used by recovery)."""
    session = recorder.session
    rule = recorder.rules[promoting["facts"]["product"]]
    facts = facts_from_json(promoting["facts"], rule)
    dst = Path(promoting["dst"])
    digest = Digest(promoting["sha256"], promoting["size"])
    unplaced = _place(recorder, run_id, process, day, Path(promoting["output"]), dst, digest)
    if unplaced is not None:
        return unplaced
    crash_point("job.placed")
    run = session.execute(_RUN_FOR_LOG, {"rid": run_id}).one()
    queued: list[tuple[int, dt.date]] = []
    try:
        register_file(
            session,
            facts,
            filename=dst.name,
            path=stored_path(recorder.paths.root, dst),
            sha256=digest.sha256,
            size=digest.size,
            code_id=run.code_id,
            run_id=run_id,
            parents=promoting["parents"],
            consumers=recorder.consumers,
            cause=f"{process} built {dst.name}",
            queued=queued,
            widest=recorder.widest,
        )
    except (IdentityTaken, IntegrityError) as exc:
        discard(session)
        return _fail_promotion(
            recorder, run_id, process, day, f"the output {dst.name} is already registered ({exc})"
        )
    _mark_succeeded(recorder, run_id, run, day, slot, promoting)
    commit(session)
    crash_point("job.recorded")
    recorder._clean(run.run_root)
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


def _place(
    recorder: Recorder,
    run_id: int,
    process: str,
    day: dt.date,
    staged: Path,
    dst: Path,
    digest: Digest,
) -> RunOutcome | None:
    """Link the staged output to ``dst``; the run's outcome when that cannot be done."""
    try:
        if staged.exists():  # fsynced before the run became ``promoting``
            place(staged, dst, digest, recorder.paths.staging / "promote", sync_source=False)
        elif not (dst.is_file() and hash_file(dst) == digest):
            return _fail_promotion(
                recorder,
                run_id,
                process,
                day,
                "the staged output is gone and the archive holds no copy of it",
            )
    except Occupied as exc:
        return _fail_promotion(recorder, run_id, process, day, f"cannot place the output: {exc}")
    except OSError as exc:  # disk full, I/O error: the next pass places it
        error = (
            f"could not place the output {dst.name}: {exc}; the run stays promoting "
            "and the next pass places it"
        )
        logger.error("run %s: %s", run_id, error)
        return RunOutcome(run_id, RunStatus.PROMOTING, process, day, error=error)
    return None


def _mark_succeeded(
    recorder: Recorder,
    run_id: int,
    run: Any,  # a row of _RUN_FOR_LOG
    day: dt.date,
    slot: str,
    promoting: Mapping[str, Any],
) -> None:
    """Mark the run ``succeeded`` with its kept log and settle its work (not committed)."""
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
    recorder.session.execute(
        RUN_TABLE.update()
        .where(RUN_TABLE.c.id == run_id)
        .values(
            status=RunStatus.SUCCEEDED,
            log_path=recorder._keep_log(head, Path(promoting["run_dir"])),
            promoting=None,
            ended_at=ended_at,
        )
    )
    recorder._settle(
        run.process_id,
        day,
        slot,
        promoting.get("settle", True),
        promoting.get("pending_max_id", 0),
        forced_done=True,
    )


def _fail_promotion(
    recorder: Recorder, run_id: int, process: str, day: dt.date, error: str
) -> RunOutcome:
    """Abandon a run whose output cannot be placed or registered; queue its key again."""
    session = recorder.session
    run = session.get(Run, run_id)
    assert run is not None
    run.status = RunStatus.ABANDONED
    run.error = error
    recorder._requeue(run.process_id, day, f"run {run_id} abandoned: {error}")
    commit(session)
    logger.error("run %s: %s", run_id, error)
    return RunOutcome(run_id, RunStatus.ABANDONED, process, day, error=error)
