"""What ``dbproc plan`` shows: the whole chain a pass would build, level by level, and
what a pass that is running right now already holds.

Read only. Level 1 is what can start now; level 2 what follows once level 1 succeeded,
and so on (predicted by assuming each build succeeds, as ``config apply --dry-run`` does).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dbproc.admin.status import HolderState, PlannedBuild, lock_state, plan_now
from dbproc.build.catalogue import load_catalogue
from dbproc.build.plan_types import BuildAction
from dbproc.build.preview import cascade
from dbproc.build.snapshot import SnapshotLoader
from dbproc.db.models import ACTIVE_RUN_STATUSES, PassRecord, PassState, Process, Run
from dbproc.records import Record


@dataclass(frozen=True)
class HeldRun(Record):
    """The active run of a running pass that already holds a build."""

    run_id: int
    status: str
    pass_id: int | None


@dataclass(frozen=True)
class ChainBuild(PlannedBuild):
    """A build of the chain: its ``level`` (1 = can start now) and the run of a running
    pass that already holds it (``in_flight``)."""

    level: int = 1
    in_flight: HeldRun | None = None


@dataclass(frozen=True)
class HeldBuild(Record):
    """A build a running pass holds (``plan``'s ``pass.holds``)."""

    process: str
    date: dt.date
    run_id: int
    status: str
    pass_id: int | None


@dataclass(frozen=True)
class RunningPass(Record):
    """The pass running now (``holder`` None when the lock is held but no row says so)
    and the builds it holds."""

    holder: HolderState | None
    holds: list[HeldBuild]

    def as_dict(self) -> dict[str, Any]:
        """The holder's object (``{"pass_id": null}`` without one) with ``holds``."""
        head = self.holder.as_dict() if self.holder is not None else {"pass_id": None}
        return {**head, "holds": [h.as_dict() for h in self.holds]}


@dataclass(frozen=True)
class PlanChain(Record):
    """What ``dbproc plan`` shows: the builds level by level, and the running pass."""

    builds: list[ChainBuild]
    running: RunningPass | None = field(default=None, metadata={"key": "pass"})

    def level(self, n: int) -> list[ChainBuild]:
        """The builds of level ``n`` (1: those that can start now)."""
        return [b for b in self.builds if b.level == n]


def plan_view(
    engine: Engine,
    session: Session,
    *,
    next_only: bool = False,
    everything: bool = False,
    retry_failed: bool = False,
) -> PlanChain:
    """Every build of the chain with its ``level`` and ``in_flight`` (the run of a running
    pass that holds it), and that pass; ``next_only`` keeps level 1."""
    catalogue = load_catalogue(session)
    loader = SnapshotLoader(session, catalogue)
    first = plan_now(session, retry_failed=retry_failed, everything=everything)
    levels: dict[tuple[str, dt.date, str], int] = {}
    actions: list[BuildAction]
    if next_only:
        actions = [d.action for d in first if d.action is not None]
        levels = {a.key: 1 for a in actions}
    else:
        actions = cascade(loader, first, levels)
    lock = lock_state(engine, session)
    held = _held_builds(session) if lock.held else {}
    running = None
    if lock.held:
        holders = lock.passes_marked_running
        running = RunningPass(
            holders[0] if holders else None,
            [
                HeldBuild(key[0], key[1], run.run_id, run.status, run.pass_id)
                for key, run in sorted(held.items())
            ],
        )
    builds = [
        ChainBuild(
            **PlannedBuild.fields_of(action),
            level=levels.get(action.key, 1),
            in_flight=held.get(action.key),
        )
        for action in sorted(
            actions, key=lambda a: (levels.get(a.key, 1), a.process, a.date, a.slot)
        )
    ]
    return PlanChain(builds, running)


def _held_builds(session: Session) -> dict[tuple[str, dt.date, str], HeldRun]:
    """(process, date, slot) → the active run of a running pass that holds it."""
    rows = session.execute(
        select(Process.name, Run.date, Run.slot, Run.id, Run.status, Run.pass_id)
        .join(Process, Process.id == Run.process_id)
        .join(PassRecord, PassRecord.id == Run.pass_id)
        .where(
            PassRecord.state == PassState.RUNNING,
            Run.status.in_([s.value for s in ACTIVE_RUN_STATUSES]),
        )
    ).all()
    return {
        (name, day, slot): HeldRun(run_id, status, pass_id)
        for name, day, slot, run_id, status, pass_id in rows
    }
