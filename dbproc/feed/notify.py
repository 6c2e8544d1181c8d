"""Notifications: each ``[[notify]]`` table reads the event feed from its own cursor.

Delivery is at least once and after the commit: a pass (or ``watch``) calls
:func:`deliver_all` once its work is committed. For each notifier the events after its
cursor are sent in order; the cursor moves (and commits) after each successful send, so
a crash between a send and that commit repeats one event, never loses one. A notifier
that fails or outlives its ``timeout`` is stopped (its process group killed), its
failure recorded, and it is retried with exponential backoff by a later pass: it can
neither fail a pass nor hold it up for longer than its timeout.

A command gets the event's JSON on stdin and ``{kind}`` ``{filename}`` ``{product}``
``{date}`` ``{version}`` ``{seq}`` substituted in its arguments; it is never run through
a shell. A URL gets an HTTP POST of the event's JSON (the standard library's urllib).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from dbproc.clock import iso_utc, utcnow
from dbproc.db.engine import make_session_factory
from dbproc.db.models import NotifyCursor
from dbproc.db.queries import get_mission
from dbproc.db.unit import commit, release
from dbproc.faults import crash_point
from dbproc.feed.config import FeedSettings, NotifierConfig
from dbproc.feed.events import EventQuery, EventRecord, last_seq, list_events
from dbproc.records import Record

logger = logging.getLogger("dbproc.notify")

#: first retry after this many seconds, doubling per failure up to MAX_BACKOFF
BACKOFF_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 3600.0
#: events looked at per notifier and delivery round
ROUND = 500
#: bytes of a command's output kept for the error message
OUTPUT_LIMIT = 2000


def feed_settings(session: Session) -> FeedSettings:
    """The registered mission's feed settings."""
    return FeedSettings.from_json((get_mission(session).settings or {}).get("feed"))


def start_cursors(bind: Session | Connection, notifiers: Sequence[NotifierConfig]) -> None:
    """Give every notifier without a cursor one at the current end of the feed: a new
    notifier is told about what happens from now on, not the archive's history."""
    names = {n.name for n in notifiers}
    if not names:
        return
    have = set(
        bind.execute(select(NotifyCursor.name).where(NotifyCursor.name.in_(names))).scalars()
    )
    now, seq = utcnow(), last_seq(bind)
    for name in sorted(names - have):
        bind.execute(
            NotifyCursor.__table__.insert(),  # type: ignore[attr-defined]
            {"name": name, "seq": seq, "failures": 0, "updated_at": now},
        )


def backoff(failures: int) -> float:
    """Seconds before the next attempt after ``failures`` failures in a row."""
    return float(min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** max(0, failures - 1)))


@dataclass
class DeliveryReport:
    """What one notifier's round did."""

    name: str
    delivered: list[int] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "name": self.name,
            "delivered": self.delivered,
            "error": self.error,
            "skipped": self.skipped,
        }


def substitute(args: Sequence[str], event: EventRecord) -> list[str]:
    """The command's argv with the event's fields in place of ``{kind}`` and the rest."""
    values = {
        "kind": event.kind,
        "filename": event.filename or "",
        "product": event.product or "",
        "date": event.date.isoformat() if event.date else "",
        "version": event.version or "",
        "seq": str(event.seq),
        "run_id": "" if event.run_id is None else str(event.run_id),
    }
    out = []
    for arg in args:
        for key, value in values.items():
            arg = arg.replace("{" + key + "}", value)
        out.append(arg)
    return out


def send(notifier: NotifierConfig, event: EventRecord) -> str | None:
    """Deliver one event; None on success, else what went wrong."""
    body = event.to_json().encode("utf-8")
    if notifier.command is not None:
        return _run_command(substitute(notifier.command, event), body, notifier.timeout)
    assert notifier.url is not None
    request = urllib.request.Request(
        notifier.url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "dbproc-notify"},
    )
    try:
        with urllib.request.urlopen(request, timeout=notifier.timeout) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"POST {notifier.url} answered {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"POST {notifier.url} failed: {exc}"
    return None if 200 <= status < 300 else f"POST {notifier.url} answered {status}"


def _run_command(argv: list[str], stdin: bytes, timeout: float) -> str | None:
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        return f"cannot start {argv[0]}: {exc}"
    try:
        out, _ = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return f"{argv[0]} did not finish within {timeout:g} s and was stopped"
    if proc.returncode != 0:
        tail = out[-OUTPUT_LIMIT:].decode("utf-8", "replace").strip()
        return f"{argv[0]} exited with status {proc.returncode}" + (f": {tail}" if tail else "")
    return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    try:
        proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, OSError, ValueError):
        pass


def deliver(
    engine: Engine, notifier: NotifierConfig, *, now: dt.datetime | None = None
) -> DeliveryReport:
    """One round for one notifier: send what is after its cursor, until a failure."""
    report = DeliveryReport(notifier.name)
    factory = make_session_factory(engine)
    now = now or utcnow()
    with factory() as session:
        start_cursors(session, [notifier])
        commit(session)
        cursor = session.get(NotifyCursor, notifier.name)
        assert cursor is not None
        if cursor.retry_at is not None and cursor.retry_at > now:
            report.skipped = f"retrying after {cursor.retry_at.isoformat()}Z"
            release(session)
            return report
        found = list_events(session, EventQuery(since=cursor.seq, limit=ROUND))
        release(session)
        for event in found:
            error = send(notifier, event) if notifier.wants(event.kind) else None
            if error is not None:
                cursor.failures += 1
                cursor.retry_at = utcnow() + dt.timedelta(seconds=backoff(cursor.failures))
                cursor.last_error = f"event {event.seq}: {error}"[:2000]
                cursor.updated_at = utcnow()
                commit(session)
                report.error = error
                logger.warning(
                    "notifier %s: %s; retrying in %.0f s",
                    notifier.name,
                    error,
                    backoff(cursor.failures),
                )
                return report
            if notifier.wants(event.kind):
                crash_point("notify.delivered")
                report.delivered.append(event.seq)
            cursor.seq = event.seq
            cursor.failures, cursor.retry_at, cursor.last_error = 0, None, None
            cursor.updated_at = utcnow()
            commit(session)
    return report


def deliver_all(engine: Engine, notifiers: Sequence[NotifierConfig]) -> list[DeliveryReport]:
    """A round for every notifier; a notifier's failure never stops the others."""
    crash_point("notify.before_delivery")
    reports = []
    for notifier in notifiers:
        try:
            reports.append(deliver(engine, notifier))
        except Exception as exc:  # noqa: BLE001 - the database, not the notifier: next time
            logger.error("notifier %s: %s: %s", notifier.name, type(exc).__name__, exc)
            reports.append(DeliveryReport(notifier.name, error=f"{type(exc).__name__}: {exc}"))
    return reports


def test_event(notifier: str) -> EventRecord:
    """The synthetic event of ``dbproc notify test``."""
    return EventRecord(
        seq=0,
        time=utcnow(),
        kind="notify.test",
        detail={"notifier": notifier, "message": "a test from dbproc"},
    )


@dataclass(frozen=True)
class NotifierState(Record):
    """A ``[[notify]]`` notifier with its cursor: the last event it was given, and how
    its deliveries fail (``dbproc notify``)."""

    config: NotifierConfig
    cursor: int | None
    failures: int
    retry_at: dt.datetime | None
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        """The notifier as configured, with its cursor."""
        return {
            **self.config.as_json(),
            "cursor": self.cursor,
            "failures": self.failures,
            "retry_at": iso_utc(self.retry_at),
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class NotifyTest(Record):
    """A synthetic event sent to one notifier (``dbproc notify test``), and its error."""

    name: str
    event: EventRecord
    error: str | None


def notifier_states(session: Session, settings: FeedSettings) -> list[NotifierState]:
    """Each notifier with its cursor (``dbproc notify``)."""
    cursors = {c.name: c for c in session.scalars(select(NotifyCursor))}
    out = []
    for n in settings.notifiers:
        c = cursors.get(n.name)
        out.append(
            NotifierState(
                n,
                c.seq if c else None,
                c.failures if c else 0,
                c.retry_at if c else None,
                c.last_error if c else None,
            )
        )
    return out
