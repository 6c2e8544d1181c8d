"""The review gate as the dashboard sees it (contract section 13), behind one interface.

:class:`FeedReviewGate` is the review service of :mod:`dbproc.feed.review`; a verdict on a
file without a gate answers 409 (404 for an unknown file).
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.orm import Session

from dbproc.db import queries
from dbproc.errors import DbprocError

VERDICTS = ("pass", "semipass", "fail")


class ReviewConflict(DbprocError):
    """A verdict that cannot be recorded on this file (HTTP 409)."""

    exit_code = 2


class ReviewGate(Protocol):
    """Reading and recording review verdicts."""

    def gated_products(self, session: Session) -> list[str]:
        """Names of the products with ``review = true``."""
        ...

    def pending(self, session: Session, limit: int) -> list[dict[str, Any]]:
        """Files waiting for a verdict, in the ``review --json`` shape."""
        ...

    def state_of(self, session: Session, filename: str) -> dict[str, Any] | None:
        """A file's review (``review`` and ``verdicts``), or None when it needs none."""
        ...

    def record(
        self, session: Session, filename: str, verdict: str, comment: str | None, by: str
    ) -> dict[str, Any]:
        """Record a verdict (the caller commits); raise :class:`ReviewConflict` or
        :class:`~dbproc.errors.NotFound` when it cannot be."""
        ...


class FeedReviewGate:
    """The review gate of :mod:`dbproc.feed.review`, in the ``review --json`` shapes."""

    def gated_products(self, session: Session) -> list[str]:
        from sqlalchemy import select

        from dbproc.db.models import Product

        return list(
            session.scalars(
                select(Product.name).where(Product.review.is_(True)).order_by(Product.name)
            )
        )

    def pending(self, session: Session, limit: int) -> list[dict[str, Any]]:
        from dbproc.feed.review import list_reviews

        return [item.as_dict() for item in list_reviews(session, state="pending")[:limit]]

    def state_of(self, session: Session, filename: str) -> dict[str, Any] | None:
        from dbproc.feed.review import review_history

        item = review_history(session, filename).as_dict()
        return None if item.get("review") is None else item

    def record(
        self, session: Session, filename: str, verdict: str, comment: str | None, by: str
    ) -> dict[str, Any]:
        from dbproc.errors import UsageError
        from dbproc.feed.review import record_verdicts

        try:
            [item] = record_verdicts(session, [filename], verdict, by=by, comment=comment)
        except UsageError as exc:  # no gate on this file: a conflict, not a bad request
            queries.get_file(session, filename)  # NotFound (404) for an unknown file
            raise ReviewConflict(str(exc)) from exc
        return item.as_dict()
