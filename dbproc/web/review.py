"""The review gate as the dashboard sees it (contract section 13), behind one interface.

:class:`NoReviewGate` is what the dashboard uses while no product has a review gate in
this schema: the review page says so and a verdict answers 409 (404 for an unknown file).
The review service replaces it by implementing :class:`ReviewGate` and being passed to
:func:`dbproc.web.app.create_app`.
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


class NoReviewGate:
    """No product has a review gate."""

    def gated_products(self, session: Session) -> list[str]:
        return []

    def pending(self, session: Session, limit: int) -> list[dict[str, Any]]:
        return []

    def state_of(self, session: Session, filename: str) -> dict[str, Any] | None:
        return None

    def record(
        self, session: Session, filename: str, verdict: str, comment: str | None, by: str
    ) -> dict[str, Any]:
        record = queries.get_file(session, filename)  # NotFound (404) for an unknown file
        raise ReviewConflict(
            f"{record.filename}: no product has a review gate; set "
            "review = true on its product in the mission file to review it"
        )
