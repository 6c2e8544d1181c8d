"""The dashboard's coverage page: files, versions, failures and gaps of one product per
day or per month of a period, read from the per-day summary (never a scan of ``file``)."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dbproc.db import queries
from dbproc.db.models import FAILED_RUN_STATUSES, CoverageDay, CoverageMonth, Process, Run
from dbproc.errors import UsageError

FAILED = [s.value for s in FAILED_RUN_STATUSES]


@dataclass(frozen=True)
class Period:
    """A month (``month`` set) or a whole year of a coverage grid."""

    year: int
    month: int | None

    @property
    def first(self) -> dt.date:
        return dt.date(self.year, self.month or 1, 1)

    @property
    def last(self) -> dt.date:
        if self.month is None:
            return dt.date(self.year, 12, 31)
        return dt.date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def previous(self) -> Period:
        if self.month is None:
            return Period(self.year - 1, None)
        return Period(self.year - (self.month == 1), 12 if self.month == 1 else self.month - 1)

    def next(self) -> Period:
        if self.month is None:
            return Period(self.year + 1, None)
        return Period(self.year + (self.month == 12), 1 if self.month == 12 else self.month + 1)

    def label(self) -> str:
        return f"{self.year}" if self.month is None else f"{self.year}-{self.month:02d}"


def parse_period(text: str | None, default: dt.date | None) -> Period:
    """``YYYY`` or ``YYYY-MM`` (default: the month of ``default``, or this month)."""
    if not text:
        day = default or dt.date.today()
        return Period(day.year, day.month)
    try:
        if len(text) == 4:
            return Period(int(text), None)
        year, month = text.split("-")
        period = Period(int(year), int(month))
        period.first  # noqa: B018  (validates the month)
        return period
    except ValueError:
        raise UsageError(f"period {text!r}: write YYYY or YYYY-MM") from None


def coverage(
    session: Session, product: str, period_text: str | None, review: dict[str, str] | None = None
) -> dict[str, Any]:
    """A product's coverage for one month or year: per day its file count, top version,
    whether its last build failed; from the summary table and the run index."""
    record = queries.get_product(session, product)
    first, last = session.execute(
        select(func.min(CoverageDay.date), func.max(CoverageDay.date)).where(
            CoverageDay.product_id == record.id
        )
    ).one()
    period = parse_period(period_text, last)
    days = {
        row.date: row
        for row in session.scalars(
            select(CoverageDay).where(
                CoverageDay.product_id == record.id,
                CoverageDay.date >= period.first,
                CoverageDay.date <= period.last,
            )
        )
    }
    failed = _failed_days(session, record.id, period)
    cells = _cells(period, days, failed, first, last)
    per_month = session.execute(
        select(CoverageMonth.month, CoverageMonth.days).where(CoverageMonth.product_id == record.id)
    ).all()
    return {
        "product": record.name,
        "description": record.description,
        "level": record.level,
        "first": first.isoformat() if first else None,
        "last": last.isoformat() if last else None,
        "period": period,
        "cells": cells,
        "present": sum(1 for c in cells if c["state"] in ("present", "failed") and c["files"]),
        "missing": sum(1 for c in cells if c["state"] == "missing"),
        "failed": len(failed),
        "monthly": sorted((m.year, m.month, int(n)) for m, n in per_month),
    }


def _cells(
    period: Period,
    days: dict[dt.date, CoverageDay],
    failed: dict[dt.date, int],
    first: dt.date | None,
    last: dt.date | None,
) -> list[dict[str, Any]]:
    """One grid cell per day of the period; ``first``..``last``: the product's life."""
    cells = []
    day = period.first
    while day <= period.last:
        row = days.get(day)
        in_life = first is not None and last is not None and first <= day <= last
        state = (
            "failed"
            if day in failed
            else "present"
            if row is not None
            else "missing"
            if in_life
            else "none"
        )
        cells.append(
            {
                "date": day.isoformat(),
                "day": day.day,
                "month": day.month,
                "state": state,
                "files": row.files if row else 0,
                "slots": row.slots if row else 0,
                "version": row.version if row else None,
                "failed_run": failed.get(day),
            }
        )
        day += dt.timedelta(days=1)
    return cells


def _failed_days(session: Session, product_id: int, period: Period) -> dict[dt.date, int]:
    """Days of the period whose newest run of the producing process failed (run id)."""
    process_id = session.scalar(select(Process.id).where(Process.output_product_id == product_id))
    if process_id is None:
        return {}
    newest = (
        select(Run.date, Run.slot, func.max(Run.id).label("last"))
        .where(Run.process_id == process_id, Run.date >= period.first, Run.date <= period.last)
        .group_by(Run.date, Run.slot)
        .subquery()
    )
    rows = session.execute(
        select(Run.date, Run.id).join(newest, Run.id == newest.c.last).where(Run.status.in_(FAILED))
    ).all()
    return {d: i for d, i in rows}
