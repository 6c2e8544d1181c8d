"""``dbproc runs prune``: remove old run logs (registered on the ``runs`` group)."""

from __future__ import annotations

import click

from dbproc.cli.state import AppState, command


def register(cli: click.Group) -> None:
    runs = cli.commands.get("runs")
    if not isinstance(runs, click.Group):
        return

    @command(runs, "prune")
    @click.option(
        "--failed", is_flag=True, help="Also remove failed runs' folders (log and partial output)."
    )
    @click.option(
        "--older-than",
        "days",
        type=float,
        metavar="DAYS",
        help="Runs that ended more than DAYS ago [default: [retention] run_logs_days].",
    )
    def runs_prune(state: AppState, failed: bool, days: float | None) -> None:
        """Remove the logs of runs that ended long ago; the run records stay.

        Successful runs' logs are also pruned at the end of every pass; failed runs keep
        theirs until this command is given --failed.

        Example:

        \b
            dbproc runs prune --failed --older-than 30
        """
        report = state.archive().prune_runs(failed=failed, older_than_days=days)
        state.emit(report, report.summary())
