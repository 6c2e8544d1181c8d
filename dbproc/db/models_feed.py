"""The feed tables: the event feed (§14), where each notifier has got to in it, and the
append-only review verdicts (§13). Loaded (and re-exported) by :mod:`dbproc.db.models`.
"""

# Annotations are evaluated as the classes are made (no ``from __future__ import
# annotations``): as strings, SQLAlchemy parses every ``Mapped[...]`` again, about 5 ms of
# each command's start.

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from dbproc.db.model_base import Base, JsonType


class ReviewVerdict(Base):
    """One verdict on a file of a ``review = true`` product; rows are never updated."""

    __tablename__ = "review_verdict"
    __table_args__ = (CheckConstraint("verdict IN ('pass', 'semipass', 'fail')", name="verdict"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("file.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    comment: Mapped[str | None] = mapped_column(Text)


class Event(Base):
    """One change of state (§14), written in the transaction of the change.

    ``seq`` strictly increases in commit order: SQLite has one writer and never reuses a
    rowid (AUTOINCREMENT); PostgreSQL writers serialise on an advisory lock taken just
    before their first event (see :mod:`dbproc.feed.events`).
    """

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_time", "time"), {"sqlite_autoincrement": True})

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    time: Mapped[dt.datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    filename: Mapped[str | None] = mapped_column(String(255), index=True)
    product: Mapped[str | None] = mapped_column(String(100))
    date: Mapped[dt.date | None] = mapped_column(Date)
    version: Mapped[str | None] = mapped_column(String(40))
    run_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


class NotifyCursor(Base):
    """Where one notifier has got to in the event feed, and its retry state."""

    __tablename__ = "notify_cursor"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
