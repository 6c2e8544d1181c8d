"""The catalogue of registered files: where a file goes, and registering it.

:func:`register_file` is the one way a file record is created (by ingest and by a
finished build): it keeps ``is_newest`` right, refuses a second record of the same
identity and version, records lineage, and queues every (process, date) whose inputs the
new file can change, all inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, case, insert, literal, null, select
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db.coverage import record_coverage
from dbproc.db.models import (
    File,
    FileLink,
    Pending,
    Process,
    ProcessInput,
    Product,
    table_of,
)
from dbproc.db.queries import chunked
from dbproc.feed.events import event_row, record_events
from dbproc.ingest.facts import FileFacts, ProductRule
from dbproc.naming import FilenameFormat, render_dir
from dbproc.version import Version

STAGING_DIR = ".dbproc-staging"


class IdentityTaken(Exception):
    """A file of the same product, date, keywords and version is already registered."""

    def __init__(self, filename: str) -> None:
        super().__init__(filename)
        self.filename = filename


@dataclass(frozen=True)
class ExistingVersion:
    """One registered version of an identity."""

    id: int
    filename: str
    version: Version
    is_newest: bool
    start: dt.datetime
    stop: dt.datetime


def product_rules(session: Session) -> list[ProductRule]:
    """The active products, as identification needs them."""
    return [
        ProductRule(
            p.id,
            p.name,
            FilenameFormat.parse(p.format),
            p.inspector,
            dict(p.inspector_args or {}),
            p.dir,
            p.inspector_timeout,
        )
        for p in session.scalars(
            select(Product).where(Product.active.is_(True)).order_by(Product.name)
        )
    ]


def destination(root: Path, product_dir: str, date: dt.date, filename: str) -> Path:
    """Where a file of a product belongs."""
    return root / render_dir(product_dir, date) / filename


def stored_path(root: Path, path: Path) -> str:
    """How a file's path is stored: relative to the root when inside it."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def absolute_path(root: Path, stored: str) -> Path:
    """A stored path made absolute."""
    p = Path(stored)
    return p if p.is_absolute() else root / p


def staging_dir(root: Path) -> Path:
    """The staging folder, on the data root's filesystem."""
    return root / STAGING_DIR


def list_versions(
    session: Session, product_id: int, date: dt.date, slot: str
) -> list[ExistingVersion]:
    """Every registered version of (product, date, slot)."""
    return [v for key, v in list_versions_of(session, [product_id], [date]) if key[2] == slot]


def list_versions_of(
    session: Session, product_ids: Iterable[int], dates: Iterable[dt.date]
) -> list[tuple[tuple[int, dt.date, str], ExistingVersion]]:
    """Every registered version of the given products on the given dates, keyed by
    (product id, date, slot): one query per 500 dates, for a batch of new files."""
    pids = sorted(set(product_ids))
    found: list[tuple[tuple[int, dt.date, str], ExistingVersion]] = []
    for days in chunked(sorted(set(dates))):
        rows = session.execute(
            select(
                File.product_id,
                File.date,
                File.slot,
                File.id,
                File.filename,
                File.interface,
                File.quality,
                File.revision,
                File.is_newest,
                File.start,
                File.stop,
            ).where(File.product_id.in_(pids), File.date.in_(days))
        )
        for r in rows:
            found.append(
                (
                    (r.product_id, r.date, r.slot),
                    ExistingVersion(
                        r.id,
                        r.filename,
                        Version(r.interface, r.quality, r.revision),
                        r.is_newest,
                        r.start,
                        r.stop,
                    ),
                )
            )
    return found


# Core statements on the tables (not ORM-enabled ones): built once, compiled once, and
# about half the Python cost per file of their ORM equivalents.
_FILE = table_of(File)
_PRODUCT = table_of(Product)
#: a new file of a ``review = true`` product starts ``pending`` (§13): decided inside the
#: insert, so registering costs no extra statement
_INSERT_FILE = (
    _FILE.insert()
    .values(
        review=select(case((_PRODUCT.c.review, literal("pending")), else_=null()))
        .where(_PRODUCT.c.id == bindparam("review_pid"))
        .scalar_subquery()
    )
    .returning(_FILE.c.id)
)
_CLEAR_NEWEST = _FILE.update().where(_FILE.c.id == bindparam("old_id")).values(is_newest=False)
_INSERT_LINKS = table_of(FileLink).insert()
_WIDEN_SPAN = (
    _PRODUCT.update()
    .where(_PRODUCT.c.id == bindparam("pid"), _PRODUCT.c.max_span_seconds < bindparam("span"))
    .values(max_span_seconds=bindparam("new_span"))
)


def register_file(
    session: Session,
    facts: FileFacts,
    *,
    filename: str,
    path: str,
    sha256: str,
    size: int,
    code_id: int | None = None,
    run_id: int | None = None,
    parents: Sequence[int] = (),
    existing: Sequence[ExistingVersion] | None = None,
    cause: str | None = None,
    consumers: dict[int, list[Consumer]] | None = None,
    queued: list[tuple[int, dt.date]] | None = None,
    widest: dict[int, float] | None = None,
    pending: list[dict[str, Any]] | None = None,
    events: list[dict[str, Any]] | None = None,
) -> int:
    """Insert a file record and return its id; the caller has placed the file and commits.

    Raises :class:`IdentityTaken` when the same identity and version exists. ``widest``
    caches each product's widest file span across calls of one pass (a narrower file
    needs no update of the product); ``pending``, when given, collects the queue rows for
    the caller to insert with :func:`insert_pending` (one statement for a batch);
    ``events`` likewise collects the file's event for :func:`record_events`, which is
    otherwise written at once.
    """
    if existing is None:
        existing = list_versions(session, facts.product.id, facts.date, facts.slot)
    same = next((e for e in existing if e.version == facts.version), None)
    if same is not None:
        raise IdentityTaken(same.filename)
    newest = max(existing, key=lambda e: e.version, default=None)
    is_newest = newest is None or facts.version > newest.version
    connection = session.connection()
    intervals = [(facts.start, facts.stop)]
    if is_newest and newest is not None:
        connection.execute(_CLEAR_NEWEST, {"old_id": newest.id})
        intervals.append((newest.start, newest.stop))
    file_id: int = connection.execute(
        _INSERT_FILE,
        {
            "product_id": facts.product.id,
            "review_pid": facts.product.id,
            "filename": filename,
            "date": facts.date,
            "start": facts.start,
            "stop": facts.stop,
            "interface": facts.version.interface,
            "quality": facts.version.quality,
            "revision": facts.version.revision,
            "slot": facts.slot,
            "keywords": dict(facts.keywords),
            "metadata": dict(facts.metadata),
            "size": size,
            "sha256": sha256,
            "path": path,
            "registered_at": utcnow(),
            "code_id": code_id,
            "run_id": run_id,
            "is_newest": is_newest,
            "on_disk": True,
        },
    ).scalar_one()
    record_coverage(connection, facts.product.id, facts.date, facts.version, new_slot=not existing)
    if parents:
        connection.execute(
            _INSERT_LINKS,
            [{"child_id": file_id, "parent_id": p} for p in sorted(set(parents))],
        )
    span = (facts.stop - facts.start).total_seconds()
    if widest is None or span > widest.get(facts.product.id, -1.0):
        connection.execute(_WIDEN_SPAN, {"pid": facts.product.id, "span": span, "new_span": span})
        if widest is not None:
            widest[facts.product.id] = span
    if is_newest:
        queue_dependents(
            session,
            facts.product.id,
            facts.date,
            intervals,
            cause or f"file {filename} registered",
            consumers,
            queued,
            pending,
        )
    _note_registered(session, facts, filename, path, sha256, size, run_id, events)
    return file_id


def _note_registered(
    session: Session,
    facts: FileFacts,
    filename: str,
    path: str,
    sha256: str,
    size: int,
    run_id: int | None,
    events: list[dict[str, Any]] | None,
) -> None:
    """The file's ``file.built`` / ``file.ingested`` event."""
    row = event_row(
        "file.built" if run_id is not None else "file.ingested",
        filename=filename,
        product=facts.product.name,
        date=facts.date,
        version=facts.version,
        run_id=run_id,
        detail={"path": path, "sha256": sha256, "size": size},
    )
    if events is None:
        record_events(session, [row])
    else:
        events.append(row)


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
        session.execute(insert(Pending), rows)


@dataclass(frozen=True)
class MissionPaths:
    """The mission's folders as absolute paths."""

    name: str
    root: Path
    incoming: Path
    errors: Path
    codes: Path

    @classmethod
    def of(cls, mission: Any) -> MissionPaths:
        """From a :class:`~dbproc.db.models.Mission` row."""
        return cls(
            mission.name,
            Path(mission.root_dir),
            Path(mission.incoming_dir),
            Path(mission.errors_dir),
            Path(mission.codes_dir),
        )

    @property
    def staging(self) -> Path:
        """Staging folder on the root's filesystem."""
        return staging_dir(self.root)

    @property
    def rejected(self) -> Path:
        """Where refused incoming files go."""
        return self.errors / "rejected"

    @property
    def failed_runs(self) -> Path:
        """Where failed runs keep their logs and partial output."""
        return self.errors / "runs"
