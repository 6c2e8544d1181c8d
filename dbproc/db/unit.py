"""The one owner of transactions: where a unit of work begins and ends.

Every transaction of dbproc begins and ends here. There are two kinds of owner:

- **The edge** (:class:`Store`, used by :class:`dbproc.api.Archive`): one command is one
  unit. ``Store.read()`` gives a session whose transaction only reads and is rolled back at
  the end; ``Store.write()`` gives a session that is committed at the end, or rolled back
  when the block raises or with ``dry_run=True`` (everything the block did, previews
  included, is then seen and undone).
- **The loops that own units** (the ingest batch loop, the process loop and its recorder,
  recovery, the lock, ``check --repair``, ``rejects retry``): their session lives for a whole
  pass and they end one unit after another with :func:`commit` / :func:`discard`, or a
  ``with unit(session):`` block.

Services below take the session they are given and never end its transaction. A service
that wants to drop a read snapshot before long disk work calls :func:`release`, which
refuses to run inside a write unit of the edge (it would throw the caller's work away).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dbproc.db.engine import make_session_factory, read_only

#: ``session.info`` key naming who owns the session's transactions
OWNER = "dbproc.unit_owner"
EDGE_WRITE = "edge-write"
#: ``session.info`` key naming the loop-owned unit now open on the session
OPEN = "dbproc.open_unit"


class UnitError(RuntimeError):
    """A transaction was ended by code that does not own it (a bug in dbproc)."""


class Store:
    """Sessions on one engine, each block one unit of work."""

    def __init__(self, engine: Engine, factory: sessionmaker[Session] | None = None) -> None:
        self.engine = engine
        self.factory = factory or make_session_factory(engine)
        self._reader = make_session_factory(read_only(engine))

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session that only reads (on SQLite it neither waits for nor blocks a pass)."""
        with self._reader() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def write(self, *, dry_run: bool = False) -> Iterator[Session]:
        """One unit: committed when the block ends, rolled back when it raises or with
        ``dry_run`` (the block still sees its own changes, so a preview can follow them)."""
        with self.factory() as session:
            session.info[OWNER] = EDGE_WRITE
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            if dry_run:
                session.rollback()
            else:
                session.commit()

    def session(self) -> Session:
        """A long-lived session for a loop that owns its units (the caller closes it)."""
        return self.factory()


def _owned_by_loop(session: Session) -> None:
    if session.info.get(OWNER) == EDGE_WRITE:
        raise UnitError("a service tried to end the transaction of a Store.write() unit")


def open_unit(session: Session, name: str) -> None:
    """Mark the start of a named unit on a loop-owned session; refuse while another is open
    (its work would be committed or thrown away by this one)."""
    _owned_by_loop(session)
    current = session.info.get(OPEN)
    if current is not None:
        raise UnitError(f"unit {name!r} started while unit {current!r} is still open")
    session.info[OPEN] = name


def commit(session: Session) -> None:
    """End the current unit of a loop-owned session by committing it."""
    _owned_by_loop(session)
    session.commit()
    session.info.pop(OPEN, None)


def discard(session: Session) -> None:
    """End the current unit of a loop-owned session by rolling it back."""
    _owned_by_loop(session)
    session.rollback()
    session.info.pop(OPEN, None)


def release(session: Session) -> None:
    """End a read-only stretch so that later work holds no snapshot or lock.

    Refused inside an edge write unit or an open loop unit, whose work must not be thrown
    away."""
    _owned_by_loop(session)
    if session.info.get(OPEN) is not None:
        raise UnitError(f"release() inside the open unit {session.info[OPEN]!r}")
    session.rollback()


@contextmanager
def unit(session: Session, name: str) -> Iterator[Session]:
    """One named unit of a loop-owned session: committed at the end, rolled back if the
    block raises; refused while another unit is open on the session."""
    open_unit(session, name)
    try:
        yield session
    except BaseException:
        discard(session)
        raise
    commit(session)
