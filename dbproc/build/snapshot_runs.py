"""The past runs and forced rebuilds of a snapshot's keys, as planner records.

:func:`read_runs` reads the runs the planner looks at (the latest of each key, and the
successful ones of RUN processes) and :func:`read_forced` the forced rebuilds asked for
by ``reprocess``; :class:`~dbproc.build.snapshot.SnapshotLoader` calls both with its
query counter, so the number of queries stays that of the loader.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from dbproc.build.catalogue import Catalogue
from dbproc.build.plan_types import ForcedRequest, RunRecord
from dbproc.db.models import FAILED_RUN_STATUSES, ForcedRebuild, Run, RunStatus
from dbproc.version import VersionPart

Execute = Callable[[Any], Sequence[Any]]
RunKey = tuple[str, dt.date, str]


def read_runs(
    execute: Execute,
    catalogue: Catalogue,
    by_process: dict[str, set[dt.date] | None],
    batches: Iterable[Sequence[ColumnElement[bool]]],
) -> tuple[dict[RunKey, RunRecord], dict[RunKey, list[RunRecord]]]:
    """The latest run of each key and (RUN processes) its successful runs, oldest first;
    ``batches`` are the run-row conditions of the keys, one query per batch."""
    last: dict[RunKey, RunRecord] = {}
    succeeded: dict[RunKey, list[RunRecord]] = defaultdict(list)
    run_processes = {n for n in by_process if catalogue.processes[n].output is None}
    statuses = [
        s.value
        for s in (
            *FAILED_RUN_STATUSES,
            RunStatus.SUCCEEDED,
            RunStatus.ABANDONED,
            RunStatus.CANCELLED,
            RunStatus.UNCHANGED,
        )
    ]
    for batch in batches:
        stmt = (
            select(
                Run.id,
                Run.process_id,
                Run.date,
                Run.slot,
                Run.build_key,
                Run.status,
                Run.code_id,
                Run.inputs,
                Run.error,
            )
            .where(or_(*batch), Run.status.in_(statuses))
            .order_by(Run.id)
        )
        for row in execute(stmt):
            name = catalogue.process_names[row.process_id]
            record = RunRecord(
                row.id,
                name,
                row.date,
                row.slot,
                row.build_key,
                row.status,
                row.code_id,
                tuple(row.inputs or ()),
                row.error,
            )
            key = (name, row.date, row.slot)
            last[key] = record
            if name in run_processes and row.status == RunStatus.SUCCEEDED:
                succeeded[key].append(record)
    return last, dict(succeeded)


def read_forced(
    execute: Execute, catalogue: Catalogue, by_process: dict[str, set[dt.date] | None]
) -> dict[RunKey, ForcedRequest]:
    """The forced rebuilds of the keys (a date of None: every date of the process)."""
    ids = {catalogue.process_ids[n]: n for n in by_process}
    if not ids:
        return {}
    out: dict[RunKey, ForcedRequest] = {}
    for row in execute(select(ForcedRebuild).where(ForcedRebuild.process_id.in_(list(ids)))):
        forced: ForcedRebuild = row[0]
        name = ids[forced.process_id]
        days = by_process[name]
        if days is not None and forced.date not in days:
            continue
        out[(name, forced.date, forced.slot)] = ForcedRequest(
            name, forced.date, forced.slot, VersionPart(forced.bump), forced.retry_of_run_id
        )
    return out
