"""``dbproc status``: the lock, recent passes, counts of files, failures and pending work."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, exists, func, select
from sqlalchemy.orm import Session, aliased

from dbproc.build.catalogue import load_catalogue
from dbproc.build.pending_work import pending_work
from dbproc.build.planner import BuildAction, Decision, PlanKey, plan
from dbproc.build.snapshot import PLAN_CHUNK, SnapshotLoader
from dbproc.clock import utcnow
from dbproc.control.os_lock import OsLock
from dbproc.control.pass_holders import running_holders
from dbproc.db import queries
from dbproc.db.models import (
    FAILED_RUN_STATUSES,
    CoverageMonth,
    PassRecord,
    Pending,
    Process,
    Product,
    Reject,
    Run,
)
from dbproc.db.queries import chunked
from dbproc.feed.review import pending_count
from dbproc.records import Record


def plan_now(
    session: Session, *, retry_failed: bool = False, everything: bool = False
) -> list[Decision]:
    """The decisions with a build: what ``dbproc process`` would run now (read only).
    ``everything`` considers every date of every process instead of just what changed.
    Dates are planned in chunks and only decisions with a build are kept, so memory
    follows the chunk and the builds, not the archive."""
    catalogue = load_catalogue(session)
    loader = SnapshotLoader(session, catalogue)
    keys: list[PlanKey]
    if everything:
        keys = [(name, None) for name in catalogue.processes]
    else:
        keys = pending_work(session, catalogue, retry_failed=retry_failed).keys
    decisions: list[Decision] = []
    for chunk in chunked(loader.dated_keys(keys), PLAN_CHUNK):
        snapshot = loader.load(chunk, retry_failed=retry_failed)
        decisions.extend(d for d in plan(snapshot, chunk) if d.action is not None)
    decisions.sort(key=lambda d: (d.process, d.date, d.slot))
    return decisions


def preview(session: Session, *, retry_failed: bool = False) -> list[BuildAction]:
    """Every build the next pass would make, downstream included (read only)."""
    catalogue = load_catalogue(session)
    loader = SnapshotLoader(session, catalogue)
    keys = pending_work(session, catalogue, retry_failed=retry_failed).keys
    first = plan(loader.load(keys, retry_failed=retry_failed), keys)
    from dbproc.build.preview import cascade  # (not imported for `status`: it needs no cascade)

    actions = cascade(loader, first)
    return actions


@dataclass(frozen=True)
class PlannedBuild(Record):
    """A build the planner would make (the contract's ``plan --json`` shape, section 7)."""

    process: str
    date: dt.date
    output: str | None
    version: str | None
    inputs: list[str]
    reason: str
    reasons: list[str]
    evidence: list[str]
    code_version: str
    slot: str
    replaces: str | None

    @staticmethod
    def fields_of(action: BuildAction) -> dict[str, Any]:
        """The fields of the record of ``action`` (for records that extend this one)."""
        return {
            "process": action.process,
            "date": action.date,
            "output": action.output_filename,
            "version": str(action.output_version) if action.output_version else None,
            "inputs": [f.filename for f in action.inputs],
            "reason": action.reason.value,
            "reasons": [r.value for r in action.reasons],
            "evidence": list(action.evidence),
            "code_version": str(action.code.version),
            "slot": action.slot,
            "replaces": action.previous.filename if action.previous else None,
        }

    @classmethod
    def of(cls, action: BuildAction) -> PlannedBuild:
        """The record of a planned build."""
        return cls(**cls.fields_of(action))


@dataclass(frozen=True)
class HolderState(Record):
    """A pass marked running, as ``status`` shows it."""

    pass_id: int
    host: str
    pid: int
    command: str
    heartbeat_age_seconds: float
    #: what it says it does ("inspecting X for 12 s", "running 2 codes")
    activity: str | None


@dataclass(frozen=True)
class LockState(Record):
    """Is a pass running? The lock, and the pass rows marked running."""

    held: bool
    passes_marked_running: list[HolderState]
    #: free, but a row says running: a pass crashed (the next one recovers it)
    stale: bool
    #: what the running pass says it does
    activity: str | None


def lock_state(engine: Engine, session: Session) -> LockState:
    """Is a pass running? (the lock, and the pass rows)."""
    probe = OsLock(engine)
    free = probe.try_acquire()
    if free:
        probe.release()
    holders = running_holders(session)
    doing = {
        row.id: row.activity
        for row in session.execute(
            select(PassRecord.id, PassRecord.activity).where(
                PassRecord.id.in_([h.pass_id for h in holders])
            )
        )
    }
    return LockState(
        held=not free,
        passes_marked_running=[
            HolderState(
                h.pass_id,
                h.host,
                h.pid,
                h.command,
                round(h.heartbeat_age, 1),
                doing.get(h.pass_id),
            )
            for h in holders
        ],
        stale=free and bool(holders),
        activity=doing.get(holders[-1].pass_id) if holders and not free else None,
    )


@dataclass(frozen=True)
class PassSummary(Record):
    """One pass row (``status``'s last passes)."""

    id: int
    command: str
    host: str
    pid: int
    started_at: dt.datetime
    ended_at: dt.datetime | None
    state: str
    outcome: str | None
    heartbeat_age_seconds: float
    #: the pass's own counts (ingest, process, recovery), as its report gave them
    summary: dict[str, Any] | None


@dataclass(frozen=True)
class FileCounts(Record):
    """Files of one product: all versions, and the newest ones."""

    files: int
    newest: int


@dataclass(frozen=True)
class ArchiveStatus(Record):
    """Everything ``dbproc status`` shows."""

    mission: str
    lock: LockState
    passes: list[PassSummary]
    files: dict[str, FileCounts]
    #: process -> dates whose newest run failed
    failed_builds: dict[str, int]
    pending_builds: int
    pending_by_process: dict[str, int]
    pending_rows: int
    rejects: int
    #: files waiting for a verdict (section 13)
    pending_reviews: int


def status(engine: Engine, session: Session, *, passes: int = 5) -> ArchiveStatus:
    """Everything ``dbproc status`` shows."""
    mission = queries.get_mission(session)
    now = utcnow()
    recent = session.scalars(select(PassRecord).order_by(PassRecord.id.desc()).limit(passes))
    pending_keys = session.scalar(select(func.count()).select_from(Pending)) or 0
    rejects = (
        session.scalar(select(func.count()).select_from(Reject).where(Reject.retried_at.is_(None)))
        or 0
    )
    lock = lock_state(engine, session)
    builds = [d for d in plan_now(session) if d.action is not None]
    return ArchiveStatus(
        mission=mission.name,
        lock=lock,
        passes=[
            PassSummary(
                p.id,
                p.command,
                p.host,
                p.pid,
                p.started_at,
                p.ended_at,
                p.state,
                p.outcome,
                round((now - p.heartbeat_at).total_seconds(), 1),
                p.summary,
            )
            for p in recent
        ],
        files=_file_counts(session),
        failed_builds=_failed_builds(session),
        pending_builds=len(builds),
        pending_by_process=_count(d.process for d in builds),
        pending_rows=int(pending_keys),
        rejects=int(rejects),
        pending_reviews=pending_count(session),
    )


def _file_counts(session: Session) -> dict[str, FileCounts]:
    """Files of each product: all versions, and the newest ones (one per identity). Read
    from the month summary that every file registration keeps (dbproc.db.coverage), a
    few rows a product and month, not from a scan of ``file``."""
    counts = session.execute(
        select(
            Product.name,
            func.coalesce(func.sum(CoverageMonth.files), 0),
            func.coalesce(func.sum(CoverageMonth.slots), 0),
        )
        .join(CoverageMonth, CoverageMonth.product_id == Product.id, isouter=True)
        .group_by(Product.name)
        .order_by(Product.name)
    ).all()
    return {name: FileCounts(int(total), int(newest)) for name, total, newest in counts}


def _failed_builds(session: Session) -> dict[str, int]:
    """Process -> (date, slot) keys whose newest run failed: the failed runs (the status
    index) that no later run of their key follows (the (process, date) index), so the
    cost follows the failures, not every run ever made."""
    later = aliased(Run)
    failed = session.execute(
        select(Process.name, func.count())
        .select_from(Run)
        .join(Process, Process.id == Run.process_id)
        .where(
            Run.status.in_([s.value for s in FAILED_RUN_STATUSES]),
            ~exists().where(
                later.process_id == Run.process_id,
                later.date == Run.date,
                later.slot == Run.slot,
                later.id > Run.id,
            ),
        )
        .group_by(Process.name)
    ).all()
    return {name: int(n) for name, n in failed}


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out
