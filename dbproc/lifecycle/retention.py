"""Retention (interface.md §17): ``dbproc purge`` deletes old versions from disk.

Of each (product, date, slot) it keeps the newest ``keep`` versions, and it never deletes
a newest version, a file in a release, or a file a newest version was made from. A
purged file keeps its record and lineage: ``purged_at`` is set and ``on_disk`` cleared.
The records are marked (and committed by the caller) before the bytes go, so a crash
leaves at worst a purged record whose file is still there, which the next purge removes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from dbproc.clock import utcnow
from dbproc.db import queries
from dbproc.db.models import File, FileLink, Product, Reproduction, Run
from dbproc.db.queries import chunked
from dbproc.errors import UsageError
from dbproc.lifecycle.releases import released_file_ids
from dbproc.records import Record

logger = logging.getLogger("dbproc.purge")


@dataclass
class PurgePlan:
    """What a purge deletes, and what it keeps that age alone would delete."""

    keep: int
    delete: list[dict[str, Any]] = field(default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    leftovers: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class PurgeResult(Record):
    """What ``dbproc purge`` deleted (``applied``) or would delete."""

    keep: int
    applied: bool
    #: the files whose bytes go (their records stay, marked purged)
    delete: list[str]
    bytes: int
    #: why a file old enough to go stays: reason -> files
    kept: dict[str, list[str]]
    #: each deleted file's facts (filename, product, date, version, size, path)
    files: list[dict[str, Any]]
    #: files that could not be deleted, and why
    problems: list[str]

    @classmethod
    def of(cls, plan: PurgePlan, applied: bool, problems: list[str]) -> PurgeResult:
        """The result of carrying out ``plan`` (or only planning it)."""
        return cls(
            plan.keep,
            applied,
            [f["filename"] for f in plan.delete],
            sum(f["size"] for f in plan.delete),
            {k: sorted(v) for k, v in plan.kept.items()},
            plan.delete,
            problems,
        )


def plan_purge(session: Session, keep: int = 2, products: Sequence[str] = ()) -> PurgePlan:
    """The purge's decisions; reads only."""
    if keep < 1:
        raise UsageError("--keep must be 1 or more: the newest version is always kept")
    plan = PurgePlan(keep)
    root = Path(queries.get_mission(session).root_dir)
    stmt = select(
        File.id,
        File.filename,
        File.product_id,
        File.date,
        File.slot,
        File.interface,
        File.quality,
        File.revision,
        File.size,
        File.path,
        File.is_newest,
        File.on_disk,
        File.purged_at,
        Product.name.label("product"),
    ).join(Product, Product.id == File.product_id)
    if products:
        stmt = stmt.where(
            File.product_id.in_([queries.get_product(session, p).id for p in products])
        )
    groups: dict[tuple[int, Any, str], list[Any]] = defaultdict(list)
    for row in session.execute(stmt):
        groups[(row.product_id, row.date, row.slot)].append(row)
    released = released_file_ids(session)
    sources = _parents_of_newest(session)
    prefix = f"{root}/"
    for versions in groups.values():
        if len(versions) <= keep and not any(r.purged_at for r in versions):
            continue
        versions.sort(key=lambda r: (r.interface, r.quality, r.revision), reverse=True)
        for rank, row in enumerate(versions):
            path = row.path if row.path.startswith("/") else prefix + row.path
            if row.purged_at is not None:
                if Path(path).exists():
                    plan.leftovers.append(_row(row, path))
                continue
            if rank < keep or row.is_newest or not row.on_disk:
                continue
            if row.id in released:
                plan.kept["in_release"].append(row.filename)
            elif row.id in sources:
                plan.kept["parent_of_newest"].append(row.filename)
            else:
                plan.delete.append(_row(row, path))
    plan.delete.sort(key=lambda f: (f["product"], f["date"], f["filename"]))
    return plan


def _row(row: Any, path: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "filename": row.filename,
        "product": row.product,
        "date": row.date.isoformat(),
        "version": f"{row.interface}.{row.quality}.{row.revision}",
        "size": row.size,
        "path": path,
    }


def _parents_of_newest(session: Session) -> set[int]:
    """Files a newest version was made from: its links, and the inputs of the builds
    that reproduced it identically (early cutoff)."""
    child = aliased(File)
    out = set(
        session.scalars(
            select(FileLink.parent_id)
            .distinct()
            .join(child, child.id == FileLink.child_id)
            .where(child.is_newest.is_(True))
        )
    )
    for inputs in session.scalars(
        select(Run.inputs)
        .join(Reproduction, Reproduction.run_id == Run.id)
        .join(child, child.id == Reproduction.file_id)
        .where(child.is_newest.is_(True))
    ):
        out.update(int(i) for i in inputs or ())
    return out


def mark_purged(session: Session, plan: PurgePlan) -> None:
    """Mark the plan's files purged (the caller commits, then calls :func:`delete_files`)."""
    now = utcnow()
    for batch in chunked([f["id"] for f in plan.delete]):
        session.execute(
            update(File)
            .where(File.id.in_(batch), File.purged_at.is_(None))
            .values(purged_at=now, on_disk=False)
        )


def delete_files(plan: PurgePlan) -> list[str]:
    """Remove the bytes of marked files (and of earlier purges a crash interrupted);
    return the problems met (a file already gone is not one)."""
    problems = []
    for item in (*plan.delete, *plan.leftovers):
        try:
            Path(item["path"]).unlink(missing_ok=True)
        except OSError as exc:
            problems.append(f"could not delete {item['path']}: {exc}")
            logger.error("purge: could not delete %s: %s", item["path"], exc)
    return problems
