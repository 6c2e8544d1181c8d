"""``dbproc watch``: the resident alternative to cron."""

from __future__ import annotations

import click

from dbproc.cli.state import AppState, command


def register(cli: click.Group) -> None:
    """Add ``watch`` to ``cli``."""

    @command(cli, "watch")
    @click.option(
        "--interval",
        type=click.FloatRange(min=0.1),
        default=60.0,
        show_default=True,
        metavar="SECONDS",
        help="Run a pass at least this often (network file systems send no events).",
    )
    @click.option(
        "--jobs", type=click.IntRange(min=1), metavar="N", help="Codes run at once in each pass."
    )
    def watch(state: AppState, interval: float, jobs: int | None) -> None:
        """Stay resident: run a pass when files arrive in incoming, when a verdict or a
        `config apply` makes something buildable, and every --interval seconds.

        One pass at a time under the normal lock; a log line per pass; SIGTERM stops
        it (exit 0); a database that goes away is waited for.
        """
        code = state.archive().watch(interval=interval, handle_signals=True, jobs=jobs)
        click.get_current_context().exit(code)
