"""Review state as a planner fact, and the notifier's pure helpers (no database)."""

from __future__ import annotations

import datetime as dt

from dbproc.build.plan_types import FileRecord, Snapshot
from dbproc.feed.config import NotifierConfig
from dbproc.feed.events import EventRecord
from dbproc.feed.notify import backoff, substitute
from dbproc.version import Version

DAY = dt.date(2016, 1, 1)
START = dt.datetime(2016, 1, 1)
STOP = dt.datetime(2016, 1, 2)


def rec(
    fid: int,
    version: str,
    review: str | None,
    newest: bool,
    product: str = "L1",
    on_disk: bool = True,
) -> FileRecord:
    return FileRecord(
        fid,
        product,
        f"f{fid}",
        DAY,
        START,
        STOP,
        Version.parse(version),
        is_newest=newest,
        review=review,
        on_disk=on_disk,
    )


def usable(*files: FileRecord) -> list[int]:
    snap = Snapshot(processes={}, files=files)
    return [f.id for f in snap.newest_by_product.get("L1", ())]


def test_consumers_use_the_newest_passed_version() -> None:
    assert usable(rec(1, "1.0.0", "pass", False), rec(2, "1.0.1", "pending", True)) == [1]
    assert usable(rec(1, "1.0.0", "pass", False), rec(2, "1.0.1", "fail", True)) == [1]
    assert usable(rec(1, "1.0.0", "pass", False), rec(2, "1.0.1", "semipass", True)) == [2]
    assert usable(rec(1, "1.0.0", "fail", False), rec(2, "1.0.1", "pending", True)) == []
    assert usable(rec(2, "1.0.1", "pending", True)) == []
    # a version registered before review = true needs no verdict
    assert usable(rec(1, "1.0.0", None, False), rec(2, "1.0.1", "pending", True)) == [1]
    assert usable(
        rec(1, "1.0.0", "pass", False),
        rec(2, "1.0.1", "pass", False),
        rec(3, "1.0.2", "pending", True),
    ) == [2]
    # ungated products: only the newest, on disk
    assert usable(rec(1, "1.0.0", None, True)) == [1]
    assert usable(rec(1, "1.0.0", None, True, on_disk=False)) == []


def test_notifier_kinds_and_arguments() -> None:
    n = NotifierConfig("n", ("run.failed", "file.*"))
    assert n.wants("run.failed") and n.wants("file.built") and not n.wants("pass.finished")
    assert NotifierConfig("all", ("*",)).wants("anything")
    event = EventRecord(7, START, "file.built", "a.cat", "L1", DAY, "1.0.0", 3)
    assert substitute(
        ["{kind}", "x{filename}y", "{product}", "{date}", "{seq}", "{nope}"], event
    ) == ["file.built", "xa.caty", "L1", "2016-01-01", "7", "{nope}"]
    assert backoff(1) < backoff(2) < backoff(3) and backoff(100) == 3600.0
