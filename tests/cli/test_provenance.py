"""Reprocess, lineage, recall, explain, files --missing: end to end on both backends."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import create_engine, update

import dbproc
from dbproc.db.engine import database_url
from dbproc.db.models import File
from dbproc.provenance.lineage import Lineage
from dbproc.records import FileRecord
from tests.helpers import (
    CliHarness,
    drop,
    dump_database,
    edit_mission,
    tree_state,
    use_test_code,
)


def bump_code(cli: CliHarness, process: str, version: str) -> None:
    def mutate(doc: dict[str, Any]) -> None:
        doc["processes"][process]["code"]["version"] = version

    edit_mission(cli.mission_file, mutate)


@pytest.fixture
def built(applied: CliHarness) -> CliHarness:
    applied.ok("run")
    return applied


def versions(cli: CliHarness, product: str) -> dict[str, str]:
    return {f["date"]: f["version"] for f in cli.json("files", "--product", product)}


def test_code_bump_flow(built: CliHarness) -> None:
    bump_code(built, "L0_to_L1", "1.1.0")
    built.ok("config", "apply", str(built.mission_file))
    plan = built.json("plan", "--next")
    assert {(p["process"], p["reason"], p["version"]) for p in plan} == {
        ("L0_to_L1", "code_changed", "1.1.0")
    }
    assert len(plan) == 4
    assert plan[0]["evidence"] == ["made by code 1.0.0; the code is now 1.1.0"]
    report = built.json("run")
    assert report["process"]["counts"] == {"runs": 12, "succeeded": 12}
    assert set(versions(built, "L1").values()) == {"1.1.0"}
    assert set(versions(built, "L2").values()) == {"1.1.0"}  # input quality changed
    lineage = built.json("lineage", "testDB_20160102_v1.1.0.cat")
    assert lineage["code"]["version"] == "1.1.0"
    old = built.json("lineage", "testDB_20160102_v1.0.0.cat")
    assert old["code"]["version"] == "1.0.0" and old["newest"] is False
    assert old["children"] == ["testDB_20160102_v1.0.0.rot"]  # superseded keep their lineage
    # a revision-only bump gives revision bumps down the chain
    bump_code(built, "L0_to_L1", "1.1.1")
    built.ok("config", "apply", str(built.mission_file))
    built.ok("run")
    assert set(versions(built, "L1").values()) == {"1.1.1"}
    assert set(versions(built, "L2").values()) == {"1.1.1"}


def test_config_apply_dry_run_previews_builds_and_changes_nothing(built: CliHarness) -> None:
    bump_code(built, "L0_to_L1", "2.0.0")
    before_db, before_tree = dump_database(built.db), tree_state(built.mission_dir)
    result = built.json("config", "apply", str(built.mission_file), "--dry-run")
    assert result["dry_run"] is True
    assert result["builds"]["L0_to_L1"]["builds"] == 4
    assert result["builds"]["L0_to_L1"]["first_date"] == "2016-01-01"
    assert result["builds"]["L0_to_L1"]["last_date"] == "2016-01-04"
    assert result["builds"]["L1_to_L2"]["builds"] == 4
    assert result["builds"]["L2_log"]["builds"] == 4
    assert dump_database(built.db) == before_db
    assert tree_state(built.mission_dir) == before_tree


def test_plan_cascade_predicts_exactly_what_run_does(built: CliHarness) -> None:
    drop(built.incoming, "testDB_000_004.raw", "Fifth Part.\n")
    built.ok("ingest")
    predicted = {
        (p["process"], p["date"], p["output"], p["version"], p["reason"])
        for p in built.json("plan", "--chain")
    }
    report = built.json("process")
    made = {
        (r["process"], r["date"], r["output"], r["version"], r["reason"])
        for r in report["process"]["runs"]
    }
    assert predicted == made
    assert ("L1_to_L2", "2016-01-05", "testDB_20160105_v1.0.0.rot", "1.0.0", "new") in made
    assert ("L1_to_L2", "2016-01-04", "testDB_20160104_v1.1.0.rot", "1.1.0", "input_newer") in made


def test_reprocess_date_range(built: CliHarness) -> None:
    before = versions(built, "L2")
    result = built.json(
        "reprocess",
        "--product",
        "L2",
        "--since",
        "2016-01-02",
        "--until",
        "2016-01-03",
        "--bump",
        "revision",
    )
    assert result["queued"] == 2 and result["dry_run"] is False
    assert result["builds"]["L1_to_L2"]["builds"] == 2
    plan = built.json("plan", "--next")
    assert {(p["date"], p["reason"], p["version"]) for p in plan} == {
        ("2016-01-02", "forced", "1.0.1"),
        ("2016-01-03", "forced", "1.0.1"),
    }
    built.ok("run")
    after = versions(built, "L2")
    assert after == {**before, "2016-01-02": "1.0.1", "2016-01-03": "1.0.1"}
    assert built.json("plan") == []
    assert built.json("run")["process"]["counts"] == {"runs": 0}


def test_reprocess_quality_bump_and_filters(built: CliHarness) -> None:
    result = built.json(
        "reprocess",
        "--process",
        "L0_to_L1",
        "--file",
        "testDB_20160101_v1.0.0.cat",
        "--bump",
        "quality",
    )
    assert result["queued"] == 1
    built.ok("run")
    assert versions(built, "L1")["2016-01-01"] == "1.1.0"
    assert versions(built, "L2")["2016-01-01"] == "1.1.0"
    assert versions(built, "L1")["2016-01-02"] == "1.0.0"
    by_instrument = built.json("reprocess", "--instrument", "rot13", "--dry-run")
    assert by_instrument["queued"] == 8  # every newest L1 and L2


def test_reprocess_dry_run_and_refusals(built: CliHarness) -> None:
    before_db, before_tree = dump_database(built.db), tree_state(built.mission_dir)
    result = built.json("reprocess", "--product", "L1", "--dry-run")
    assert result["queued"] == 4 and result["dry_run"] is True
    assert result["builds"]["L2_log"]["builds"] == 4
    assert dump_database(built.db) == before_db
    assert tree_state(built.mission_dir) == before_tree
    assert built.run("reprocess").exit_code == 2
    refused = built.run("reprocess", "--product", "L0_first")
    assert refused.exit_code == 2 and "not made by any process" in refused.stderr
    assert built.run("reprocess", "--product", "nope").exit_code == 2


def test_forced_rebuilds_survive_until_run(built: CliHarness) -> None:
    built.ok("reprocess", "--product", "L1", "--since", "2016-01-04")
    again = built.json("reprocess", "--product", "L1", "--since", "2016-01-04")
    assert again["queued"] == 0 and again["already_queued"] == 1
    assert built.json("status")["pending_builds"] == 1
    built.ok("run")
    assert built.json("status")["pending_builds"] == 0


def test_lineage_up_down_depth(built: CliHarness) -> None:
    l1 = built.json("lineage", "testDB_20160102_v1.0.0.cat")
    assert l1["filename"] == "testDB_20160102_v1.0.0.cat"
    assert l1["parents"] == [
        "testDB_000_000.raw",
        "testDB_000_001.raw",
        "testDB_000_002.raw",
        "testDB_000_003.raw",
        "testDB_001_001.raw",
    ]
    assert l1["children"] == ["testDB_20160102_v1.0.0.rot"]
    assert l1["code"]["version"] == "1.0.0" and l1["code"]["path"].endswith("l0_to_l1.py")
    raw = built.json("lineage", "testDB_000_000.raw", "--down", "--all")
    assert raw["code"] is None and raw["parents"] == []
    assert raw["children"] == [
        "testDB_20160101_v1.0.0.cat",
        "testDB_20160102_v1.0.0.cat",
        "testDB_20160103_v1.0.0.cat",
    ]
    assert sorted(d["filename"] for d in raw["descendants"] if d["depth"] == 2) == [
        "testDB_20160101_v1.0.0.rot",
        "testDB_20160102_v1.0.0.rot",
        "testDB_20160103_v1.0.0.rot",
    ]
    l2_up1 = built.json("lineage", "testDB_20160102_v1.0.0.rot", "--up")
    assert l2_up1["parents"] == ["testDB_20160102_v1.0.0.cat"] and l2_up1["children"] == []
    assert {a["depth"] for a in l2_up1["ancestors"]} == {1}
    l2_up2 = built.json("lineage", "testDB_20160102_v1.0.0.rot", "--up", "--depth", "2")
    assert {a["depth"] for a in l2_up2["ancestors"]} == {1, 2}
    assert len(l2_up2["ancestors"]) == 6
    dot = built.ok("lineage", "testDB_20160102_v1.0.0.cat", "--format", "dot").stdout
    assert dot.startswith("digraph lineage {")
    assert '"testDB_000_001.raw" -> "testDB_20160102_v1.0.0.cat"' in dot
    missing = built.run("lineage", "nope.cat")
    assert missing.exit_code == 2 and "no registered file" in missing.stderr


def test_recall_lists_descendants(built: CliHarness) -> None:
    result = built.json("recall", "testDB_000_001.raw")
    assert result["count"] == 8
    assert result["by_product"]["L1"]["count"] == 4
    assert result["by_product"]["L2"]["count"] == 4
    queued = built.json("recall", "testDB_000_001.raw", "--reprocess")
    assert queued["reprocess"]["queued"] == 8
    built.ok("run")
    assert set(versions(built, "L1").values()) == {"1.0.1"}


def _set_on_disk(cli: CliHarness, filename: str, value: bool) -> None:
    engine = create_engine(database_url(cli.db))
    with engine.begin() as conn:
        conn.execute(update(File).where(File.filename == filename).values(on_disk=value))
    engine.dispose()


def test_explain_reason_codes(built: CliHarness) -> None:
    def reason(*args: str) -> str:
        return str(built.json("explain", *args)["reason"])

    assert reason("testDB_20160102_v1.0.0.cat") == "up_to_date"
    assert built.json("explain", "testDB_000_000.raw")["reason"] == "ingested"
    assert reason("--product", "L1", "--date", "2016-02-01") == "not_expected"
    drop(built.incoming, "testDB_000_004.raw", "Fifth Part.\n")
    built.ok("ingest")
    assert reason("--product", "L1", "--date", "2016-01-05") == "new"
    added = built.json("explain", "testDB_20160104_v1.0.0.cat")
    assert added["reason"] == "input_added" and added["up_to_date"] is False
    assert added["next"]["version"] == "1.1.0"
    assert "testDB_000_004.raw (1.0.0) is new in the window" in added["evidence"][0]
    built.ok("process")
    bump_code(built, "L0_to_L1", "1.2.0")
    built.ok("config", "apply", str(built.mission_file))
    changed = built.json("explain", "testDB_20160101_v1.0.0.cat")
    assert changed["reason"] == "code_changed"
    assert "the code is now 1.2.0" in changed["evidence"][0]
    built.ok("run")
    built.ok("reprocess", "--file", "testDB_20160101_v1.1.0.cat")
    assert reason("testDB_20160101_v1.1.0.cat") == "forced"
    built.ok("run")
    _set_on_disk(built, "testDB_000_001.raw", False)
    removed = built.json("explain", "testDB_20160101_v1.1.1.cat")
    assert removed["reason"] == "input_removed"
    _set_on_disk(built, "testDB_000_001.raw", True)


def test_explain_input_newer_and_missing_input(built: CliHarness) -> None:
    bump_code(built, "L0_to_L1", "1.1.0")
    built.ok("config", "apply", str(built.mission_file))
    built.ok("process", "--jobs", "1")  # builds L1 then L2; explain an L2 made before

    # the L2 file built from L1 1.0.0 is superseded; ask about its key through a fresh change
    def require_second(doc: dict[str, Any]) -> None:
        doc["processes"]["L0_to_L1"]["inputs"][1]["optional"] = False

    edit_mission(built.mission_file, require_second)
    built.ok("config", "apply", str(built.mission_file))
    missing = built.json("explain", "--product", "L1", "--date", "2016-01-03")
    assert missing["reason"] == "missing_input"
    assert "L0_second" in missing["evidence"][0]


def test_explain_failed_and_outside_validity(applied: CliHarness) -> None:
    use_test_code(applied, "L0_to_L1", "fail", when="20160102")
    applied.run("run")
    failed = applied.json("explain", "--product", "L1", "--date", "2016-01-02")
    assert failed["reason"] == "failed" and failed["last_run"]["status"] == "failed"
    assert f"run {failed['last_run']['id']}" in failed["evidence"][0]
    missing = applied.json(
        "files", "--product", "L1", "--missing", "--since", "2016-01-01", "--until", "2016-01-08"
    )
    assert [(m["date"], m["reason"]) for m in missing] == [("2016-01-02", "failed")]

    def narrow(doc: dict[str, Any]) -> None:
        doc["processes"]["L0_to_L1"]["code"]["valid_until"] = "2016-01-01"
        doc["processes"]["L0_to_L1"]["code"]["version"] = "1.0.1"

    edit_mission(applied.mission_file, narrow)
    applied.ok("config", "apply", str(applied.mission_file))
    outside = applied.json("explain", "--product", "L1", "--date", "2016-01-03")
    assert outside["reason"] == "outside_validity"
    assert "not for 2016-01-03" in outside["evidence"][0]


def test_python_api(built: CliHarness) -> None:
    archive = dbproc.open(built.db)
    try:
        lineage = archive.lineage("testDB_20160101_v1.0.0.cat")
        assert isinstance(lineage, Lineage)
        assert lineage.children == ["testDB_20160101_v1.0.0.rot"]
        assert lineage.code is not None and lineage.code.process == "L0_to_L1"
        assert {a.depth for a in lineage.ancestors} == {1}
        files = {f.filename: f for f in archive.files(products=["L2"])}
        rot = files["testDB_20160101_v1.0.0.rot"]
        assert isinstance(rot, FileRecord) and rot.path.exists()
        assert rot.date == dt.date(2016, 1, 1) and rot.made_by is not None
        assert archive.plan() == []
        explained = archive.explain(product="L2", date=dt.date(2016, 1, 1))
        assert explained.up_to_date is True and explained.evidence
        status = archive.status()
        assert status.lock.held is False and status.files["L2"].newest == 4
        run = archive.run_record(1)
        assert run.status == "succeeded" and run.log_text and run.outputs
    finally:
        archive.close()


@pytest.mark.parametrize(
    ("method", "args", "command"),
    [
        ("files", {}, ("files",)),
        ("files", {"all_versions": True}, ("files", "--all-versions")),
        ("runs", {}, ("runs",)),
        ("run_record", {"run_id": 1}, ("runs", "show", "1")),
        (
            "lineage",
            {"filename": "testDB_20160101_v1.0.0.cat"},
            ("lineage", "testDB_20160101_v1.0.0.cat"),
        ),
        ("recall", {"filename": "testDB_000_000.raw"}, ("recall", "testDB_000_000.raw")),
        (
            "explain",
            {"filename": "testDB_20160101_v1.0.0.cat"},
            ("explain", "testDB_20160101_v1.0.0.cat"),
        ),
        ("status", {}, ("status",)),
        ("rejects", {}, ("rejects",)),
        (
            "show",
            {"filename": "testDB_20160101_v1.0.0.rot"},
            ("show", "testDB_20160101_v1.0.0.rot"),
        ),
    ],
)
def test_typed_results_render_as_the_cli_prints_them(
    built: CliHarness, method: str, args: dict[str, Any], command: tuple[str, ...]
) -> None:
    """One rendering: a record's as_dict() is the object `--json` prints."""
    with dbproc.open(built.db) as archive:
        found = getattr(archive, method)(**args)
        rendered = [r.as_dict() for r in found] if isinstance(found, list) else found.as_dict()
        text = found.to_json() if not isinstance(found, list) else None
    printed = built.json(*command)
    if method == "status":  # the heartbeat ages between the two reads
        for p in (*rendered["passes"], *printed["passes"]):
            p.pop("heartbeat_age_seconds")
    assert rendered == printed
    if text is not None and method != "status":
        assert json.loads(text) == printed
