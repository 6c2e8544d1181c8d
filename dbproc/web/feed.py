"""What changed since a token: the dashboard's one source of live updates.

Pages subscribe to ``/api/events/stream``; the server asks :class:`ChangeFeed` for a
cheap token every second and tells the pages when it moved. ``/api/events?since=SEQ``
lists events. :class:`TableFeed` derives both from the tables that exist today (files,
runs, passes, rejects); a feed over the ``events`` table (contract section 14) replaces it
by implementing the same two methods and being passed to :func:`dbproc.web.app.create_app`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dbproc.db.models import File, PassRecord, PassState, Product, Reject, Run


def iso_z(value: dt.datetime | None) -> str | None:
    """A naive-UTC timestamp as ISO 8601 with ``Z`` (contract section 11)."""
    if value is None:
        return None
    return value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


class ChangeFeed(Protocol):
    """Where the dashboard learns that something changed."""

    def token(self, session: Session) -> str:
        """A short text that changes whenever anything a page shows may have changed."""
        ...

    def events_since(self, session: Session, since: int, limit: int) -> list[dict[str, Any]]:
        """Events with ``seq > since``, oldest first, at most ``limit``."""
        ...


class TableFeed:
    """A feed read from the newest ids of the tables (bounded index look-ups only)."""

    def token(self, session: Session) -> str:
        newest = session.execute(
            select(
                select(func.max(File.id)).scalar_subquery(),
                select(func.max(Run.id)).scalar_subquery(),
                select(func.max(PassRecord.id)).scalar_subquery(),
                select(func.max(Reject.id)).scalar_subquery(),
            )
        ).one()
        running = session.execute(
            select(PassRecord.id, PassRecord.heartbeat_at)
            .where(PassRecord.state == PassState.RUNNING.value)
            .order_by(PassRecord.id.desc())
            .limit(1)
        ).first()
        # while a pass runs its runs change state without new ids: follow its heartbeat
        beat = f"{running[0]}@{running[1]:%H%M%S}" if running else "idle"
        session.rollback()
        return "-".join(str(v or 0) for v in newest) + "-" + beat

    def events_since(self, session: Session, since: int, limit: int) -> list[dict[str, Any]]:
        rows = session.execute(
            select(
                File.id,
                File.filename,
                File.date,
                File.interface,
                File.quality,
                File.revision,
                File.run_id,
                File.registered_at,
                Product.name,
            )
            .join(Product, Product.id == File.product_id)
            .where(File.id > since)
            .order_by(File.id)
            .limit(limit)
        ).all()
        session.rollback()
        return [
            {
                "seq": r.id,
                "time": iso_z(r.registered_at),
                "kind": "file.built" if r.run_id is not None else "file.ingested",
                "filename": r.filename,
                "product": r.name,
                "date": r.date.isoformat(),
                "version": f"{r.interface}.{r.quality}.{r.revision}",
                "run_id": r.run_id,
                "detail": None,
            }
            for r in rows
        ]
