"""The object every command receives: global options, merged with per-command ones."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from dbproc import logs
from dbproc.errors import UsageError

if TYPE_CHECKING:
    from dbproc.api import Archive

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class AppState:
    """Options of the ``dbproc`` group, overridable after the command name."""

    db: str | None = None
    json: bool = False
    verbosity: int = 0
    traceback: bool = False
    log_file: str | None = None
    _archive: Archive | None = field(default=None, repr=False)

    def archive(self) -> Archive:
        """The archive named by ``--db`` (usage error when none is given)."""
        if not self.db:
            raise UsageError("no database given; pass --db URL (or a SQLite path) or set DBPROC_DB")
        if self._archive is None:
            from dbproc.api import Archive

            self._archive = Archive(self.db)
            click.get_current_context().call_on_close(self._archive.close)
        return self._archive

    def emit(self, data: Any, text: str | None = None) -> None:
        """Print ``data`` as JSON with ``--json``, else ``text`` (when given).

        A file name that is not UTF-8 reaches Python as lone surrogates, which no output
        stream can encode: JSON then escapes them (``\\udcff``) and text shows them as
        ``\\xff``, instead of failing after the work is done.
        """
        if self.json:
            from dbproc.records import jsonable  # typed results render themselves

            data = jsonable(data)
            out = json.dumps(data, indent=2, default=str, ensure_ascii=False)
            if not _encodable(out):
                out = json.dumps(data, indent=2, default=str, ensure_ascii=True)
            click.echo(out)
        elif text is not None:
            click.echo(text if _encodable(text) else _escape_surrogates(text))

    def finish(self, data: Any, text: str, exit_code: int, problem: str) -> None:
        """Print a report and exit with ``exit_code``. A report that ends in a failure
        (exit 3) carries, under ``--json``, the same ``error`` object every failure has
        (kind ``failed``), so scripts check one key whatever went wrong."""
        if exit_code and self.json:
            from dbproc.records import jsonable

            data = {
                **jsonable(data),
                "error": {"message": problem, "exit_code": exit_code, "kind": "failed"},
            }
        self.emit(data, text)
        click.get_current_context().exit(exit_code)


def pass_problem(report: dict[str, Any]) -> str:
    """What went wrong in a pass report (``run``/``process``/``ingest --json``), in words."""
    parts = []
    ingest = report.get("ingest") or {}
    if ingest.get("rejected"):
        parts.append(
            f"{len(ingest['rejected'])} incoming file(s) were rejected (`dbproc rejects` shows why)"
        )
    if ingest.get("errors"):
        parts.append(f"{len(ingest['errors'])} incoming file(s) could not be handled")
    process = report.get("process") or {}
    failed = [r for r in process.get("runs", []) if r.get("status") not in ("succeeded", None)]
    if failed:
        parts.append(f"{len(failed)} run(s) failed (`dbproc runs --failed` shows them)")
    return "the pass finished, but " + ("; ".join(parts) or "something failed")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _escape_surrogates(text: str) -> str:
    """Undecodable bytes (U+DC80..U+DCFF) as ``\\xNN``, other lone surrogates as ``\\uNNNN``."""
    return "".join(
        (f"\\x{ord(ch) - 0xDC00:02x}" if 0xDC80 <= ord(ch) <= 0xDCFF else f"\\u{ord(ch):04x}")
        if 0xD800 <= ord(ch) <= 0xDFFF
        else ch
        for ch in text
    )


#: the options every command and listing group takes after its name, as the ``dbproc``
#: group takes them before it (parameter name, click declaration, help)
GLOBAL_OPTIONS: tuple[tuple[str, tuple[str, ...], dict[str, Any]], ...] = (
    (
        "db_option",
        ("--db",),
        {"metavar": "URL", "help": "Database URL or SQLite path [env DBPROC_DB]."},
    ),
    ("json_option", ("--json",), {"is_flag": True, "help": "Print results as JSON."}),
    (
        "verbose_option",
        ("-v", "--verbose"),
        {"count": True, "help": "More log detail (-v: debug)."},
    ),
    (
        "quiet_option",
        ("-q", "--quiet"),
        {"count": True, "help": "Only warnings and errors on the terminal."},
    ),
    (
        "traceback_option",
        ("--traceback",),
        {"is_flag": True, "help": "Show the full traceback of an error."},
    ),
    (
        "log_file_option",
        ("--log-file",),
        {
            "type": click.Path(dir_okay=False),
            "metavar": "FILE",
            "help": "Also log to FILE (UTC, rotated daily).",
        },
    ),
)
GLOBAL_NAMES = tuple(name for name, _decls, _settings in GLOBAL_OPTIONS)


def global_options(func: F) -> F:
    """Add the global options (``--db``, ``--json``, ``-v``, ``-q``, ``--traceback``,
    ``--log-file``) to a command or group; :func:`merge_globals` takes them back out."""
    for name, decls, settings in reversed(GLOBAL_OPTIONS):
        func = click.option(*decls, name, **settings)(func)
    return func


def merge_globals(ctx: click.Context, values: dict[str, Any]) -> AppState:
    """Pop the global options from ``values`` (a command's keyword arguments) into the
    :class:`AppState`; given after the command they add to (or override) those before."""
    state = ctx.ensure_object(AppState)
    db = values.pop("db_option", None)
    if values.pop("json_option", False):
        state.json = True
    verbosity = values.pop("verbose_option", 0) - values.pop("quiet_option", 0)
    if values.pop("traceback_option", False):
        state.traceback = True
    log_file = values.pop("log_file_option", None)
    if db:
        state.db = db
        state._archive = None
    if verbosity or log_file:
        state.verbosity += verbosity
        state.log_file = log_file or state.log_file
        logs.configure(state.verbosity, state.log_file)
    return state


def command(group: click.Group, name: str | None = None, **settings: Any) -> Callable[[F], F]:
    """Declare a dbproc command: adds the global options and passes the :class:`AppState`."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = merge_globals(click.get_current_context(), kwargs)
            return func(state, *args, **kwargs)

        return group.command(name, **settings)(global_options(wrapper))  # type: ignore[return-value]

    return decorate


def group_state(
    ctx: click.Context, db_option: str | None = None, json_option: bool = False, **values: Any
) -> AppState:
    """For a group that also lists (``rejects``, ``runs``): merge its global options."""
    return merge_globals(ctx, {"db_option": db_option, "json_option": json_option, **values})
