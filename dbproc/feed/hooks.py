"""The one-line hooks the places that commit changes call to append their events.

Each runs inside the caller's transaction, as its last statement before the commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from dbproc.db.models import FAILED_RUN_STATUSES, Run
from dbproc.feed.events import record_event
from dbproc.mission.model import MissionConfig


def note_run_failed(session: Session, run: Run, process: str, status: str, error: str) -> None:
    """``run.failed`` for a run that failed, timed out or lost its worker (an abandoned
    run is built again next pass and is no failure of the code)."""
    if status not in FAILED_RUN_STATUSES:
        return
    record_event(
        session,
        "run.failed",
        filename=run.output_filename,
        date=run.date,
        version=run.output_version,
        run_id=run.id,
        detail={
            "process": process,
            "status": str(status),
            "exit_code": run.exit_code,
            "error": error[:2000],
            "log": run.log_path,
        },
    )


def note_pass_finished(
    conn: Connection,
    pass_id: int | None,
    state: str,
    outcome: str,
    summary: Mapping[str, Any] | None,
) -> None:
    """``pass.finished`` in the transaction that closes the pass row."""
    if pass_id is None:
        return
    detail: dict[str, Any] = {"pass_id": pass_id, "state": str(state), "outcome": outcome}
    if summary is not None:
        detail["summary"] = dict(summary)
    record_event(conn, "pass.finished", detail=detail)


def note_config_applied(session: Session, config: MissionConfig, changes: Sequence[Any]) -> None:
    """``config.applied`` when an apply changed something; cursors for new notifiers."""
    from dbproc.feed.notify import start_cursors

    start_cursors(session, config.feed.notifiers)
    if not changes:
        return
    mission = config.mission.name
    record_event(
        session,
        "config.applied",
        detail={"mission": mission, "changes": [c.describe() for c in changes]},
    )
