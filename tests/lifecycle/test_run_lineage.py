"""RUN processes are first-class in lineage and explain."""

from __future__ import annotations

from tests.helpers import CliHarness


def test_lineage_lists_the_run_runs_that_used_a_file(built: CliHarness) -> None:
    data = built.json("lineage", "testDB_20160102_v1.0.0.rot")
    assert [(r["process"], r["date"], r["status"]) for r in data["runs"]] == [
        ("L2_log", "2016-01-02", "succeeded")
    ]
    assert data["children"] == []
    text = built.ok("lineage", "testDB_20160102_v1.0.0.rot").stdout
    assert "RUN runs that used it" in text and "L2_log" in text
    assert built.json("lineage", "testDB_000_001.raw")["runs"] == []
    assert "runs" not in built.json("lineage", "testDB_20160102_v1.0.0.rot", "--up")


def test_explain_a_run_process_on_a_date(built: CliHarness) -> None:
    data = built.json("explain", "--process", "L2_log", "--date", "2016-01-03")
    assert data["up_to_date"] is True and data["process"] == "L2_log"
    assert data["inputs"] == ["testDB_20160103_v1.0.0.rot"]
    assert "up to date" in built.ok("explain", "--process", "L2_log", "--date", "2016-01-03").stdout
    later = built.json("explain", "--process", "L2_log", "--date", "2016-02-01")
    assert later["status"] == "not_expected"
    daily = built.json("explain", "--process", "L0_to_L1", "--date", "2016-01-02")
    assert daily["up_to_date"] is True and daily["product"] == "L1"
    unknown = built.run("explain", "--process", "nope", "--date", "2016-01-03")
    assert unknown.exit_code == 2 and "L2_log" in unknown.stderr
    both = built.run("explain", "--process", "L2_log", "--product", "L2", "--date", "2016-01-03")
    assert both.exit_code == 2
