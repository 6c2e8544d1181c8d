"""``dbproc watch``: stay resident and run a pass whenever something may be buildable.

Triggers (all are hints; a pass decides what is really to do):

* files arriving in incoming: file-system events through ``watchfiles`` where the file
  system reports them, else (and always, as a safety net) a cheap scan of the folder's
  listing every few seconds, since NFS and Lustre report nothing;
* a ``review.verdict`` or ``config.applied`` event in the feed (PostgreSQL NOTIFY wakes
  the follower at once; SQLite is polled every second);
* the interval: at least one pass every ``interval`` seconds.

One pass at a time, under the normal lock (a pass started by cron meanwhile is waited
out). SIGTERM or SIGINT while idle ends at once with exit 0; during a pass it interrupts
the pass as Ctrl-C does, then ends with exit 0. When the database goes away (a
PostgreSQL restart, a killed connection) watch says so, waits with backoff and goes on.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from dbproc.errors import DatabaseError, LockHeld

if TYPE_CHECKING:
    from dbproc.feed.archive import FeedMethods

logger = logging.getLogger("dbproc.watch")

#: feed kinds that can make something buildable without a file arriving
WAKING_KINDS = ("review.verdict", "config.applied")
SCAN_SECONDS = 5.0
MAX_DB_BACKOFF = 60.0


@dataclass
class WatchState:
    """What wakes the loop, and what it has done (for tests and the log)."""

    stop: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    reasons: set[str] = field(default_factory=set)
    passes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def trigger(self, reason: str) -> None:
        with self.lock:
            self.reasons.add(reason)
        self.wake.set()

    def take(self) -> set[str]:
        with self.lock:
            reasons, self.reasons = self.reasons, set()
        self.wake.clear()
        return reasons


class Watcher:
    """The resident loop around :meth:`Archive.run`."""

    def __init__(
        self,
        archive: FeedMethods,
        incoming: Path,
        *,
        interval: float = 60.0,
        state: WatchState | None = None,
        run_pass: Callable[[], Any],
    ) -> None:
        self.archive = archive
        self.incoming = incoming
        self.interval = interval
        self.state = state or WatchState()
        self.run_pass = run_pass
        self.in_pass = False
        self._threads: list[threading.Thread] = []

    # -- signals --------------------------------------------------------------------------

    def install_signals(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            logger.info("watch: %s received; stopping", signal.Signals(signum).name)
            self.state.stop.set()
            self.state.wake.set()
            if self.in_pass:
                raise KeyboardInterrupt

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, handler)

    # -- triggers -------------------------------------------------------------------------

    def _start(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _watch_files(self) -> None:
        try:
            import watchfiles
        except ImportError:
            logger.info(
                "watch: watchfiles is not installed; scanning %s every %.0f s",
                self.incoming,
                SCAN_SECONDS,
            )
            return
        wanted = (watchfiles.Change.added, watchfiles.Change.modified)
        while not self.state.stop.is_set():
            try:
                for changes in watchfiles.watch(
                    self.incoming,
                    stop_event=self.state.stop,
                    debounce=500,
                    rust_timeout=1000,
                    yield_on_timeout=False,
                    raise_interrupt=False,
                ):
                    if any(change in wanted for change, _ in changes):
                        self.state.trigger("files")
            except (OSError, RuntimeError) as exc:  # folder gone, watches exhausted
                logger.warning(
                    "watch: no file-system events for %s (%s); scanning instead", self.incoming, exc
                )
                self.state.stop.wait(SCAN_SECONDS * 6)

    def _scan_files(self) -> None:
        """The safety net: a changed listing of incoming is a trigger."""
        seen: frozenset[tuple[str, int]] | None = None
        while not self.state.stop.wait(SCAN_SECONDS if seen is not None else 0):
            try:
                with os.scandir(self.incoming) as entries:
                    now = frozenset(
                        (e.name, e.stat(follow_symlinks=False).st_mtime_ns) for e in entries
                    )
            except OSError:
                now = frozenset()
            if seen is not None and now - seen:
                self.state.trigger("files")
            seen = now

    def _follow_feed(self) -> None:
        backoff = 1.0
        since: int | None = None
        while not self.state.stop.is_set():
            try:
                if since is None:
                    since = self.archive.last_event_seq()
                for event in self.archive.follow_events(
                    since=since, kinds=WAKING_KINDS, stop=self.state.stop
                ):
                    since = event.seq
                    self.state.trigger(event.kind)
                    backoff = 1.0
            except (SQLAlchemyError, DatabaseError, OSError) as exc:
                logger.debug("watch: feed follower: %s", exc)
                self.state.stop.wait(backoff)
                backoff = min(MAX_DB_BACKOFF, backoff * 2)

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; the exit code (0)."""
        self._start(self._watch_files, "dbproc-watch-files")
        self._start(self._scan_files, "dbproc-watch-scan")
        self._start(self._follow_feed, "dbproc-watch-feed")
        logger.info("watch: watching %s; a pass at least every %g s", self.incoming, self.interval)
        self.state.trigger("start")
        backoff = 1.0
        try:
            while not self.state.stop.is_set():
                if not self.state.wake.wait(self.interval):
                    self.state.trigger("interval")
                if self.state.stop.is_set():
                    break
                reasons = self.state.take()
                if self._one_pass(reasons):
                    backoff = 1.0
                    continue
                logger.warning("watch: waiting %.0f s for the database", backoff)
                self.state.stop.wait(backoff)
                backoff = min(MAX_DB_BACKOFF, backoff * 2)
                self.state.trigger("retry")
        except KeyboardInterrupt:
            pass
        self.state.stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        logger.info("watch: stopped after %d passes", self.state.passes)
        return 0

    def _one_pass(self, reasons: set[str]) -> bool:
        """One pass; False when the database could not be reached."""
        why = ", ".join(sorted(reasons)) or "interval"
        self.in_pass = True
        try:
            report = self.run_pass()
        except LockHeld as exc:
            logger.info("watch: %s; trying again later", exc)
            return True
        except (SQLAlchemyError, DatabaseError, OSError) as exc:
            first = str(getattr(exc, "orig", exc)).strip().splitlines()[:1]
            logger.error("watch: the database is unavailable (%s)", " ".join(first))
            self.archive.close()  # drop every pooled connection: they may all be dead
            return False
        finally:
            self.in_pass = False
        self.state.passes += 1
        logger.info("watch: pass %s (%s): exit %s", report.pass_id, why, report.exit_code)
        return True
