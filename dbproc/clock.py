"""Time as dbproc stores it: naive UTC datetimes."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The current UTC time without tzinfo (how every timestamp is stored)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def midnight(day: dt.date) -> dt.datetime:
    """``day`` at 00:00."""
    return dt.datetime(day.year, day.month, day.day)
