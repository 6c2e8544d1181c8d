"""The feed's part of :class:`dbproc.api.Archive`: events, review, show, notify, watch.

:class:`FeedMethods` is a mixin of :class:`~dbproc.api.Archive`; every method opens its
own unit of work (the Archive is the edge that owns transactions).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dbproc.errors import NotFound, UsageError
from dbproc.feed import events as events_module
from dbproc.feed import review as review_module
from dbproc.feed.events import EventQuery, EventRecord
from dbproc.feed.show import FileDocument, show_file

if TYPE_CHECKING:
    from dbproc.control.passes import PassReport
    from dbproc.feed import notify

logger = logging.getLogger("dbproc.feed")


class FeedMethods:
    """Archive methods of the change feed, the review gate and notifications."""

    if TYPE_CHECKING:

        @property
        def engine(self) -> Engine: ...

        def reading(self) -> AbstractContextManager[Session]: ...

        def writing(self, *, dry_run: bool = False) -> AbstractContextManager[Session]: ...

        def require_schema(self) -> None: ...

        def close(self) -> None: ...

    # -- events ---------------------------------------------------------------------------

    def events(
        self,
        *,
        since: int = 0,
        kinds: tuple[str, ...] | list[str] = (),
        limit: int | None = None,
        filename: str | None = None,
    ) -> list[EventRecord]:
        """Events after ``since`` (oldest first), optionally of some kinds (``dbproc events``)."""
        with self.reading() as session:
            return events_module.list_events(
                session, EventQuery(since, tuple(kinds), limit, filename)
            )

    def follow_events(
        self,
        *,
        since: int = 0,
        kinds: tuple[str, ...] | list[str] = (),
        limit: int | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[EventRecord]:
        """Events after ``since`` as they commit, until ``stop`` is set
        (``dbproc events --follow``)."""
        self.require_schema()
        return events_module.follow_events(
            self.engine, EventQuery(since, tuple(kinds), limit), stop=stop
        )

    def last_event_seq(self) -> int:
        """The newest event's seq (0 when there is none)."""
        with self.reading() as session:
            return events_module.last_seq(session)

    # -- after a pass ---------------------------------------------------------------------

    def _after_pass(self, report: PassReport) -> None:
        """Retention of events and notification delivery, after the pass committed.
        Never raises: a notifier or a prune cannot fail a pass."""
        from dbproc.feed import notify

        try:
            with self.writing() as session:
                settings = notify.feed_settings(session)
                events_module.prune_events(session, settings.events_days)
            notify.deliver_all(self.engine, settings.notifiers)
        except Exception as exc:  # noqa: BLE001 - after the pass: log, never fail it
            logger.error("after pass %s: %s: %s", report.pass_id, type(exc).__name__, exc)

    # -- review ---------------------------------------------------------------------------

    def reviews(
        self, *, products: tuple[str, ...] | list[str] = (), state: str | None = "pending"
    ) -> list[review_module.ReviewItem]:
        """Files with a review state; default: those waiting for a verdict (``dbproc review``)."""
        with self.reading() as session:
            return review_module.list_reviews(session, products=tuple(products), state=state)

    def review(
        self,
        verdict: str,
        filenames: list[str] | tuple[str, ...],
        *,
        by: str | None = None,
        comment: str | None = None,
    ) -> list[review_module.ReviewItem]:
        """Record a verdict (``pass``, ``semipass``, ``fail``) on files; consumers are
        queued, so the next pass (or ``watch``, at once) rebuilds what it releases."""
        with self.writing() as session:
            items = review_module.record_verdicts(
                session, list(filenames), verdict, by=by, comment=comment
            )
        return items

    def review_history(self, filename: str) -> review_module.ReviewItem:
        """A file's review state and every verdict on it (``dbproc review history``)."""
        with self.reading() as session:
            return review_module.review_history(session, filename)

    # -- one file as a document -----------------------------------------------------------

    def show(self, filename: str) -> FileDocument:
        """A file's registration, metadata, review, runs and events (``dbproc show``)."""
        with self.reading() as session:
            return show_file(session, filename)

    # -- notifications --------------------------------------------------------------------

    def notifiers(self) -> list[notify.NotifierState]:
        """The ``[[notify]]`` notifiers with their cursors (``dbproc notify``)."""
        from dbproc.feed import notify

        with self.reading() as session:
            return notify.notifier_states(session, notify.feed_settings(session))

    def notify_test(self, name: str) -> notify.NotifyTest:
        """Send one synthetic event to notifier ``name`` (``dbproc notify test``); its
        cursor does not move."""
        from dbproc.feed import notify

        with self.reading() as session:
            settings = notify.feed_settings(session)
        notifier = settings.notifier(name)
        if notifier is None:
            known = ", ".join(n.name for n in settings.notifiers) or "none"
            raise NotFound(
                f"no notifier called {name!r} (known: {known}); name it with "
                "name = ... in its [[notify]] table and apply the mission file"
            )
        event = notify.test_event(name)
        return notify.NotifyTest(name, event, notify.send(notifier, event))

    def deliver_notifications(self) -> list[notify.DeliveryReport]:
        """One delivery round for every notifier (what a pass end and ``watch`` do)."""
        from dbproc.feed import notify

        with self.reading() as session:
            settings = notify.feed_settings(session)
        return notify.deliver_all(self.engine, settings.notifiers)

    # -- watch ----------------------------------------------------------------------------

    def watch(
        self,
        *,
        interval: float = 60.0,
        handle_signals: bool = False,
        stop: threading.Event | None = None,
        **pass_options: Any,
    ) -> int:
        """Stay resident and run a pass whenever files arrive, a verdict or an apply
        makes something buildable, and at least every ``interval`` seconds
        (``dbproc watch``). Returns 0 when stopped (``stop`` set, or SIGTERM/SIGINT with
        ``handle_signals``). ``pass_options`` are those of :meth:`run`."""
        from dbproc.admin.mission_settings import stored_settings
        from dbproc.feed.watch import Watcher, WatchState

        if interval <= 0:
            raise UsageError(f"--interval {interval:g}: give a number of seconds > 0")
        with self.reading() as session:
            incoming = stored_settings(session).paths.incoming
        run = getattr(self, "run")  # noqa: B009 - Archive.run, defined beside this mixin
        state = WatchState(stop=stop or threading.Event())
        watcher = Watcher(
            self, incoming, interval=interval, state=state, run_pass=lambda: run(**pass_options)
        )
        if handle_signals:
            watcher.install_signals()
        return watcher.run()
