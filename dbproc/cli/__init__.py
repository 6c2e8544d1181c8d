"""The ``dbproc`` command line: one click group, thin commands, one error funnel.

Each command parses options, calls one method of :class:`dbproc.api.Archive`, and renders
the result (``--json`` for scripts). Every :class:`~dbproc.errors.DbprocError` is caught
in :meth:`DbprocGroup.invoke` and printed as ``Error: <message>`` with its exit code
(with ``--json`` also as one JSON object on stdout: :mod:`dbproc.cli.funnel`);
``--traceback`` shows the rest.
"""

from __future__ import annotations

import gc
import importlib
import logging
from typing import Any

import click

from dbproc import __version__, logs
from dbproc.cli import funnel
from dbproc.cli.state import AppState

logger = logging.getLogger("dbproc.cli")


#: the modules defining each command, so that a command imports only its own (each command
#: is a new process); a name not listed here makes every module register (_register)
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("config", "db", "example"), ("dbproc.cli.admin",)),
    **dict.fromkeys(
        ("check", "ingest", "plan", "process", "run", "status", "unlock"), ("dbproc.cli.passes",)
    ),
    **dict.fromkeys(("explain", "lineage", "recall", "reprocess"), ("dbproc.cli.provenance",)),
    **dict.fromkeys(("files", "inspect", "rejects"), ("dbproc.cli.reports",)),
    "runs": ("dbproc.cli.reports", "dbproc.cli.runs_prune"),  # prune joins the `runs` group
    **dict.fromkeys(("events", "notify", "show"), ("dbproc.cli.feed",)),
    "review": ("dbproc.cli.review",),
    "watch": ("dbproc.cli.watch",),
    "serve": ("dbproc.cli.web",),
    "import-dbprocessing": ("dbproc.cli.importing",),
    **dict.fromkeys(("release", "purge", "export"), ("dbproc.cli.lifecycle",)),
}
_registered: set[str] = set()


def _register_modules(modules: tuple[str, ...]) -> None:
    for module in modules:
        if module not in _registered:
            importlib.import_module(module).register(cli)
            _registered.add(module)


def _register() -> None:
    """Register every command (for --help, the reference page and unlisted names)."""
    for modules in COMMAND_MODULES.values():
        _register_modules(modules)


class DbprocGroup(click.Group):
    """A click group whose ``make_context`` and ``invoke`` are the single place errors
    become exit codes (see :mod:`dbproc.cli.funnel`).

    Commands are registered lazily: only the module of the command being run is imported.
    """

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        as_json = funnel.wants_json(args)
        argv = list(args)
        try:
            ctx = super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as exc:  # a bad global option: before any command
            funnel.add_hints(exc, argv)
            if not as_json:
                raise
            funnel.report(funnel.failure_of(exc, None), as_json=True)
            raise click.exceptions.Exit(exc.exit_code) from None
        ctx.meta["dbproc.argv"] = argv
        return ctx

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # every module of the command, even when the command exists: a group (`runs`)
        # made by one module gets subcommands (`runs prune`) from another
        _register_modules(COMMAND_MODULES.get(cmd_name, ()))
        if cmd_name not in self.commands:
            _register()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort):
            raise
        except click.ClickException as exc:
            funnel.add_hints(exc, ctx.meta.get("dbproc.argv", []))
            if not self._json(ctx):
                raise  # click prints usage and the message, as people expect
            funnel.report(funnel.failure_of(exc, None), as_json=True)
            ctx.exit(exc.exit_code)
        except (Exception, KeyboardInterrupt) as exc:
            state = ctx.find_object(AppState)
            if state is not None and state.traceback and not isinstance(exc, KeyboardInterrupt):
                raise
            failure = funnel.failure_of(exc, state.db if state else None)
            funnel.report(failure, as_json=self._json(ctx))
            ctx.exit(failure.exit_code)

    @staticmethod
    def _json(ctx: click.Context) -> bool:
        state = ctx.find_object(AppState)
        return bool(state and state.json) or funnel.wants_json(ctx.meta.get("dbproc.argv", []))


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
    """Console entry point.

    The process ends right after the command, so the objects its imports made (SQLAlchemy,
    the models: about 80 000 tracked by the garbage collector) are frozen first: the
    interpreter's last collections at exit then skip them and the OS takes the memory back,
    instead of a collection and a teardown that cost as much as a short command's work.
    Nothing is lost by it: the command has closed its archive (the context's close
    callback), and the ``atexit`` hooks (logging's flush, temporary folders) still run.
    """
    try:
        cli.main(prog_name="dbproc")
    finally:
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    main()
