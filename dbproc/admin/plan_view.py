"""What ``dbproc plan`` shows: the whole chain a pass would build, level by level, and
what a pass that is running right now already holds.

Read only. Level 1 is what can start now; level 2 what follows once level 1 succeeded,
and so on (predicted by assuming each build succeeds, as ``config apply --dry-run`` does).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dbproc.admin.status import action_json, lock_state, plan_now
from dbproc.build.catalogue import load_catalogue
from dbproc.build.plan_types import BuildAction
from dbproc.build.preview import cascade
from dbproc.build.snapshot import SnapshotLoader
from dbproc.db.models import ACTIVE_RUN_STATUSES, PassRecord, PassState, Process, Run


def plan_view(
    engine: Engine,
    session: Session,
    *,
    next_only: bool = False,
    everything: bool = False,
    retry_failed: bool = False,
) -> dict[str, Any]:
    """``{"builds": [...], "pass": {...} | None}``: each build in the ``plan --json``
    shape plus ``level`` and ``in_flight`` (the run of a running pass that holds it)."""
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
    running = _running_pass(engine, session)
    held = _held_builds(session) if running else {}
    if running is not None:
        running["holds"] = [
            {"process": key[0], "date": key[1].isoformat(), **run}
            for key, run in sorted(held.items())
        ]
    builds = []
    for action in sorted(actions, key=lambda a: (levels.get(a.key, 1), a.process, a.date, a.slot)):
        row = action_json(action)
        row["level"] = levels.get(action.key, 1)
        row["in_flight"] = held.get(action.key)
        builds.append(row)
    return {"builds": builds, "pass": running}


def _running_pass(engine: Engine, session: Session) -> dict[str, Any] | None:
    lock = lock_state(engine, session)
    if not lock["held"]:
        return None
    holders = lock["passes_marked_running"]
    return holders[0] if holders else {"pass_id": None}


def _held_builds(session: Session) -> dict[tuple[str, dt.date, str], dict[str, Any]]:
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
        (name, day, slot): {"run_id": run_id, "status": status, "pass_id": pass_id}
        for name, day, slot, run_id, status, pass_id in rows
    }
