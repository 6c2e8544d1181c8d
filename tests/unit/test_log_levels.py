"""The ``dbproc`` logger makes a record only when one of its handlers takes it."""

from __future__ import annotations

import logging
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


def test_a_debug_line_makes_no_record_unless_a_handler_takes_it(
    logger: logging.Logger, tmp_path: Path
) -> None:
    logs.configure(0)
    assert not logger.isEnabledFor(logging.DEBUG) and logger.isEnabledFor(logging.INFO)
    logs.configure(-1)
    assert not logger.isEnabledFor(logging.INFO) and logger.isEnabledFor(logging.WARNING)
    logs.configure(-1, tmp_path / "dbproc.log")  # the file always gets INFO
    assert logger.isEnabledFor(logging.INFO) and not logger.isEnabledFor(logging.DEBUG)
    logs.configure(1)
    assert logger.isEnabledFor(logging.DEBUG)


def test_a_handler_someone_else_attached_still_sees_every_line(logger: logging.Logger) -> None:
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logs.configure(-1)
    logging.getLogger("dbproc.processing").debug("run 1: started")
    assert [r.getMessage() for r in seen] == ["run 1: started"]
