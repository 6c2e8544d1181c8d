"""Logging set-up, called by the CLI only (importing dbproc configures nothing).

Log lines go to stderr (results go to stdout) and, with ``--log-file``, to a file rotated
at UTC midnight. Timestamps are UTC, set on our formatter only. ``-q``/``-v`` set the
terminal's level only: the log file always gets INFO (DEBUG with ``-v``). A record logged
with ``extra={"dbproc_log_file_only": True}`` (something stdout already shows) goes to
the log file only. While a progress bar is drawn, :func:`print_through` sends the
terminal's log lines through the bar's console, so they appear above the bar.
"""

from __future__ import annotations

import logging
import logging.handlers
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOGGER_NAME = "dbproc"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class UTCFormatter(logging.Formatter):
    """A formatter writing UTC ISO timestamps."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


def level_for(verbosity: int) -> int:
    """-q → WARNING, default → INFO, -v → DEBUG."""
    if verbosity < 0:
        return logging.WARNING
    if verbosity == 0:
        return logging.INFO
    return logging.DEBUG


def configure(verbosity: int = 0, log_file: str | Path | None = None) -> None:
    """Attach dbproc's handlers to the ``dbproc`` logger (idempotent)."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if getattr(handler, "_dbproc", False):
            logger.removeHandler(handler)
            handler.close()
    logger.propagate = False
    formatter = UTCFormatter(FORMAT)
    stderr = TerminalHandler()
    stderr.setLevel(level_for(verbosity))
    stderr.setFormatter(formatter)
    stderr.addFilter(_not_file_only)
    stderr._dbproc = True  # type: ignore[attr-defined]
    logger.addHandler(stderr)
    if log_file is not None:
        path = Path(log_file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.TimedRotatingFileHandler(
            path,
            when="midnight",
            utc=True,
            backupCount=0,
            encoding="utf-8",
            errors="backslashreplace",  # a non-UTF-8 file name never breaks a log line
        )
        rotating.setLevel(logging.DEBUG if verbosity > 0 else logging.INFO)
        rotating.setFormatter(formatter)
        rotating._dbproc = True  # type: ignore[attr-defined]
        logger.addHandler(rotating)
    # the lowest level a handler takes: a record none would take is never made (a
    # debug line of the process loop costs a record and a look up the stack otherwise)
    ours = [h.level for h in logger.handlers if getattr(h, "_dbproc", False)]
    others = len(logger.handlers) > len(ours)  # someone else's handler: let it see all
    logger.setLevel(logging.DEBUG if others else min(ours))


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, "dbproc_log_file_only", False)


class TerminalHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, or while a progress display is up, that display's ``print``."""

    printer: Callable[[str], None] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        printer = self.printer
        if printer is None:
            super().emit(record)
            return
        try:
            printer(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


@contextmanager
def print_through(printer: Callable[[str], None]) -> Iterator[None]:
    """While inside, the terminal's log lines are printed by ``printer`` (a live
    progress display's console prints them above the bar instead of onto it)."""
    handlers = [
        h for h in logging.getLogger(LOGGER_NAME).handlers if isinstance(h, TerminalHandler)
    ]
    for handler in handlers:
        handler.printer = printer
    try:
        yield
    finally:
        for handler in handlers:
            handler.printer = None
