"""The ``dbproc`` logger makes a record only when one of its handlers takes it."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbproc import logs


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """The ``dbproc`` logger without the handlers earlier tests left on it, restored
    afterwards."""
    logger = logging.getLogger(logs.LOGGER_NAME)
    saved = (logger.level, list(logger.handlers), logger.propagate)
    for handler in saved[1]:
        logger.removeHandler(handler)
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    for handler in saved[1]:
        logger.addHandler(handler)
    logger.setLevel(saved[0])
    logger.propagate = saved[2]


def _level_after(verbosity: int, log_file: Path | None = None) -> int:
    """The ``dbproc`` logger's level after ``configure`` in a fresh interpreter (pytest's
    own capture handlers sit on loggers here, and count as someone else's)."""
    code = (
        "import logging, sys; from dbproc import logs; "
        "logs.configure(int(sys.argv[1]), sys.argv[2] or None); "
        "print(logging.getLogger(logs.LOGGER_NAME).getEffectiveLevel())"
    )
    args = [sys.executable, "-c", code, str(verbosity), str(log_file or "")]
    return int(subprocess.run(args, capture_output=True, text=True, check=True).stdout)


def test_a_debug_line_makes_no_record_unless_a_handler_takes_it(tmp_path: Path) -> None:
    assert _level_after(0) == logging.INFO
    assert _level_after(-1) == logging.WARNING
    assert _level_after(-1, tmp_path / "dbproc.log") == logging.INFO  # the file gets INFO
    assert _level_after(1) == logging.DEBUG


def test_a_handler_someone_else_attached_still_sees_every_line(logger: logging.Logger) -> None:
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logs.configure(-1)
    logging.getLogger("dbproc.processing").debug("run 1: started")
    assert [r.getMessage() for r in seen] == ["run 1: started"]
