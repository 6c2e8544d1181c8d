"""Lineage beyond file links: the RUN runs that used a file, and the builds that
reproduced a file identically (early cutoff). Both are read from run records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.db.models import Code, File, Process, ProcessInput, Reproduction, Run, RunStatus
from dbproc.db.queries import chunked


def _iso(value: dt.datetime | None) -> str | None:
    return f"{value:%Y-%m-%dT%H:%M:%SZ}" if value else None


def _filenames(session: Session, ids: set[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for batch in chunked(sorted(ids)):
        out.update(session.execute(select(File.id, File.filename).where(File.id.in_(batch))).all())
    return out


def reproduced_by(session: Session, file_id: int) -> list[dict[str, Any]]:
    """Every build that reproduced the file byte for byte, oldest first: the run, its code
    and the inputs it was made from."""
    rows = session.execute(
        select(Reproduction.run_id, Reproduction.reproduced_at, Code, Process.name, Run.inputs)
        .join(Code, Code.id == Reproduction.code_id)
        .join(Process, Process.id == Code.process_id)
        .join(Run, Run.id == Reproduction.run_id)
        .where(Reproduction.file_id == file_id)
        .order_by(Reproduction.id)
    ).all()
    names = _filenames(session, {i for row in rows for i in (row.inputs or ())})
    return [
        {
            "run": row.run_id,
            "at": _iso(row.reproduced_at),
            "code": {"process": row.name, "version": str(row.Code.version), "path": row.Code.path},
            "inputs": sorted(names.get(i, f"file #{i}") for i in row.inputs or ()),
        }
        for row in rows
    ]


def run_consumers(session: Session, file_id: int) -> list[dict[str, Any]]:
    """The runs of RUN processes (which make no file) that used the file, oldest first."""
    record = session.get(File, file_id)
    if record is None:
        return []
    windows = session.execute(
        select(Process.id, Process.name, ProcessInput.before, ProcessInput.after)
        .join(ProcessInput, ProcessInput.process_id == Process.id)
        .where(Process.output_product_id.is_(None), ProcessInput.product_id == record.product_id)
    ).all()
    out: list[dict[str, Any]] = []
    for process_id, name, before, after in windows:
        first = record.start.date() - dt.timedelta(days=after + 1)
        last = record.stop.date() + dt.timedelta(days=before + 1)
        runs = session.execute(
            select(
                Run.id,
                Run.date,
                Run.status,
                Run.inputs,
                Run.started_at,
                Run.ended_at,
                Code.interface,
                Code.quality,
                Code.revision,
            )
            .join(Code, Code.id == Run.code_id)
            .where(
                Run.process_id == process_id,
                Run.date >= first,
                Run.date <= last,
                Run.status == RunStatus.SUCCEEDED,
            )
            .order_by(Run.id)
        ).all()
        for run in runs:
            if file_id not in (run.inputs or ()):
                continue
            out.append(
                {
                    "run": run.id,
                    "process": name,
                    "date": run.date.isoformat(),
                    "status": run.status,
                    "code_version": f"{run.interface}.{run.quality}.{run.revision}",
                    "started": _iso(run.started_at),
                    "ended": _iso(run.ended_at),
                }
            )
    return out
