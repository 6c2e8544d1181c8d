"""Finishing a ``promoting`` run: the last steps of the job-commit order (reliability.md B4).

:func:`finish_promotion` links the staged output into the archive without clobbering,
then ONE transaction registers the file with its parents, code and run, marks the run
``succeeded`` and settles the work it did; the staging is removed last.
:func:`finish_promotions` does the same for a group of runs that finished together:
each output is placed, then ONE transaction records them all (each on its own when the
group meets an output registered meanwhile). The
:class:`~dbproc.build.recording.Recorder` calls it once ``promoting`` is committed, and
recovery for the runs a dead pass left ``promoting``. A write error while placing leaves
the run ``promoting`` for the next pass; an output that cannot be placed or registered
abandons the run, which queues it again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from dbproc.build.planner import BuildAction
from dbproc.build.run_log_files import LogHead
from dbproc.build.run_start import RUN_TABLE, UPDATE_RUN, RunOutcome, facts_from_json
from dbproc.clock import utcnow
from dbproc.db.dependents import insert_pending
from dbproc.db.file_paths import stored_path
from dbproc.db.files import IdentityTaken, register_file
from dbproc.db.models import Run, RunStatus
from dbproc.db.prepared import together
from dbproc.db.unit import commit, discard
from dbproc.faults import crash_point
from dbproc.feed.events import record_events
from dbproc.ingest.facts import FileFacts
from dbproc.ingest.placement import Digest, Occupied, hash_file, place

if TYPE_CHECKING:
    from dbproc.build.recording import Recorder

logger = logging.getLogger("dbproc.recording")  # the recorder's log lines, as before

_RUNS_FOR_LOG = select(
    RUN_TABLE.c.id,
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
).where(RUN_TABLE.c.id.in_(bindparam("rids", expanding=True)))


@dataclass(frozen=True)
class Promotion:
    """A run in state ``promoting`` (committed), to be placed and recorded."""

    run_id: int
    process: str
    day: dt.date
    slot: str
    promoting: Mapping[str, Any]
    action: BuildAction | None = None


@dataclass
class _Placed:
    """A promotion whose output is in the archive, to be recorded."""

    item: Promotion
    facts: FileFacts
    dst: Path
    digest: Digest
    queued: list[tuple[int, dt.date]] = field(default_factory=list)


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
    item = Promotion(run_id, process, day, slot, promoting, action)
    [outcome] = finish_promotions(recorder, [item])
    return outcome


def finish_promotions(recorder: Recorder, items: Sequence[Promotion]) -> list[RunOutcome]:
    """Place each run's output, then record every placed run in ONE transaction; the
    outcomes in the order of ``items``. A run that cannot be placed ends on its own
    (abandoned, or left ``promoting`` after a write error); when the group meets an
    output registered meanwhile, each run is recorded on its own instead."""
    outcomes: dict[int, RunOutcome] = {}
    placed: list[_Placed] = []
    for item in items:
        rule = recorder.rules[item.promoting["facts"]["product"]]
        facts = facts_from_json(item.promoting["facts"], rule)
        dst = Path(item.promoting["dst"])
        digest = Digest(item.promoting["sha256"], item.promoting["size"])
        staged = Path(item.promoting["output"])
        unplaced = _place(recorder, item.run_id, item.process, item.day, staged, dst, digest)
        if unplaced is not None:
            outcomes[item.run_id] = unplaced
            continue
        crash_point("job.placed")
        placed.append(_Placed(item, facts, dst, digest))
    if len(placed) > 1:
        widest = dict(recorder.widest)
        try:
            outcomes.update(_record(recorder, placed))
        except (IdentityTaken, IntegrityError):
            discard(recorder.session)
            recorder.widest.clear()  # what the group's registrations cached is undone
            recorder.widest.update(widest)
            for one in placed:
                one.queued.clear()
        else:
            placed = []
    for one in placed:  # alone: the only one, or the group met a registration
        try:
            outcomes.update(_record(recorder, [one]))
        except (IdentityTaken, IntegrityError) as exc:
            discard(recorder.session)
            error = f"the output {one.dst.name} is already registered ({exc})"
            item = one.item
            outcomes[item.run_id] = _fail_promotion(
                recorder, item.run_id, item.process, item.day, error
            )
    return [outcomes[item.run_id] for item in items]


def _record(recorder: Recorder, placed: Sequence[_Placed]) -> dict[int, RunOutcome]:
    """Register the placed outputs and mark their runs ``succeeded`` in ONE transaction,
    then clean each run's staging; raises (not committed) when an output is taken."""
    session = recorder.session
    rows = {
        row.id: row
        for row in session.connection().execute(
            _RUNS_FOR_LOG, {"rids": [p.item.run_id for p in placed]}
        )
    }
    pending: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    with together(session.connection()):  # PostgreSQL: the writes after each file's id
        for one in placed:
            _register(recorder, one, rows[one.item.run_id], pending, events)
        insert_pending(session, pending)
        record_events(session, events)  # last: see dbproc.feed.events
    commit(session)
    outcomes: dict[int, RunOutcome] = {}
    for one in placed:
        item = one.item
        crash_point("job.recorded")
        recorder._clean(rows[item.run_id].run_root)
        crash_point("job.cleaned")
        logger.info("run %s: %s %s made %s", item.run_id, item.process, item.day, one.dst.name)
        outcomes[item.run_id] = RunOutcome(
            item.run_id,
            RunStatus.SUCCEEDED,
            item.process,
            item.day,
            item.action.reason.value if item.action else "recovered",
            output=one.dst.name,
            version=str(one.facts.version),
            queued=one.queued,
        )
    return outcomes


def _register(
    recorder: Recorder,
    one: _Placed,
    run: Any,  # a row of _RUNS_FOR_LOG
    pending: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> None:
    """Register one placed output and mark its run ``succeeded`` (not committed)."""
    item = one.item
    register_file(
        recorder.session,
        one.facts,
        filename=one.dst.name,
        path=stored_path(recorder.paths.root, one.dst),
        sha256=one.digest.sha256,
        size=one.digest.size,
        code_id=run.code_id,
        run_id=item.run_id,
        parents=item.promoting["parents"],
        consumers=recorder.consumers,
        cause=f"{item.process} built {one.dst.name}",
        queued=one.queued,
        widest=recorder.widest,
        pending=pending,
        events=events,
    )
    # a reprocess request made after the plan stays for the next plan
    forced = item.action is None or item.action.forced
    _mark_succeeded(recorder, item.run_id, run, item.day, item.slot, item.promoting, forced)


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
    run: Any,  # a row of _RUNS_FOR_LOG
    day: dt.date,
    slot: str,
    promoting: Mapping[str, Any],
    forced_done: bool,
) -> None:
    """Mark the run ``succeeded`` with its kept log and settle its work (not committed);
    ``forced_done``: its build was asked for by ``reprocess``, whose request it ends."""
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
    UPDATE_RUN.execute(
        recorder.session.connection(),
        {
            "rid": run_id,
            "status": RunStatus.SUCCEEDED,
            "log_path": recorder._keep_log(head, Path(promoting["run_dir"])),
            "promoting": None,
            "ended_at": ended_at,
        },
    )
    recorder._settle(
        run.process_id,
        day,
        slot,
        promoting.get("settle", True),
        promoting.get("pending_max_id", 0),
        forced_done=forced_done,
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
