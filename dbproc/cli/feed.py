"""Commands of the change feed: events, show, notify (the review commands are in
:mod:`dbproc.cli.review`, watch in :mod:`dbproc.cli.watch`)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import click

from dbproc.cli.output import table
from dbproc.cli.state import AppState, command, group_state
from dbproc.errors import NeedsAttention, UsageError
from dbproc.feed.events import EventRecord


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM/SIGINT/SIGHUP, so a follower ends cleanly (exit 0)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)
    return stop


def register(cli: click.Group) -> None:  # long: it holds the commands, each short
    """Add this module's commands to ``cli``."""

    @command(cli, "events")
    @click.option(
        "--since",
        type=int,
        default=0,
        metavar="SEQ",
        help="Only events after this seq (the last one you saw).",
    )
    @click.option(
        "--kind",
        "kinds",
        multiple=True,
        metavar="KIND",
        help="Only this kind, e.g. run.failed (repeatable).",
    )
    @click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N events.")
    @click.option(
        "--follow", is_flag=True, help="Keep printing new events as they commit, until interrupted."
    )
    def events(
        state: AppState, since: int, kinds: tuple[str, ...], limit: int | None, follow: bool
    ) -> None:
        """The change feed: every change of state, in commit order (--json: JSON Lines).

        A consumer that remembers the last seq it saw and asks --since it misses none
        and sees none twice.
        """
        if since < 0:
            raise UsageError(f"--since {since}: give a seq >= 0")
        archive = state.archive()
        if not follow:
            found = archive.events(since=since, kinds=kinds, limit=limit)
            _print_events(state, found)
            return
        stop = stop_on_signals()
        try:
            for event in archive.follow_events(since=since, kinds=kinds, limit=limit, stop=stop):
                _print_events(state, [event])
        except BrokenPipeError:  # the reader went away
            sys.stderr.close()

    @cli.group("notify", invoke_without_command=True)
    @click.option("--db", "db_option", metavar="URL", help="Database URL or SQLite path.")
    @click.option("--json", "json_option", is_flag=True, help="Print results as JSON.")
    @click.pass_context
    def notify(ctx: click.Context, db_option: str | None, json_option: bool) -> None:
        """Notifiers ([[notify]] tables) with their cursors; `notify test NAME`."""
        state = group_state(ctx, db_option, json_option)
        if ctx.invoked_subcommand is not None:
            return
        rows = state.archive().notifiers()
        state.emit(
            rows,
            table(
                [
                    (
                        r.config.name,
                        ",".join(r.config.on),
                        r.cursor,
                        r.failures,
                        r.last_error or "",
                    )
                    for r in rows
                ],
                ["name", "on", "cursor", "failures", "last error"],
            )
            or "no notifiers ([[notify]] tables in the mission file)",
        )

    @command(notify, "test")
    @click.argument("name")
    def notify_test(state: AppState, name: str) -> None:
        """Send one synthetic event (kind notify.test) to the notifier NAME."""
        result = state.archive().notify_test(name)
        state.emit(result, f"notifier {name}: " + (result.error or "delivered"))
        if result.error:
            raise NeedsAttention(f"notifier {name} failed: {result.error}")

    @command(cli, "show")
    @click.argument("filename")
    def show(state: AppState, filename: str) -> None:
        """One file as a document: registration, metadata, review, runs and events."""
        doc = state.archive().show(filename).as_dict()
        state.emit(doc, _show_text(doc))


def _print_events(state: AppState, found: Sequence[EventRecord]) -> None:
    for event in found:
        line = event.to_json() if state.json else event.describe()
        click.echo(line)
    sys.stdout.flush()


def _show_text(doc: dict[str, object]) -> str:
    lines = []
    for key in (
        "filename",
        "product",
        "date",
        "version",
        "path",
        "newest",
        "review",
        "sha256",
        "size",
        "registered_at",
    ):
        lines.append(f"{key:<14}{doc.get(key)}")
    made = doc.get("made_by_run")
    if isinstance(made, dict):
        lines.append(
            f"{'made by':<14}run {made.get('id')} ({made.get('process')} "
            f"{made.get('code_version')})"
        )
    used = doc.get("used_by")
    if isinstance(used, list) and used:
        lines.append(f"{'used by':<14}" + ", ".join(f"run {u['id']}" for u in used))
    events = doc.get("events")
    if isinstance(events, list):
        lines.append(f"{'events':<14}{len(events)}")
    return "\n".join(lines)
