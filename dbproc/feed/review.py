"""The review gate (§13): review states of files and their append-only verdicts.

A new file of a ``review = true`` product is registered ``pending`` (in
:func:`dbproc.db.files.register_file`). A verdict is a new ``review_verdict`` row (never
updated), the file's current state (``file.review``), a ``review.verdict`` event and the
queueing of every consumer (process, date) whose inputs the verdict can change, all in the
caller's transaction. The planner sees the state as one more fact of each
:class:`~dbproc.build.plan_types.FileRecord` and uses only passed versions.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause, select, text
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db import queries
from dbproc.db.dependents import queue_dependents
from dbproc.db.models import REVIEW_PENDING, File, Product, ReviewVerdict
from dbproc.db.queries import chunked
from dbproc.errors import NotFound, UsageError
from dbproc.feed.events import event_row, iso_z, record_events

VERDICTS = ("pass", "semipass", "fail")
STATES = ("pending", *VERDICTS)


@dataclass(frozen=True)
class Verdict:
    """One verdict: who said what, when."""

    verdict: str
    by: str
    at: dt.datetime
    comment: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """``{"verdict", "by", "at", "comment"}``."""
        return {
            "verdict": self.verdict,
            "by": self.by,
            "at": iso_z(self.at),
            "comment": self.comment,
        }


@dataclass(frozen=True)
class ReviewItem:
    """A file with its review state and every verdict, oldest first."""

    filename: str
    product: str
    date: dt.date
    version: str
    review: str | None
    verdicts: tuple[Verdict, ...] = ()
    newest: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The object of ``review --json``."""
        return {
            "filename": self.filename,
            "product": self.product,
            "date": self.date.isoformat(),
            "version": self.version,
            "review": self.review,
            "verdicts": [v.as_dict() for v in self.verdicts],
            "newest": self.newest,
        }


def login_name() -> str:
    """Who is giving a verdict when ``--by`` is not given."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or f"uid {os.getuid()}"


def _verdicts(session: Session, file_ids: Iterable[int]) -> dict[int, list[Verdict]]:
    found: dict[int, list[Verdict]] = defaultdict(list)
    for batch in chunked(sorted(set(file_ids))):
        for row in session.scalars(
            select(ReviewVerdict).where(ReviewVerdict.file_id.in_(batch)).order_by(ReviewVerdict.id)
        ):
            found[row.file_id].append(Verdict(row.verdict, row.by, row.at, row.comment))
    return found


def _items(session: Session, rows: Sequence[tuple[File, str]]) -> list[ReviewItem]:
    verdicts = _verdicts(session, (f.id for f, _ in rows))
    return [
        ReviewItem(
            f.filename,
            product,
            f.date,
            str(f.version),
            f.review,
            tuple(verdicts.get(f.id, ())),
            bool(f.is_newest),
        )
        for f, product in rows
    ]


def _pending() -> TextClause:
    """``file.review = 'pending'`` as the WHERE of ``ix_file_review_pending`` says it, word
    for word, so that SQLite reads the partial index (a bound value would not match it)."""
    return text(f"file.{REVIEW_PENDING}")


def list_reviews(
    session: Session, *, products: Sequence[str] = (), state: str | None = "pending"
) -> list[ReviewItem]:
    """Files with a review state (``state`` None: any), by product, date and version."""
    if state is not None and state not in STATES:
        raise UsageError(f"--state {state!r}: use one of {', '.join(STATES)}")
    stmt = (
        select(File, Product.name)
        .join(Product, Product.id == File.product_id)
        .where(File.review.is_not(None))
        .order_by(Product.name, File.date, File.slot, File.interface, File.quality, File.revision)
    )
    if state == "pending":
        stmt = stmt.where(_pending())
    elif state is not None:
        stmt = stmt.where(File.review == state)
    if products:
        stmt = stmt.where(
            File.product_id.in_([queries.get_product(session, p).id for p in products])
        )
    return _items(session, [(f, p) for f, p in session.execute(stmt).all()])


def review_history(session: Session, filename: str) -> ReviewItem:
    """One file's review state and every verdict given on it."""
    record = queries.get_file(session, filename)
    product = session.get(Product, record.product_id)
    assert product is not None
    return _items(session, [(record, product.name)])[0]


def record_verdicts(
    session: Session,
    filenames: Sequence[str],
    verdict: str,
    *,
    by: str | None = None,
    comment: str | None = None,
) -> list[ReviewItem]:
    """Record ``verdict`` on each file; the caller commits. Every name is checked first,
    so a mistake in one records none."""
    if verdict not in VERDICTS:
        raise UsageError(f"verdict {verdict!r}: use one of {', '.join(VERDICTS)}")
    if not filenames:
        raise UsageError("name at least one FILENAME to give a verdict on")
    by = (by or login_name()).strip()[:100]
    if not by:
        raise UsageError("--by is empty: say who gives the verdict")
    files = [_reviewable(session, name) for name in dict.fromkeys(filenames)]
    now = utcnow()
    events = []
    for record, product in files:
        previous = record.review
        session.add(
            ReviewVerdict(file_id=record.id, verdict=verdict, by=by, at=now, comment=comment)
        )
        record.review = verdict
        queue_dependents(
            session,
            record.product_id,
            record.date,
            [(record.start, record.stop)],
            f"review {verdict} of {record.filename}",
        )
        events.append(
            event_row(
                "review.verdict",
                filename=record.filename,
                product=product,
                date=record.date,
                version=record.version,
                detail={"verdict": verdict, "previous": previous, "by": by, "comment": comment},
            )
        )
    session.flush()
    record_events(session, events)  # last: see dbproc.feed.events
    return [review_history(session, record.filename) for record, _ in files]


def _reviewable(session: Session, filename: str) -> tuple[File, str]:
    record = queries.find_file(session, filename)
    if record is None:
        raise NotFound(f"no registered file called {filename!r}; `dbproc files` lists them")
    product = session.get(Product, record.product_id)
    assert product is not None
    if record.review is None:
        if product.review:
            raise UsageError(
                f"{filename} was registered before {product.name} had review = true and "
                "needs no verdict (consumers already use it)"
            )
        raise UsageError(
            f"{filename} is a {product.name} file, and {product.name} has no review gate; "
            f"add review = true to [products.{product.name}] to review its new files"
        )
    return record, product.name


def pending_count(session: Session) -> int:
    """How many files wait for a verdict (for status pages): read from the partial index
    of the pending files, whose WHERE the query repeats word for word."""
    from sqlalchemy import func

    return int(
        session.execute(select(func.count()).select_from(File).where(_pending())).scalar_one()
    )


def review_notes(session: Session, inputs: Sequence[Any], day: dt.date) -> list[str]:
    """Explain lines for a consumer on ``day``: newest input versions that review holds
    back (pending or failed), and what is used instead. ``inputs`` are the process's
    :class:`~dbproc.build.plan_types.InputSpec` s."""
    lines: list[str] = []
    for spec in inputs:
        product = session.scalars(select(Product).where(Product.name == spec.product)).first()
        if product is None or not product.review:
            continue
        lo = day - dt.timedelta(days=spec.before + 1)
        hi = day + dt.timedelta(days=spec.after + 1)
        held = session.scalars(
            select(File)
            .where(
                File.product_id == product.id,
                File.is_newest.is_(True),
                File.date >= lo,
                File.date <= hi,
                File.review.in_(("pending", "fail")),
            )
            .order_by(File.date)
        )
        for f in held:
            passed = session.scalars(
                select(File)
                .where(
                    File.product_id == product.id,
                    File.date == f.date,
                    File.slot == f.slot,
                    File.review.in_(("pass", "semipass")),
                )
                .order_by(File.interface.desc(), File.quality.desc(), File.revision.desc())
            ).first()
            instead = (
                f"consumers use {passed.filename} (the newest passed version)"
                if passed
                else "no version has passed review, so it is not used"
            )
            lines.append(f"held back by review: {f.filename} is {f.review}; {instead}")
    return lines
