"""Loading what the planner needs, and only that, in a few set-based queries.

Given some (process, date) keys, :class:`SnapshotLoader` reads the newest input files in
the keys' windows, the existing newest outputs with their parents, the last runs and the
forced rebuilds of those keys (:mod:`dbproc.build.snapshot_runs`), translating rows with
the mission's :class:`~dbproc.build.catalogue.Catalogue`. The number of queries grows
with the number of products and processes, never with the number of files; nothing is
read for keys not asked for.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from dbproc.build.catalogue import Catalogue, load_catalogue
from dbproc.build.plan_types import PASSED_REVIEWS
from dbproc.build.planner import FileRecord, PlanKey, ProcessSpec, Snapshot
from dbproc.build.snapshot_runs import read_forced, read_runs
from dbproc.clock import midnight
from dbproc.db.models import File, FileLink, Reproduction, Run
from dbproc.db.queries import chunked
from dbproc.version import Version

DAY = dt.timedelta(days=1)
RANGES_PER_QUERY = 200
#: (process, date) keys planned per snapshot: bounds a plan's memory by the chunk, not
#: by the archive (``plan --all``, a code bump that replans every date)
PLAN_CHUNK = 500

FILE_COLUMNS = (
    File.id,
    File.product_id,
    File.filename,
    File.date,
    File.start,
    File.stop,
    File.interface,
    File.quality,
    File.revision,
    File.slot,
    File.keywords,
    File.path,
    File.code_id,
    File.is_newest,
    File.on_disk,
    File.review,
)


def _merge(ranges: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Merge overlapping or touching [lo, hi] ranges."""
    merged: list[list[Any]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


@dataclass
class _Wanted:
    """What to read for one product."""

    everything: bool = False
    intervals: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    dates: list[tuple[dt.date, dt.date]] = field(default_factory=list)


class SnapshotLoader:
    """Reads snapshots for sets of keys (see module docstring). Never writes."""

    def __init__(self, session: Session, catalogue: Catalogue | None = None) -> None:
        self.session = session
        self.catalogue = catalogue or load_catalogue(session)
        self.queries = 0

    def load(self, keys: Iterable[PlanKey], *, retry_failed: bool = False) -> Snapshot:
        """A snapshot holding everything the planner needs for ``keys``."""
        cat = self.catalogue
        by_process: dict[str, set[dt.date] | None] = {}
        for name, day in keys:
            if name not in cat.processes:
                continue
            if day is None:
                by_process[name] = None
            elif by_process.get(name, set()) is not None:
                by_process.setdefault(name, set()).add(day)  # type: ignore[union-attr]
        wanted: dict[str, _Wanted] = defaultdict(_Wanted)
        outputs: dict[str, set[dt.date] | None] = {}
        for name, days in by_process.items():
            proc = cat.processes[name]
            self._want_inputs(proc, days, wanted)
            if proc.output:
                if days is None:
                    outputs[proc.output] = None
                elif outputs.get(proc.output, set()) is not None:
                    outputs.setdefault(proc.output, set()).update(days)  # type: ignore[union-attr]
        files: dict[int, FileRecord] = {}
        for product, want in wanted.items():
            for record in self._read_inputs(product, want):
                files[record.id] = record
        output_records = self._read_outputs(outputs)
        files.update({r.id: r for r in output_records})
        with_parents = self._attach_parents([r for r in output_records if r.code_id is not None])
        files.update({r.id: r for r in with_parents})
        last_runs, succeeded = read_runs(
            self._execute,
            cat,
            by_process,
            chunked(self._run_condition(by_process), RANGES_PER_QUERY),
        )
        needed = {pid for r in with_parents for pid in (r.parents or ())}
        needed |= {pid for runs in succeeded.values() for run in runs for pid in run.inputs}
        needed |= {pid for run in last_runs.values() for pid in run.inputs}
        parents = dict(files)
        parents.update(self._read_by_id(needed - set(parents)))
        return Snapshot(
            processes=cat.processes,
            files=tuple(files.values()),
            parents=parents,
            codes=cat.codes,
            last_runs=last_runs,
            succeeded_runs=succeeded,
            forced=read_forced(self._execute, cat, by_process),
            retry_failed=retry_failed,
        )

    def dated_keys(self, keys: Iterable[PlanKey]) -> list[tuple[str, dt.date]]:
        """``keys`` with every date-less key ("every date of P") replaced by the dates P
        could have an output for: each day from the first to the last newest file of
        P's required inputs (FILE: of its trigger product). A date with nothing to build
        plans as "not expected", so the span may be generous; planning the dates in
        chunks then bounds memory by the chunk, not by the archive."""
        out: set[tuple[str, dt.date]] = set()
        for name, day in keys:
            if day is not None:
                out.add((name, day))
                continue
            span = self._date_span(name)
            if span is None:
                continue
            first, last = span
            while first <= last:
                out.add((name, first))
                first += DAY
        return sorted(out)

    def _date_span(self, name: str) -> tuple[dt.date, dt.date] | None:
        proc = self.catalogue.processes.get(name)
        if proc is None or not proc.required:
            return None
        specs = proc.required[:1] if proc.timebase == "FILE" else proc.required
        ids = [self.catalogue.product_ids[spec.product] for spec in specs]
        self.queries += 1
        first_day, last_day, first_start, last_stop = self.session.execute(
            select(
                func.min(File.date),
                func.max(File.date),
                func.min(File.start),
                func.max(File.stop),
            ).where(File.product_id.in_(ids), File.is_newest.is_(True))
        ).one()
        if first_day is None:
            return None
        if proc.timebase == "FILE":
            return first_day, last_day
        # a file counts for every day its interval touches
        last = (last_stop - dt.timedelta(microseconds=1)).date()
        return first_start.date(), max(first_start.date(), last)

    # -- what to read ---------------------------------------------------------------------

    def _want_inputs(
        self, proc: ProcessSpec, days: set[dt.date] | None, wanted: dict[str, _Wanted]
    ) -> None:
        trigger = proc.required[0] if proc.timebase == "FILE" and proc.required else None
        for spec in proc.inputs:
            want = wanted[spec.product]
            if days is None:
                want.everything = True
                continue
            for day in days:
                if proc.timebase == "FILE":
                    if spec is trigger:
                        want.dates.append((day, day))
                    else:
                        want.dates.append((day - spec.before * DAY, day + spec.after * DAY))
                else:
                    want.intervals.append(
                        (midnight(day) - spec.before * DAY, midnight(day) + (spec.after + 1) * DAY)
                    )

    # -- reading --------------------------------------------------------------------------

    def _record(self, row: Any, parents: frozenset[int] | None = None) -> FileRecord:
        keywords = tuple(sorted((str(k), str(v)) for k, v in (row.keywords or {}).items()))
        return FileRecord(
            id=row.id,
            product=self.catalogue.product_names[row.product_id],
            filename=row.filename,
            date=row.date,
            start=row.start,
            stop=row.stop,
            version=Version(row.interface, row.quality, row.revision),
            slot=row.slot,
            keywords=keywords,
            path=row.path,
            code_id=row.code_id,
            parents=parents,
            is_newest=row.is_newest,
            on_disk=row.on_disk,
            review=row.review,
        )

    def _execute(self, stmt: Any) -> Sequence[Any]:
        self.queries += 1
        return self.session.execute(stmt).all()

    def _read_inputs(self, product: str, want: _Wanted) -> list[FileRecord]:
        product_id = self.catalogue.product_ids[product]
        base = select(*FILE_COLUMNS).where(
            File.product_id == product_id, reviewed_versions(self.catalogue, product_id)
        )
        if want.everything:
            return [self._record(r) for r in self._execute(base)]
        span = dt.timedelta(seconds=self.catalogue.max_span.get(product_id, 86400.0))
        conditions: list[ColumnElement[bool]] = []
        for lo, hi in _merge(want.intervals):
            conditions.append(and_(File.start < hi, File.stop > lo, File.start >= lo - span))
        for lo, hi in _merge((a, b + DAY) for a, b in want.dates):
            conditions.append(and_(File.date >= lo, File.date < hi))
        out: list[FileRecord] = []
        for batch in chunked(conditions, RANGES_PER_QUERY):
            out.extend(self._record(r) for r in self._execute(base.where(or_(*batch))))
        return out

    def _read_outputs(self, outputs: dict[str, set[dt.date] | None]) -> list[FileRecord]:
        out: list[FileRecord] = []
        for product, days in outputs.items():
            product_id = self.catalogue.product_ids[product]
            base = select(*FILE_COLUMNS).where(
                File.product_id == product_id, File.is_newest.is_(True)
            )
            if days is None:
                out.extend(self._record(r) for r in self._execute(base))
                continue
            ranges = _merge((d, d + DAY) for d in days)
            for batch in chunked(ranges, RANGES_PER_QUERY):
                cond = or_(*(and_(File.date >= lo, File.date < hi) for lo, hi in batch))
                out.extend(self._record(r) for r in self._execute(base.where(cond)))
        return out

    def _attach_parents(self, records: list[FileRecord]) -> list[FileRecord]:
        links: dict[int, set[int]] = defaultdict(set)
        for batch in chunked([r.id for r in records]):
            for child, parent in self._execute(
                select(FileLink.child_id, FileLink.parent_id).where(FileLink.child_id.in_(batch))
            ):
                links[child].add(parent)
        reproduced = self._read_reproductions([r.id for r in records])
        out = []
        for r in records:
            fields = {**r.__dict__, "parents": frozenset(links.get(r.id, ()))}
            if r.id in reproduced:  # early cutoff: judged by the build that reproduced it
                code_id, inputs, at = reproduced[r.id]
                fields.update(code_id=code_id, parents=frozenset(inputs), reproduced_at=at)
            out.append(FileRecord(**fields))
        return out

    def _read_reproductions(
        self, ids: list[int]
    ) -> dict[int, tuple[int, tuple[int, ...], dt.datetime]]:
        """The latest reproduction (early cutoff) of each file: its code, inputs and time."""
        out: dict[int, tuple[int, tuple[int, ...], dt.datetime]] = {}
        for batch in chunked(ids):
            for file_id, code_id, inputs, at in self._execute(
                select(
                    Reproduction.file_id,
                    Reproduction.code_id,
                    Run.inputs,
                    Reproduction.reproduced_at,
                )
                .join(Run, Run.id == Reproduction.run_id)
                .where(Reproduction.file_id.in_(batch))
                .order_by(Reproduction.id)
            ):
                out[file_id] = (code_id, tuple(inputs or ()), at)
        return out

    def _read_by_id(self, ids: set[int]) -> dict[int, FileRecord]:
        out: dict[int, FileRecord] = {}
        for batch in chunked(sorted(ids)):
            for row in self._execute(select(*FILE_COLUMNS).where(File.id.in_(batch))):
                out[row.id] = self._record(row)
        return out

    def _run_condition(
        self, by_process: dict[str, set[dt.date] | None]
    ) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        for name, days in by_process.items():
            pid = self.catalogue.process_ids[name]
            if days is None:
                conditions.append(Run.process_id == pid)
                continue
            for lo, hi in _merge((d, d + DAY) for d in days):
                conditions.append(and_(Run.process_id == pid, Run.date >= lo, Run.date < hi))
        return conditions


def reviewed_versions(catalogue: Catalogue, product_id: int) -> ColumnElement[bool]:
    """Which versions consumers may read: the newest, and of a ``review = true``
    product also the older ones that passed (or never needed) review (§13)."""
    if product_id not in catalogue.reviewed:
        return File.is_newest.is_(True)
    return or_(File.is_newest.is_(True), File.review.is_(None), File.review.in_(PASSED_REVIEWS))
