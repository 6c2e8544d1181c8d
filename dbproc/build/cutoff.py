"""Early cutoff (interface.md §17, docs/lifecycle.md): a rebuild of an ``early_cutoff``
process whose output has exactly the bytes of the newest version registers nothing.

Called by :meth:`dbproc.build.recording.Recorder.record` once the output is durable and
checksummed (reliability.md B4 step 3): instead of ``promoting``, ONE transaction marks
the run ``unchanged``, adds a :class:`~dbproc.db.models.Reproduction` of the newest
version (this run, its code, its inputs) and settles the work; the staging is removed
last. No file is registered, so no consumer is queued. A crash before the commit leaves
the run ``running``, which recovery abandons and queues again like any unrecorded run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from dbproc.build.planner import BuildAction
from dbproc.build.run_log_files import LogHead
from dbproc.build.run_start import RUN_TABLE, RunOutcome, result_fields, run_root
from dbproc.clock import utcnow
from dbproc.db.models import File, Process, Reproduction, RunStatus, table_of
from dbproc.db.unit import commit
from dbproc.executors.base import JobResult
from dbproc.faults import crash_point
from dbproc.ingest.placement import Digest
from dbproc.version import Version

if TYPE_CHECKING:
    from dbproc.build.recording import Recorder

logger = logging.getLogger("dbproc.recording")
_REPRODUCTION = table_of(Reproduction)


def reproduces(
    recorder: Recorder, action: BuildAction, digest: Digest
) -> tuple[int, str, str] | None:
    """(id, filename, version) of the newest version when the process opted in and the
    output has exactly its bytes; None otherwise (the output is recorded as usual)."""
    session = recorder.session
    if recorder.early_cutoff is None:
        recorder.early_cutoff = frozenset(
            session.scalars(select(Process.name).where(Process.early_cutoff.is_(True)))
        )
    if action.process not in recorder.early_cutoff or action.previous is None:
        return None
    row = session.execute(
        select(
            File.id,
            File.filename,
            File.sha256,
            File.size,
            File.interface,
            File.quality,
            File.revision,
        ).where(File.id == action.previous.id, File.is_newest.is_(True))
    ).first()
    if row is None or (row.sha256, row.size) != (digest.sha256, digest.size):
        return None
    return row.id, row.filename, str(Version(row.interface, row.quality, row.revision))


def record_unchanged(
    recorder: Recorder,
    action: BuildAction,
    result: JobResult,
    reproduced: tuple[int, str, str],
    settle: bool,
    pending_max_id: int,
) -> RunOutcome:
    """Record the run ``unchanged`` and the reproduction in one transaction."""
    file_id, filename, version = reproduced
    session = recorder.session
    fields = result_fields(result)
    process_id = recorder.process_ids[action.process]
    head = LogHead.of_result(result, process_id, action.date, RunStatus.UNCHANGED, fields)
    log_path = recorder._keep_log(head, Path(result.run_dir) if result.run_dir else None)
    session.execute(
        RUN_TABLE.update()
        .where(RUN_TABLE.c.id == result.run_id)
        .values(
            status=RunStatus.UNCHANGED,
            log_path=log_path,
            output_filename=filename,
            output_version=version,
            **fields,
        )
    )
    session.execute(
        _REPRODUCTION.insert(),
        {
            "file_id": file_id,
            "run_id": result.run_id,
            "code_id": action.code.id,
            "reproduced_at": fields["ended_at"] or utcnow(),
        },
    )
    recorder._settle(
        process_id, action.date, action.slot, settle, pending_max_id, forced_done=action.forced
    )
    commit(session)
    crash_point("job.recorded")
    recorder._clean(str(run_root(recorder.paths, result.run_id)))
    crash_point("job.cleaned")
    logger.info(
        "run %s: %s %s reproduced %s identically (early cutoff)",
        result.run_id,
        action.process,
        action.date,
        filename,
    )
    outcome = RunOutcome.of(result.run_id, RunStatus.UNCHANGED, action, output=filename)
    outcome.version = version
    return outcome
