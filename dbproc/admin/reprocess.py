"""``dbproc reprocess``: force rebuilds of matching outputs, durably.

One command instead of dbprocessing's four drifting scripts. The filters select newest
outputs (or, for RUN processes, dates they ran for); each match becomes a
``forced_rebuild`` row, kept until the rebuild is recorded, so a crash between
``reprocess`` and ``run`` loses nothing. The next pass rebuilds them with reason
``forced``; their children then follow the normal rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db import queries
from dbproc.db.models import File, ForcedRebuild, Process, Product, Run, RunStatus
from dbproc.errors import UsageError
from dbproc.records import Record
from dbproc.version import VersionPart

BUMPS = ("quality", "revision")


@dataclass(frozen=True)
class ReprocessFilter:
    """What to rebuild: AND between kinds of filter, OR within a kind."""

    products: Sequence[str] = ()
    processes: Sequence[str] = ()
    instruments: Sequence[str] = ()
    files: Sequence[str] = ()
    since: dt.date | None = None
    until: dt.date | None = None
    bump: str = "revision"
    note: str | None = None

    def is_empty(self) -> bool:
        """No filter at all (which would rebuild everything)."""
        return not (
            self.products
            or self.processes
            or self.instruments
            or self.files
            or self.since
            or self.until
        )


@dataclass(frozen=True)
class RebuildTarget(Record):
    """One output (or RUN date) to rebuild, and the newest file it replaces."""

    process: str
    date: dt.date
    slot: str
    replaces: str | None
    version: str | None
    bump: str


@dataclass
class ReprocessResult(Record):
    """What ``reprocess`` queued (or, in a dry run, would queue), and the builds that
    will follow (per process; see :func:`dbproc.build.preview.summarize`)."""

    queued: int = 0
    already_queued: int = 0
    targets: list[RebuildTarget] = field(default_factory=list)
    dry_run: bool = False
    builds: dict[str, dict[str, Any]] = field(default_factory=dict)


def _processes(session: Session, flt: ReprocessFilter) -> list[tuple[Process, Product | None]]:
    procs = [p for p in queries.list_processes(session)]
    products = {p.id: p for p in session.scalars(select(Product))}
    out = []
    wanted_products = set()
    for name in flt.products:
        product = queries.get_product(session, name)
        wanted_products.add(product.name)
        if not any(p.output_product_id == product.id for p in procs):
            raise UsageError(
                f"product {name!r} is not made by any process, so it cannot be "
                "rebuilt; to rebuild what was made from its files use "
                "`dbproc recall FILE --reprocess`"
            )
    for name in flt.processes:
        queries.get_process(session, name)
    instruments = set(flt.instruments)
    known = {p.instrument for p in products.values()}
    for name in instruments - known:
        raise UsageError(
            f"no product has instrument {name!r}; known: "
            f"{', '.join(sorted(i for i in known if i)) or 'none'}"
        )
    for proc in procs:
        output = products.get(proc.output_product_id) if proc.output_product_id else None
        if flt.products and (output is None or output.name not in wanted_products):
            continue
        if flt.processes and proc.name not in flt.processes:
            continue
        if instruments:
            product_instrument = output.instrument if output else None
            if product_instrument not in instruments:
                continue
        out.append((proc, output))
    return out


def find_targets(session: Session, flt: ReprocessFilter) -> list[dict[str, Any]]:
    """The (process, date, slot) keys the filter selects, with the file each replaces."""
    if flt.bump not in BUMPS:
        raise UsageError(f"--bump {flt.bump!r}: use quality or revision")
    if flt.since and flt.until and flt.since > flt.until:
        raise UsageError(f"--since {flt.since} is after --until {flt.until}")
    names = set(flt.files)
    if names:
        found = {
            f
            for (f,) in session.execute(
                select(File.filename).where(File.filename.in_(sorted(names)))
            )
        }
        missing = names - found
        if missing:
            raise UsageError(f"no registered file called {', '.join(sorted(missing))}")
    targets: list[dict[str, Any]] = []
    for proc, output in _processes(session, flt):
        if output is not None:
            stmt = select(
                File.filename, File.date, File.slot, File.interface, File.quality, File.revision
            ).where(File.product_id == output.id, File.is_newest.is_(True))
            if flt.since:
                stmt = stmt.where(File.date >= flt.since)
            if flt.until:
                stmt = stmt.where(File.date <= flt.until)
            if names:
                stmt = stmt.where(File.filename.in_(sorted(names)))
            for row in session.execute(stmt.order_by(File.date, File.slot)):
                targets.append(
                    {
                        "process": proc.name,
                        "date": row.date,
                        "slot": row.slot,
                        "replaces": row.filename,
                        "version": f"{row.interface}.{row.quality}.{row.revision}",
                    }
                )
        elif not names:
            runs = (
                select(Run.date, Run.slot)
                .distinct()
                .where(Run.process_id == proc.id, Run.status == RunStatus.SUCCEEDED)
            )
            if flt.since:
                runs = runs.where(Run.date >= flt.since)
            if flt.until:
                runs = runs.where(Run.date <= flt.until)
            for day, slot in session.execute(runs.order_by(Run.date)):
                targets.append(
                    {
                        "process": proc.name,
                        "date": day,
                        "slot": slot,
                        "replaces": None,
                        "version": None,
                    }
                )
    return targets


def queue_rebuilds(
    session: Session, flt: ReprocessFilter, *, dry_run: bool = False
) -> ReprocessResult:
    """Record a forced rebuild for every target (the caller commits)."""
    targets = find_targets(session, flt)
    result = ReprocessResult()
    process_ids = {p.name: p.id for p in queries.list_processes(session)}
    existing = {(f.process_id, f.date, f.slot): f for f in session.scalars(select(ForcedRebuild))}
    now = utcnow()
    for target in targets:
        key = (process_ids[target["process"]], target["date"], target["slot"])
        row = existing.get(key)
        result.targets.append(RebuildTarget(**target, bump=flt.bump))
        if row is not None:
            if _rank(flt.bump) > _rank(row.bump) and not dry_run:
                row.bump = flt.bump
            result.already_queued += 1
            continue
        result.queued += 1
        if not dry_run:
            session.add(
                ForcedRebuild(
                    process_id=key[0],
                    date=key[1],
                    slot=key[2],
                    bump=flt.bump,
                    requested_at=now,
                    note=flt.note,
                )
            )
    session.flush()
    return result


def _rank(bump: str) -> int:
    return list(VersionPart).index(VersionPart(bump)) * -1
