"""What a new file can change: the processes reading its product (:class:`Consumer`), the
output dates its intervals reach, and queueing those (process, date)s as ``pending`` rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.db.models import Pending, Process, ProcessInput, table_of
from dbproc.db.prepared import Prepared

#: a Core insert on the table: an ORM bulk insert costs several times its Python time
_INSERT_PENDING = Prepared(table_of(Pending).insert())


@dataclass(frozen=True)
class Consumer:
    """A process reading a product, and how."""

    process_id: int
    timebase: str
    before: int
    after: int
    is_trigger: bool  # FILE: the first required input, one output per file


def consumers_of(session: Session, product_id: int) -> list[Consumer]:
    """Active processes that read ``product_id``."""
    rows = session.execute(
        select(
            ProcessInput.process_id,
            Process.timebase,
            ProcessInput.before,
            ProcessInput.after,
            ProcessInput.product_id,
            ProcessInput.optional,
            ProcessInput.position,
        )
        .join(Process, Process.id == ProcessInput.process_id)
        .where(Process.active.is_(True))
        .where(
            ProcessInput.process_id.in_(
                select(ProcessInput.process_id).where(ProcessInput.product_id == product_id)
            )
        )
        .order_by(ProcessInput.process_id, ProcessInput.position)
    ).all()
    out: list[Consumer] = []
    first_required: dict[int, int] = {}
    for r in rows:
        if not r.optional and r.process_id not in first_required:
            first_required[r.process_id] = r.product_id
    for r in rows:
        if r.product_id != product_id:
            continue
        trigger = r.timebase == "FILE" and first_required.get(r.process_id) == product_id
        out.append(Consumer(r.process_id, r.timebase, r.before, r.after, trigger))
    return out


def affected_dates(
    consumer: Consumer, file_date: dt.date, intervals: Iterable[tuple[dt.datetime, dt.datetime]]
) -> set[dt.date]:
    """Output dates of ``consumer`` whose inputs a file with these intervals can change."""
    days: set[dt.date] = set()
    if consumer.timebase == "FILE":
        if consumer.is_trigger:
            return {file_date}
        for offset in range(-consumer.after, consumer.before + 1):
            days.add(file_date + dt.timedelta(days=offset))
        return days
    for start, stop in intervals:
        first = start.date() - dt.timedelta(days=consumer.after)
        last = (stop - dt.timedelta(microseconds=1)).date() + dt.timedelta(days=consumer.before)
        day = first
        while day <= last:
            days.add(day)
            day += dt.timedelta(days=1)
    return days


def queue_dependents(
    session: Session,
    product_id: int,
    file_date: dt.date,
    intervals: Iterable[tuple[dt.datetime, dt.datetime]],
    cause: str,
    consumers: dict[int, list[Consumer]] | None = None,
    queued: list[tuple[int, dt.date]] | None = None,
    pending: list[dict[str, Any]] | None = None,
) -> None:
    """Queue every (process, date) that reads a file of ``product_id`` with these intervals.

    ``consumers`` caches :func:`consumers_of` per product across calls of one pass;
    ``pending`` collects the rows instead of inserting them (see :func:`insert_pending`).
    """
    intervals = list(intervals)
    rows: list[dict[str, Any]] = []
    if consumers is None:
        consumers = {}
    if product_id not in consumers:
        consumers[product_id] = consumers_of(session, product_id)
    for consumer in consumers[product_id]:
        for day in sorted(affected_dates(consumer, file_date, intervals)):
            rows.append({"process_id": consumer.process_id, "date": day, "cause": cause[:500]})
    if queued is not None:
        queued.extend((r["process_id"], r["date"]) for r in rows)
    if pending is not None:
        pending.extend(rows)
    else:
        insert_pending(session, rows)


def insert_pending(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert queue rows (``process_id``, ``date``, ``cause``) in one statement."""
    if rows:
        _INSERT_PENDING.execute(session.connection(), rows)
