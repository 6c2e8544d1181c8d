"""The ``dbproc`` command line: one click group, thin commands, one error funnel.

Each command parses options, calls one method of :class:`dbproc.api.Archive`, and renders
the result (``--json`` for scripts). Every :class:`~dbproc.errors.DbprocError` is caught
in :meth:`DbprocGroup.invoke` and printed as ``Error: <message>`` with its exit code;
``--traceback`` shows the rest.
"""

from __future__ import annotations

import logging
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from dbproc import __version__, logs
from dbproc.cli.state import AppState
from dbproc.db.engine import display_url
from dbproc.errors import DbprocError

logger = logging.getLogger("dbproc.cli")


class DbprocGroup(click.Group):
    """A click group whose ``invoke`` is the single place errors become exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except DbprocError as exc:
            state = ctx.find_object(AppState)
            if state is not None and state.traceback:
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Error: interrupted", err=True)
            ctx.exit(130)
        except SQLAlchemyError as exc:
            state = ctx.find_object(AppState)
            if state is not None and state.traceback:
                raise
            where = display_url(state.db) if state and state.db else "the database"
            first = str(getattr(exc, "orig", exc)).strip().splitlines()[:1]
            click.echo(
                f"Error: database {where} failed: {' '.join(first)} "
                "(rerun with --traceback for details)",
                err=True,
            )
            ctx.exit(1)
        except Exception as exc:
            state = ctx.find_object(AppState)
            if state is not None and state.traceback:
                raise
            click.echo(
                f"Error: unexpected {type(exc).__name__}: {exc}\n"
                f"This is a bug in dbproc {__version__}; rerun with --traceback and report "
                "the output (with the log file, if you use --log-file).",
                err=True,
            )
            ctx.exit(1)


@click.group(
    cls=DbprocGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--db",
    envvar="DBPROC_DB",
    metavar="URL",
    help="Database: a SQLAlchemy URL, or a path meaning SQLite [env DBPROC_DB].",
)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.option("-v", "--verbose", count=True, help="More log detail (-v: debug).")
@click.option("-q", "--quiet", count=True, help="Only warnings and errors in the log.")
@click.option(
    "--traceback",
    is_flag=True,
    envvar="DBPROC_TRACEBACK",
    help="Show the full traceback of an error.",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    envvar="DBPROC_LOG_FILE",
    help="Also log to this file (UTC timestamps, rotated daily).",
)
@click.version_option(__version__, prog_name="dbproc")
@click.pass_context
def cli(
    ctx: click.Context,
    db: str | None,
    as_json: bool,
    verbose: int,
    quiet: int,
    traceback: bool,
    log_file: str | None,
) -> None:
    """dbproc: ingest raw files, build versioned data products, and explain every file.

    Example:

    \b
        dbproc --db mission.sqlite config apply mission.toml
        dbproc --db mission.sqlite run
    """
    state = ctx.ensure_object(AppState)
    state.db = db
    state.json = as_json
    state.verbosity = verbose - quiet
    state.traceback = traceback
    state.log_file = log_file
    logs.configure(state.verbosity, log_file)


def main() -> None:
    """Console entry point."""
    cli.main(prog_name="dbproc")


def _register() -> None:
    from dbproc.cli import admin, passes, provenance, reports

    for module in (admin, passes, provenance, reports):
        module.register(cli)
    from dbproc.cli import lifecycle

    lifecycle.register(cli)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
