"""The object every command receives: global options, merged with per-command ones."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

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
            out = json.dumps(data, indent=2, default=str, ensure_ascii=False)
            if not _encodable(out):
                out = json.dumps(data, indent=2, default=str, ensure_ascii=True)
            click.echo(out)
        elif text is not None:
            click.echo(text if _encodable(text) else _escape_surrogates(text))


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
        if 0xD800 <= ord(ch) <= 0xDFFF else ch
        for ch in text
    )


def command(group: click.Group, name: str | None = None, **settings: Any) -> Callable[[F], F]:
    """Declare a dbproc command: adds ``--db``/``--json`` and passes the :class:`AppState`."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(
            *args: Any, db_option: str | None = None, json_option: bool = False, **kwargs: Any
        ) -> Any:
            state = click.get_current_context().ensure_object(AppState)
            if db_option:
                state.db = db_option
                state._archive = None
            if json_option:
                state.json = True
            return func(state, *args, **kwargs)

        wrapper = click.option(
            "--json", "json_option", is_flag=True, help="Print results as JSON."
        )(wrapper)
        wrapper = click.option(
            "--db", "db_option", metavar="URL", help="Database URL or SQLite path [env DBPROC_DB]."
        )(wrapper)
        return group.command(name, **settings)(wrapper)  # type: ignore[return-value]

    return decorate


def group_state(ctx: click.Context, db_option: str | None, json_option: bool) -> AppState:
    """For a group that also lists (``rejects``, ``runs``): merge its --db/--json."""
    state = ctx.ensure_object(AppState)
    if db_option:
        state.db = db_option
        state._archive = None
    if json_option:
        state.json = True
    return state
