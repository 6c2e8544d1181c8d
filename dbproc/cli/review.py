"""``dbproc review``: list files by review state, give verdicts, show their history."""

from __future__ import annotations

import click

from dbproc.cli.output import table
from dbproc.cli.state import AppState, command, group_state
from dbproc.feed.review import STATES, ReviewItem


def _rows(items: list[ReviewItem]) -> str:
    return table(
        [
            (
                i.filename,
                i.product,
                i.date,
                i.version,
                i.review,
                i.verdicts[-1].by if i.verdicts else "",
            )
            for i in items
        ],
        ["filename", "product", "date", "version", "review", "by"],
    )


def register(cli: click.Group) -> None:
    """Add ``review`` and its verdict commands to ``cli``."""

    @cli.group("review", invoke_without_command=True)
    @click.option(
        "--product", "products", multiple=True, metavar="P", help="Only this product (repeatable)."
    )
    @click.option(
        "--state",
        type=click.Choice([*STATES, "all"]),
        default="pending",
        show_default=True,
        help="Only files in this review state.",
    )
    @click.option("--db", "db_option", metavar="URL", help="Database URL or SQLite path.")
    @click.option("--json", "json_option", is_flag=True, help="Print results as JSON.")
    @click.pass_context
    def review(
        ctx: click.Context,
        products: tuple[str, ...],
        state: str,
        db_option: str | None,
        json_option: bool,
    ) -> None:
        """Files of review = true products by review state (default: pending).

        \b
        dbproc review                       # what waits for a verdict
        dbproc review pass FILE... --comment "looks fine"
        dbproc review history FILE
        """
        app = group_state(ctx, db_option, json_option)
        if ctx.invoked_subcommand is not None:
            return
        items = app.archive().reviews(products=products, state=None if state == "all" else state)
        app.emit([i.as_dict() for i in items], _rows(items) or f"no files in review state {state}")

    for verdict, text in (
        ("pass", "Pass: consumers may use these files."),
        ("semipass", "SemiPass: usable, with reservations (say which)."),
        ("fail", "Fail: consumers keep using the previous passed version."),
    ):
        _verdict_command(review, verdict, text)

    @command(review, "history")
    @click.argument("filename")
    def history(state: AppState, filename: str) -> None:
        """Every verdict ever given on FILENAME, oldest first."""
        item = state.archive().review_history(filename)
        lines = [f"{item.filename}: {item.review or 'no review needed'}"]
        lines += [
            f"  {v.at.isoformat()}Z  {v.verdict:<8} {v.by}"
            + (f"  {v.comment}" if v.comment else "")
            for v in item.verdicts
        ]
        state.emit(item.as_dict(), "\n".join(lines))


def _verdict_command(group: click.Group, verdict: str, text: str) -> None:
    @command(group, verdict, help=f"{text} Every verdict is kept.")
    @click.argument("filenames", nargs=-1, required=True)
    @click.option("--comment", metavar="TEXT", help="Why (kept with the verdict).")
    @click.option("--by", metavar="NAME", help="Who gives it [default: your login name].")
    def give(
        state: AppState, filenames: tuple[str, ...], comment: str | None, by: str | None
    ) -> None:
        items = state.archive().review(verdict, filenames, by=by, comment=comment)
        state.emit(
            [i.as_dict() for i in items], "\n".join(f"{i.filename}: {verdict}" for i in items)
        )
