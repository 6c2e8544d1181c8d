"""What a pass has to plan: the (process, date) keys something changed for.

:func:`pending_work` reads the pending rows, the forced rebuilds and (with
``retry_failed``) the keys whose last run failed, and the newest pending id they cover
(the process loop settles the rows up to it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.build.catalogue import Catalogue
from dbproc.build.planner import PlanKey
from dbproc.db.models import FAILED_RUN_STATUSES, ForcedRebuild, Pending, Run


@dataclass(frozen=True)
class PendingWork:
    """Keys to plan now, and the newest pending row id they cover."""

    keys: list[PlanKey]
    max_pending_id: int


def pending_work(
    session: Session, catalogue: Catalogue, *, retry_failed: bool = False
) -> PendingWork:
    """Every (process, date) that something changed for: pending rows, forced rebuilds,
    and (with ``retry_failed``) the keys whose last run failed."""
    keys: set[PlanKey] = set()
    max_id = 0
    rows = session.execute(select(Pending.process_id, Pending.date, Pending.id)).all()
    for process_id, day, pending_id in rows:
        max_id = max(max_id, pending_id)
        name = catalogue.process_names.get(process_id)
        if name in catalogue.processes:
            keys.add((name, day))
    for process_id, day in session.execute(select(ForcedRebuild.process_id, ForcedRebuild.date)):
        name = catalogue.process_names.get(process_id)
        if name in catalogue.processes:
            keys.add((name, day))
    if retry_failed:
        failed = [s.value for s in FAILED_RUN_STATUSES]
        for process_id, day in session.execute(
            select(Run.process_id, Run.date).distinct().where(Run.status.in_(failed))
        ):
            name = catalogue.process_names.get(process_id)
            if name in catalogue.processes:
                keys.add((name, day))
    everything = {name for name, day in keys if day is None}
    return PendingWork(
        sorted(
            (k for k in keys if k[1] is None or k[0] not in everything),
            key=lambda k: (k[0], k[1] or dt.date.min),
        ),
        max_id,
    )
