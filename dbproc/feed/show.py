"""``dbproc show FILENAME``: one file as one JSON document (EDELWEISS's view of a file).

Registration facts and metadata (the ``files --json`` object), the review state with
every verdict, the run that made it, the runs that used it, its parents and children,
and every event that names it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.db import queries
from dbproc.db.models import Code, File, FileLink, Process, ProcessInput, Product, Run
from dbproc.feed.events import EventQuery, EventRecord, list_events
from dbproc.feed.review import Verdict, review_history
from dbproc.provenance.inventory import file_record, run_record
from dbproc.records import FileRecord, fields_of


def _code_version(session: Session, code_id: int) -> str | None:
    code = session.get(Code, code_id)
    return str(code.version) if code else None


def _run_summary(session: Session, run: Run, process: str) -> dict[str, Any]:
    data = run_record(run, process, _code_version(session, run.code_id)).as_dict()
    for key in ("stdout_tail", "stderr_tail", "argv"):
        data.pop(key, None)
    return data


def _runs_that_used(session: Session, record: File) -> list[dict[str, Any]]:
    """Runs whose inputs held this file: the consumers' runs near its date."""
    span = (record.stop - record.start).days + 1
    out: list[dict[str, Any]] = []
    consumers = session.execute(
        select(ProcessInput.process_id, ProcessInput.before, ProcessInput.after, Process.name)
        .join(Process, Process.id == ProcessInput.process_id)
        .where(ProcessInput.product_id == record.product_id)
    ).all()
    for pid, before, after, name in consumers:
        lo = record.date - dt.timedelta(days=after + span)
        hi = record.date + dt.timedelta(days=before + span)
        runs = session.scalars(
            select(Run)
            .where(Run.process_id == pid, Run.date >= lo, Run.date <= hi)
            .order_by(Run.id)
        )
        out.extend(_run_summary(session, r, name) for r in runs if record.id in (r.inputs or []))
    return sorted(out, key=lambda r: int(r["id"]))


def _names(session: Session, ids: list[int]) -> list[str]:
    if not ids:
        return []
    return sorted(session.scalars(select(File.filename).where(File.id.in_(ids))))


@dataclass(frozen=True, kw_only=True)
class FileDocument(FileRecord):
    """One file as one document (``dbproc show``): its record (``review`` is its state
    now), every verdict, the run that made it, the runs that read it, its parents and
    children, and every event that names it."""

    review_required: bool
    verdicts: list[Verdict]
    made_by_run: dict[str, Any] | None
    used_by: list[dict[str, Any]]
    parents: list[str]
    children: list[str]
    events: list[EventRecord]


def show_file(session: Session, filename: str) -> FileDocument:
    """The document of ``dbproc show FILENAME``."""
    record = queries.get_file(session, filename)
    product = session.get(Product, record.product_id)
    assert product is not None
    mission = queries.get_mission(session)
    code = None
    if record.code_id is not None:
        proc = session.execute(
            select(Process.name)
            .join(Code, Code.process_id == Process.id)
            .where(Code.id == record.code_id)
        ).scalar_one()
        code = (proc, _code_version(session, record.code_id) or "")
    facts = fields_of(file_record(record, product.name, Path(mission.root_dir), code))
    history = review_history(session, filename)
    facts["review"] = history.review
    made = session.get(Run, record.run_id) if record.run_id is not None else None
    made_by_run = None
    if made is not None:
        proc_name = session.get(Process, made.process_id)
        made_by_run = _run_summary(session, made, proc_name.name if proc_name else "?")
    parents = session.scalars(select(FileLink.parent_id).where(FileLink.child_id == record.id))
    children = session.scalars(select(FileLink.child_id).where(FileLink.parent_id == record.id))
    return FileDocument(
        **facts,
        review_required=bool(product.review),
        verdicts=list(history.verdicts),
        made_by_run=made_by_run,
        used_by=_runs_that_used(session, record),
        parents=_names(session, list(parents)),
        children=_names(session, list(children)),
        events=list_events(session, EventQuery(filename=filename)),
    )
