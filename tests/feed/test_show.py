"""``dbproc show FILENAME --json``: one file as one document."""

from __future__ import annotations

from typing import Any

from tests.helpers import CliHarness, edit_mission


def test_show_is_the_whole_story_of_a_file(cli: CliHarness) -> None:
    def mutate(doc: dict[str, Any]) -> None:
        doc["products"]["L1"]["review"] = True

    edit_mission(cli.mission_file, mutate)
    cli.ok("config", "apply", str(cli.mission_file))
    cli.ok("run")
    l1 = next(f for f in cli.json("files", "--product", "L1") if f["date"] == "2016-01-02")
    cli.ok("review", "pass", l1["filename"], "--by", "dana", "--comment", "ok")
    cli.ok("run")
    doc = cli.json("show", l1["filename"])
    for key in (
        "filename",
        "product",
        "date",
        "version",
        "path",
        "newest",
        "sha256",
        "metadata",
        "review",
        "verdicts",
        "made_by_run",
        "used_by",
        "parents",
        "children",
        "events",
    ):
        assert key in doc, key
    assert doc["filename"] == l1["filename"] and doc["review"] == "pass"
    assert doc["verdicts"][0]["by"] == "dana" and doc["verdicts"][0]["comment"] == "ok"
    assert doc["made_by_run"]["id"] == l1["run_id"]
    assert doc["made_by_run"]["status"] == "succeeded"
    assert doc["parents"] and all(p.startswith("testDB_00") for p in doc["parents"])
    assert len(doc["children"]) == 1
    child = doc["children"][0]
    assert [r["output"] for r in doc["used_by"]] == [child]
    assert [e["kind"] for e in doc["events"]] == ["file.built", "review.verdict"]

    raw = doc["parents"][0]
    raw_doc = cli.json("show", raw)
    assert raw_doc["made_by_run"] is None and raw_doc["review"] is None
    assert [e["kind"] for e in raw_doc["events"]] == ["file.ingested"]
    assert any(r["process"] == "L0_to_L1" for r in raw_doc["used_by"])
    text = cli.ok("show", l1["filename"]).stdout
    assert l1["filename"] in text and "review" in text
    assert "nosuch" in cli.ok("show", "nosuch.cat", code=2).stderr
