"""The one place failures become output and exit codes (contract sections 8 and 11).

Every failure, whether a :class:`~dbproc.errors.DbprocError`, a click usage error, a
database error or a bug, is turned into a :class:`Failure` and reported the same way:
``Error: <message>`` on stderr, and with ``--json`` also one object on stdout,
``{"error": {"message", "exit_code", "kind"}}``, so scripts never parse prose.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from dbproc import __version__
from dbproc.errors import ConfigError, DbprocError

#: the ``kind`` values of a JSON error object
KINDS = ("usage", "config", "database", "lock", "schema", "bug", "failed")


@dataclass(frozen=True)
class Failure:
    """A failure as reported: message, exit code, kind (and extra JSON keys)."""

    message: str
    exit_code: int
    kind: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The JSON error object."""
        return {
            "error": {
                "message": self.message,
                "exit_code": self.exit_code,
                "kind": self.kind,
                **self.extra,
            }
        }


def wants_json(args: Sequence[str]) -> bool:
    """Whether the raw command line asks for JSON (``--json`` or ``--format json``
    anywhere before ``--``): known before click has parsed anything, so a usage error
    in any option still answers in JSON."""
    for i, arg in enumerate(args):
        if arg == "--":
            return False
        if arg in ("--json", "--format=json") or (
            arg == "--format" and i + 1 < len(args) and args[i + 1] == "json"
        ):
            return True
    return False


def add_hints(exc: click.ClickException, argv: Sequence[str]) -> click.ClickException:
    """Improve click's message where dbproc knows the likely fix: an "option" that looks
    like a file name (``-x.cat``) is a file name with a leading dash, which needs ``--``."""
    if isinstance(exc, click.NoSuchOption):
        name = next((a for a in argv if a.startswith(exc.option_name) and _file_like(a)), None)
        if name is not None:
            where = exc.ctx.command_path if exc.ctx is not None else "dbproc COMMAND"
            hint = (
                f"{exc.message} {name!r} looks like a file name starting with "
                f"'-': put -- before it ({where} [OPTIONS] -- {name})"
            )
            exc.message = hint  # type: ignore[misc]
    return exc


def _file_like(arg: str) -> bool:
    return arg.startswith("-") and arg != "--" and ("." in arg or "/" in arg)


def failure_of(exc: BaseException, db: str | None) -> Failure:
    """What to report for ``exc``."""
    if isinstance(exc, DbprocError):
        extra: dict[str, Any] = {}
        if isinstance(exc, ConfigError) and exc.problems:
            extra["problems"] = exc.problems
        return Failure(str(exc), exc.exit_code, exc.kind, extra)
    if isinstance(exc, click.ClickException):
        return Failure(exc.format_message(), exc.exit_code, "usage")
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C; SIGTERM/SIGHUP during a pass
        signum = int(getattr(exc, "signum", signal.SIGINT))
        return Failure(
            f"interrupted by {signal.Signals(signum).name}: running codes were "
            "stopped (runs recorded cancelled), the pass recorded interrupted, "
            "the lock released",
            128 + signum,
            "failed",
        )
    if _is_sqlalchemy_error(exc):
        return _database_failure(exc, db)
    return Failure(
        f"unexpected {type(exc).__name__}: {exc}\n"
        f"This is a bug in dbproc {__version__}; rerun with --traceback and report "
        "the output (with the log file, if you use --log-file).",
        1,
        "bug",
    )


def _is_sqlalchemy_error(exc: BaseException) -> bool:
    """Without importing SQLAlchemy for commands that never open a database."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def _database_failure(exc: BaseException, db: str | None) -> Failure:
    from dbproc.db.engine import display_url

    where = display_url(db) if db else "the database"
    first = " ".join(str(getattr(exc, "orig", exc)).strip().splitlines()[:1])
    lowered = first.lower()
    if "readonly database" in lowered or "permission denied" in lowered:
        return Failure(
            f"database {where} refused a write: {first}; this command changes the "
            "database, so it needs a user (or file permissions) that may write; "
            "read-only commands (files, lineage, explain, status, plan) work without",
            2,
            "database",
        )
    return Failure(
        f"database {where} failed: {first} (rerun with --traceback for details)", 1, "database"
    )


def report(failure: Failure, *, as_json: bool) -> None:
    """Print ``failure``: prose on stderr, and the JSON object on stdout with ``--json``."""
    click.echo(f"Error: {failure.message}", err=True)
    if as_json:
        click.echo(json.dumps(failure.as_json(), indent=2, ensure_ascii=False))
