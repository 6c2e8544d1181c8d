"""The event feed: every change of state appends an event in the transaction of the change.

Writing is :func:`record_event` / :func:`record_events`, called as the *last* statement
before the commit of the change they describe (ingest batch, recorded build, failed run,
reject, verdict, apply, pass end). ``seq`` strictly increases in commit order:

* SQLite has one writer at a time and ``AUTOINCREMENT`` never reuses a seq, even after
  retention has pruned the newest rows.
* PostgreSQL takes sequence values before commit, so two writers could commit out of
  order and a reader asking ``seq > N`` would skip the slower one's event. Writers
  therefore take a transaction-scoped advisory lock just before inserting: the ids are
  allocated and committed one transaction at a time (the lock is released after the
  commit is visible). Taking it last keeps it for milliseconds and never inside user code.

Reading is :func:`list_events` (one batch) and :func:`follow_events` (a generator that
waits for more: PostgreSQL ``LISTEN/NOTIFY`` as a wake-up only, the table is the truth;
SQLite polls at most once a second).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import select as select_module
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db.engine import read_only
from dbproc.db.models import Event, table_of
from dbproc.db.prepared import Prepared

logger = logging.getLogger("dbproc.feed")

#: the kinds the contract names (more are welcome)
KINDS = (
    "file.ingested",
    "file.built",
    "file.rejected",
    "run.failed",
    "review.verdict",
    "pass.finished",
    "config.applied",
    "run.retry",  # a retry asked for on the dashboard (detail: who)
)
#: PostgreSQL channel woken at the commit of any event (its payload means nothing)
CHANNEL = "dbproc_events"
_EVENT = table_of(Event)
#: one lock per schema (the tests, and several missions, share a PostgreSQL database),
#: taken before an event's id is drawn, so that ids commit in their order; and the
#: wake-up of listeners at commit
_LOCK_AND_NOTIFY = (
    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.dbproc.events')), "
    f"pg_notify('{CHANNEL}', '')"
)
#: on PostgreSQL the lock, the wake-up and the events go in one round trip (a page)
_INSERT_EVENTS = Prepared(_EVENT.insert(), lead={"postgresql": _LOCK_AND_NOTIFY})
#: after a lost LISTEN connection, try a new one at most this often (poll meanwhile)
RELISTEN_SECONDS = 30.0


def iso_z(value: dt.datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with ``Z``."""
    return None if value is None else value.isoformat() + "Z"


@dataclass(frozen=True)
class EventRecord:
    """One event as readers see it (the CLI's, the API's and the dashboard's shape)."""

    seq: int
    time: dt.datetime
    kind: str
    filename: str | None = None
    product: str | None = None
    date: dt.date | None = None
    version: str | None = None
    run_id: int | None = None
    detail: Mapping[str, Any] | None = field(default=None, hash=False)

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of ``events --json`` (one per line)."""
        return {
            "seq": self.seq,
            "time": iso_z(self.time),
            "kind": self.kind,
            "filename": self.filename,
            "product": self.product,
            "date": self.date.isoformat() if self.date else None,
            "version": self.version,
            "run_id": self.run_id,
            "detail": dict(self.detail) if self.detail is not None else None,
        }

    def to_json(self) -> str:
        """One JSON line."""
        return json.dumps(self.as_dict(), default=str, ensure_ascii=False)

    def describe(self) -> str:
        """One human line."""
        what = " ".join(
            str(v) for v in (self.filename or self.product, self.date, self.version) if v
        )
        run = f" run {self.run_id}" if self.run_id is not None else ""
        return f"{self.seq:>8}  {iso_z(self.time)}  {self.kind:<15} {what}{run}".rstrip()


def event_row(
    kind: str,
    *,
    filename: str | None = None,
    product: str | None = None,
    date: dt.date | None = None,
    version: object | None = None,
    run_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
    time: dt.datetime | None = None,
) -> dict[str, Any]:
    """The row of one event, for :func:`record_events`."""
    return {
        "time": time or utcnow(),
        "kind": kind,
        "filename": filename,
        "product": product,
        "date": date,
        "version": None if version is None else str(version),
        "run_id": run_id,
        "detail": dict(detail) if detail is not None else None,
    }


def record_event(bind: Session | Connection, kind: str, **fields: Any) -> None:
    """Append one event inside the caller's transaction (the caller commits)."""
    record_events(bind, [event_row(kind, **fields)])


def record_events(bind: Session | Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append events inside the caller's transaction, as its last statements."""
    if not rows:
        return
    conn = bind.connection() if isinstance(bind, Session) else bind
    _INSERT_EVENTS.execute(conn, rows)


def _record(row: Any) -> EventRecord:
    return EventRecord(
        seq=row.seq,
        time=row.time,
        kind=row.kind,
        filename=row.filename,
        product=row.product,
        date=row.date,
        version=row.version,
        run_id=row.run_id,
        detail=row.detail,
    )


@dataclass(frozen=True)
class EventQuery:
    """Which events to read: after ``since``, of ``kinds`` (all when empty), at most
    ``limit``; ``filename`` for one file's events."""

    since: int = 0
    kinds: tuple[str, ...] = ()
    limit: int | None = None
    filename: str | None = None


def list_events(bind: Session | Connection, query: EventQuery = EventQuery()) -> list[EventRecord]:
    """Events with ``seq > since``, oldest first."""
    stmt = select(_EVENT).where(_EVENT.c.seq > query.since).order_by(_EVENT.c.seq)
    if query.kinds:
        stmt = stmt.where(_EVENT.c.kind.in_(query.kinds))
    if query.filename is not None:
        stmt = stmt.where(_EVENT.c.filename == query.filename)
    if query.limit is not None:
        stmt = stmt.limit(query.limit)
    return [_record(r) for r in bind.execute(stmt)]


def last_seq(bind: Session | Connection) -> int:
    """The newest seq (0 when the feed is empty)."""
    return int(bind.execute(select(func.coalesce(func.max(_EVENT.c.seq), 0))).scalar_one())


def prune_events(bind: Session | Connection, days: float, *, keep_last: bool = True) -> int:
    """Delete events older than ``days``; return how many. The newest event is kept so
    the feed never looks empty to a reader that starts from ``last_seq``."""
    cutoff = utcnow() - dt.timedelta(days=days)
    stmt = delete(_EVENT).where(_EVENT.c.time < cutoff)
    if keep_last:
        stmt = stmt.where(_EVENT.c.seq < select(func.max(_EVENT.c.seq)).scalar_subquery())
    result = bind.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


class _Waker:
    """Waits for 'maybe new events': LISTEN on PostgreSQL, a timer on SQLite.

    The listening connection is the engine's but never goes back to its pool (it is in
    autocommit mode and LISTENs): it is invalidated when done. A lost connection is
    replaced at the next wait, at most every :data:`RELISTEN_SECONDS`."""

    def __init__(self, engine: Engine, poll: float) -> None:
        self.engine = engine
        self.poll = poll
        self.raw: Any = None
        self.listening = engine.dialect.name == "postgresql"
        self.retry_at = 0.0
        self._listen()

    def _listen(self) -> None:
        if not self.listening or self.raw is not None or time.monotonic() < self.retry_at:
            return
        try:
            self.raw = self.engine.raw_connection()
            self.raw.driver_connection.autocommit = True
            with self.raw.driver_connection.cursor() as cur:
                cur.execute(f"LISTEN {CHANNEL}")
        except Exception as exc:  # noqa: BLE001 - polling still works
            logger.warning("cannot LISTEN for events (%s); polling instead", exc)
            self.close()
            self.retry_at = time.monotonic() + RELISTEN_SECONDS

    def wait(self, stop: threading.Event | None, timeout: float) -> None:
        self._listen()
        if self.raw is None:
            (stop or threading.Event()).wait(self.poll)
            return
        conn = self.raw.driver_connection
        waited = 0.0
        try:
            while waited < timeout and (stop is None or not stop.is_set()):
                ready, _, _ = select_module.select([conn], [], [], 0.5)
                waited += 0.5
                if ready:
                    conn.poll()
                    if conn.notifies:
                        conn.notifies.clear()
                        return
        except Exception as exc:  # noqa: BLE001 - the connection went away: poll
            logger.warning("event wake-up connection lost (%s); polling", exc)
            self.close()
            self.retry_at = time.monotonic() + RELISTEN_SECONDS

    def close(self) -> None:
        if self.raw is not None:
            try:
                self.raw.invalidate()  # never back to the pool in autocommit mode
            except Exception:  # noqa: BLE001
                pass
            self.raw = None


def follow_events(
    engine: Engine,
    query: EventQuery = EventQuery(),
    *,
    stop: threading.Event | None = None,
    poll: float = 1.0,
    batch: int = 1000,
) -> Iterator[EventRecord]:
    """Yield events after ``query.since`` as they commit, until ``stop`` is set.

    The table is the truth: a wake-up (NOTIFY) only says "read again", and a read
    happens at least every ``poll`` seconds on SQLite (every 5 s on PostgreSQL, in case
    a notification was lost).
    """
    since = query.since
    sent = 0
    reader = read_only(engine)
    waker = _Waker(engine, poll)
    try:
        while stop is None or not stop.is_set():
            with reader.connect() as conn:
                found = list_events(
                    conn, EventQuery(since, query.kinds, batch, query.filename)
                )  # (closing the connection ends its read)
            for event in found:
                since = event.seq
                yield event
                sent += 1
                if query.limit is not None and sent >= query.limit:
                    return
            if len(found) < batch:
                waker.wait(stop, 5.0)
    finally:
        waker.close()


def kinds_known(kinds: Iterable[str]) -> list[str]:
    """Kinds not in :data:`KINDS` (for a warning; more kinds are allowed)."""
    return [k for k in kinds if k not in KINDS and not k.endswith(".*")]
