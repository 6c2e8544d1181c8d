"""Coverage below a day (``dbproc files --missing --by hour``): for a product that
declares a ``cadence`` (e.g. ``"1h"``, for formats with ``{H}``), every expected slot of
each day in the range that no newest file starts in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dbproc.clock import midnight
from dbproc.db import queries
from dbproc.db.models import File
from dbproc.errors import UsageError
from dbproc.mission.products import cadence_seconds
from dbproc.records import Record

#: longest range one call covers (slots are listed one by one)
MAX_DAYS = 366 * 5


@dataclass(frozen=True)
class MissingSlot(Record):
    """A slot of a product's cadence (``[start, stop)``, UTC) that no file starts in."""

    product: str
    date: dt.date
    start: dt.datetime
    stop: dt.datetime
    reason: str
    evidence: list[str]


def missing_slots(
    session: Session, product: str, since: dt.date | None = None, until: dt.date | None = None
) -> list[MissingSlot]:
    """Slots of ``product``'s cadence in [since, until] without a file, oldest first."""
    record = queries.get_product(session, product)
    step = cadence_seconds(record.cadence) if record.cadence else None
    if step is None:
        raise UsageError(
            f"product {product!r} declares no cadence; add e.g. "
            f'cadence = "1h" to [products.{product}] (or use --by day)'
        )
    if since is None or until is None:
        lo, hi = session.execute(
            select(func.min(File.date), func.max(File.date)).where(File.product_id == record.id)
        ).one()
        since, until = since or lo, until or hi
    if since is None or until is None:
        return []
    if since > until:
        raise UsageError(f"--since {since} is after --until {until}")
    if (until - since).days > MAX_DAYS:
        raise UsageError(
            f"--since/--until span {(until - since).days} days; at most "
            f"{MAX_DAYS} at a time with --by hour"
        )
    start, stop = midnight(since), midnight(until) + dt.timedelta(days=1)
    present: set[int] = set()
    for begin in session.scalars(
        select(File.start).where(
            File.product_id == record.id,
            File.is_newest.is_(True),
            File.start >= start,
            File.start < stop,
        )
    ):
        present.add(int((begin - start).total_seconds()) // step)
    out: list[MissingSlot] = []
    for index in range(int((stop - start).total_seconds()) // step):
        if index in present:
            continue
        slot = start + dt.timedelta(seconds=index * step)
        out.append(
            MissingSlot(
                product,
                slot.date(),
                slot,
                slot + dt.timedelta(seconds=step),
                "no_file",
                [f"no {product} file starts in {slot:%Y-%m-%d %H:%M}..+{record.cadence}"],
            )
        )
    return out
