"""What changed since a token: the dashboard's one source of live updates.

Pages subscribe to ``/api/events/stream``; the server asks :class:`ChangeFeed` for a
cheap token every second and tells the pages when it moved. ``/api/events?since=SEQ``
lists events. :class:`EventsFeed` reads both from the ``events`` table (contract section
14); another feed can be passed to :func:`dbproc.web.app.create_app`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.db.models import PassRecord, PassState


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


class EventsFeed:
    """The feed over the ``events`` table (contract section 14): the token is the newest
    seq plus the running pass's heartbeat (so in-flight run states refresh too)."""

    def token(self, session: Session) -> str:
        from dbproc.feed.events import last_seq

        running = session.execute(
            select(PassRecord.id, PassRecord.heartbeat_at)
            .where(PassRecord.state == PassState.RUNNING.value)
            .order_by(PassRecord.id.desc())
            .limit(1)
        ).first()
        beat = f"{running[0]}@{running[1]:%H%M%S}" if running else "idle"
        return f"{last_seq(session)}-{beat}"

    def events_since(self, session: Session, since: int, limit: int) -> list[dict[str, Any]]:
        from dbproc.feed.events import EventQuery, list_events

        return [e.as_dict() for e in list_events(session, EventQuery(since=since, limit=limit))]
