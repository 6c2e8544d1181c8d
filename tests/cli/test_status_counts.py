"""``status`` counts files from the coverage summary: the same figures as the file table,
through new versions, and after migration 0008 repairs a summary an import left empty."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import text

from dbproc.db import schema
from dbproc.db.engine import create_db_engine
from dbproc.db.models import REVIEW_PENDING
from tests.helpers import CliHarness, drop


def _from_files(cli: CliHarness) -> dict[str, dict[str, int]]:
    """Per product: every version, and the newest ones, from ``files --all-versions``."""
    rows: list[dict[str, Any]] = cli.json("files", "--all-versions")
    every = Counter(r["product"] for r in rows)
    newest = Counter(r["product"] for r in rows if r["newest"])
    return {p: {"files": every[p], "newest": newest[p]} for p in every}


def _from_status(cli: CliHarness) -> dict[str, dict[str, int]]:
    counts = cli.json("status")["files"]
    return {
        p: {"files": c["files"], "newest": c["newest"]} for p, c in counts.items() if c["files"]
    }


def test_status_counts_every_version_and_the_newest_as_the_file_table(
    applied: CliHarness,
) -> None:
    applied.ok("run")
    drop(applied.incoming, "testDB_000_004.raw", "Fifth Part.\n")  # new versions of two days
    applied.ok("run")
    expected = _from_files(applied)
    assert expected["L1"]["files"] > expected["L1"]["newest"]  # older versions are kept
    assert _from_status(applied) == expected
    engine = create_db_engine(applied.db)
    with engine.begin() as conn:  # as an import before 0008 left it
        conn.execute(text("DELETE FROM coverage_month"))
        conn.execute(text("DELETE FROM coverage_day"))
    schema.downgrade(engine, "0007")
    schema.upgrade(engine)
    engine.dispose()
    assert _from_status(applied) == expected


def test_the_pending_review_count_reads_its_partial_index(applied: CliHarness) -> None:
    """``status`` counts the files waiting for a verdict from ``ix_file_review_pending``,
    not by a scan of ``file``: its query repeats the index's WHERE word for word."""
    engine = create_db_engine(applied.db)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if not sqlite:
            conn.exec_driver_sql("SET enable_seqscan = off")  # the table is tiny here
        explain = "EXPLAIN QUERY PLAN" if sqlite else "EXPLAIN"
        rows = conn.exec_driver_sql(f"{explain} SELECT count(*) FROM file WHERE {REVIEW_PENDING}")
        plan = " ".join(str(row[-1] if sqlite else row[0]) for row in rows)
    assert "ix_file_review_pending" in plan, plan
    engine.dispose()
