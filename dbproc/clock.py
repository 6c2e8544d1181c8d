"""Time as dbproc stores it: naive UTC datetimes."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The current UTC time without tzinfo (how every timestamp is stored)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def midnight(day: dt.date) -> dt.datetime:
    """``day`` at 00:00."""
    return dt.datetime(day.year, day.month, day.day)


def iso_utc(value: dt.datetime | None) -> str | None:
    """A timestamp as JSON shows it: ISO 8601 in UTC with a ``Z`` (``2016-01-05T13:05:00Z``).

    Naive values are taken as UTC (how dbproc stores them); aware ones are converted.
    The one helper every JSON output uses for times (contract section 11).
    """
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"
