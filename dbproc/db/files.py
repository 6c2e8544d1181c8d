"""The catalogue of registered files: the versions of an identity, and registering a file.

:func:`register_file` is the one way a file record is created (by ingest and by a
finished build): it keeps ``is_newest`` right, refuses a second record of the same
identity and version, records lineage, and queues every (process, date) whose inputs the
new file can change (:mod:`dbproc.db.dependents`), all inside the caller's transaction.
Where files go on disk is :mod:`dbproc.db.file_paths`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, literal, null, select
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db.coverage import record_coverage
from dbproc.db.dependents import Consumer, queue_dependents
from dbproc.db.models import (
    File,
    FileLink,
    Product,
    table_of,
)
from dbproc.db.prepared import Prepared
from dbproc.db.queries import chunked
from dbproc.feed.events import event_row, record_events
from dbproc.ingest.facts import FileFacts, ProductRule
from dbproc.naming import FilenameFormat
from dbproc.version import Version


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
    connection = session.connection()
    for days in chunked(sorted(set(dates))):
        for r in connection.execute(_VERSIONS_OF, {"pids": pids, "days": days}):
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
_INSERT_FILE = Prepared(
    _FILE.insert()
    .values(
        review=select(case((_PRODUCT.c.review, literal("pending")), else_=null()))
        .where(_PRODUCT.c.id == bindparam("review_pid"))
        .scalar_subquery()
    )
    .returning(_FILE.c.id)
)
_CLEAR_NEWEST = Prepared(
    _FILE.update().where(_FILE.c.id == bindparam("old_id")).values(is_newest=False)
)
_INSERT_LINKS = Prepared(table_of(FileLink).insert())
#: the registered versions of products on dates (expanding lists: one statement, compiled
#: once, for any number of them)
_VERSIONS_OF = select(
    _FILE.c.product_id,
    _FILE.c.date,
    _FILE.c.slot,
    _FILE.c.id,
    _FILE.c.filename,
    _FILE.c.interface,
    _FILE.c.quality,
    _FILE.c.revision,
    _FILE.c.is_newest,
    _FILE.c.start,
    _FILE.c.stop,
).where(
    _FILE.c.product_id.in_(bindparam("pids", expanding=True)),
    _FILE.c.date.in_(bindparam("days", expanding=True)),
)
_WIDEN_SPAN = Prepared(
    _PRODUCT.update()
    .where(_PRODUCT.c.id == bindparam("pid"), _PRODUCT.c.max_span_seconds < bindparam("span"))
    .values(max_span_seconds=bindparam("new_span"))
)


def register_file(  # long: 16 parameters and their docstring; the body is ~40 lines
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
    the caller to insert with :func:`~dbproc.db.dependents.insert_pending` (one statement
    for a batch); ``events`` likewise collects the file's event for :func:`record_events`,
    which is otherwise written at once.
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
        _CLEAR_NEWEST.execute(connection, {"old_id": newest.id})
        intervals.append((newest.start, newest.stop))
    file_id: int = _INSERT_FILE.scalar(
        connection, _file_row(facts, filename, path, sha256, size, code_id, run_id, is_newest)
    )
    record_coverage(connection, facts.product.id, facts.date, facts.version, new_slot=not existing)
    if parents:
        _INSERT_LINKS.execute(
            connection,
            [{"child_id": file_id, "parent_id": p} for p in sorted(set(parents))],
        )
    span = (facts.stop - facts.start).total_seconds()
    if widest is None or span > widest.get(facts.product.id, -1.0):
        _WIDEN_SPAN.execute(connection, {"pid": facts.product.id, "span": span, "new_span": span})
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


def _file_row(
    facts: FileFacts,
    filename: str,
    path: str,
    sha256: str,
    size: int,
    code_id: int | None,
    run_id: int | None,
    is_newest: bool,
) -> dict[str, Any]:
    """The parameters of :data:`_INSERT_FILE` for a new file."""
    return {
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
    }


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
