"""The dashboard's write actions and who may make them: a bearer token compared in
constant time, sent in a header (never a cookie, so another site cannot make a browser
send it: CSRF-safe by construction)."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db.models import FAILED_RUN_STATUSES, ForcedRebuild, Process, Run
from dbproc.errors import ConfigError, NotFound
from dbproc.feed.events import record_event
from dbproc.web.review import ReviewConflict

logger = logging.getLogger("dbproc.web")


@dataclass(frozen=True)
class Denied:
    """Why a request may not act: its HTTP status and message."""

    status: int
    message: str


def read_token(path: Path) -> str:
    """The token in ``path`` (surrounding white space removed); refuses an empty or
    unreadable file and one that others may read."""
    try:
        token = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--token-file {path}: cannot read it: {exc}") from None
    if len(token) < 16:
        raise ConfigError(
            f"--token-file {path}: the token must be at least 16 characters; "
            "make one with: python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))' > FILE"
        )
    if mode & 0o077:
        raise ConfigError(f"--token-file {path}: others can read it; run chmod 600 {path}")
    return token


def check_bearer(allow_actions: bool, token: str | None, header: str | None) -> Denied | None:
    """None when the request may act; else 403 (read-only server or wrong token) or 401
    (no ``Authorization: Bearer`` header)."""
    if not allow_actions or token is None:
        return Denied(
            403,
            "this dashboard is read-only; start it with "
            "`dbproc serve --allow-actions --token-file FILE` to allow actions",
        )
    if not header or not header.startswith("Bearer "):
        return Denied(
            401,
            "this action needs the header `Authorization: Bearer TOKEN` "
            "(the token of the server's --token-file)",
        )
    if not hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode()):
        return Denied(403, "wrong token")
    return None


def retry_run(session: Session, run_id: int, by: str) -> dict[str, Any]:
    """Ask the next pass to build a failed run's (process, date) again: a forced rebuild,
    which the planner makes even though the same code and inputs failed (the caller
    commits). Only the newest run of its key, and only a failed one, can be retried."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}; `dbproc runs` lists them")
    if run.status not in {s.value for s in FAILED_RUN_STATUSES}:
        raise ReviewConflict(f"run {run_id} is {run.status}, not failed: nothing to retry")
    newest = session.scalar(
        select(func.max(Run.id)).where(
            Run.process_id == run.process_id, Run.date == run.date, Run.slot == run.slot
        )
    )
    if newest != run.id:
        raise ReviewConflict(f"run {run_id} is not the newest of its build (run {newest} is)")
    process = session.get(Process, run.process_id)
    assert process is not None
    queued = session.scalar(
        select(ForcedRebuild).where(
            ForcedRebuild.process_id == run.process_id,
            ForcedRebuild.date == run.date,
            ForcedRebuild.slot == run.slot,
        )
    )
    already = queued is not None and queued.retry_of_run_id == run_id
    note = f"retry of run {run_id} asked by {by} on the dashboard"
    if queued is None:
        session.add(
            ForcedRebuild(
                process_id=run.process_id,
                date=run.date,
                slot=run.slot,
                bump="revision",
                requested_at=utcnow(),
                note=note,
                retry_of_run_id=run_id,
            )
        )
    elif not already:  # a forced rebuild that failed: now also a retry of its failure
        queued.retry_of_run_id = run_id
        queued.note = f"{queued.note}; {note}" if queued.note else note
    record_event(
        session,
        "run.retry",
        product=None,
        date=run.date,
        run_id=run_id,
        detail={"process": process.name, "by": by, "queued": not already},
    )
    logger.info("dashboard: %s asked to retry run %s (%s %s)", by, run_id, process.name, run.date)
    return {
        "run_id": run_id,
        "process": process.name,
        "date": run.date.isoformat(),
        "slot": run.slot,
        "queued": not already,
        "already_queued": already,
        "by": by,
    }
