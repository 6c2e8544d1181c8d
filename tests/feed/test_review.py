"""The review gate (§13) on both backends: held back, fail keeps the old, pass rebuilds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import CliHarness, by_name, edit_mission

DAY1 = "2016-01-01"


@pytest.fixture
def gated(cli: CliHarness) -> CliHarness:
    def mutate(doc: dict[str, Any]) -> None:
        doc["products"]["L1"]["review"] = True

    edit_mission(cli.mission_file, mutate)
    cli.ok("config", "apply", str(cli.mission_file))
    return cli


def events(cli: CliHarness, *args: str) -> list[dict[str, Any]]:
    """``events --json`` (JSON Lines)."""
    out = cli.ok("events", *args, "--json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def l1_files(cli: CliHarness) -> dict[str, dict[str, Any]]:
    return by_name(cli.json("files", "--product", "L1", "--all-versions"))


def l2_inputs(cli: CliHarness) -> dict[str, list[str]]:
    """L2 filename -> its L1 parents."""
    out = {}
    for f in cli.json("files", "--product", "L2", "--all-versions"):
        out[f["filename"]] = cli.json("lineage", f["filename"])["parents"]
    return out


def rebuild_l1(cli: CliHarness) -> str:
    cli.ok("reprocess", "--product", "L1", "--since", DAY1, "--until", DAY1)
    cli.ok("run")
    newest = [f for f in l1_files(cli).values() if f["date"] == DAY1 and f["newest"]]
    return str(newest[0]["filename"])


def test_review_holds_back_consumers_until_a_verdict(gated: CliHarness) -> None:
    gated.ok("run")
    l1 = l1_files(gated)
    assert l1 and {f["review"] for f in l1.values()} == {"pending"}
    assert gated.json("files", "--product", "L2") == []
    listed = gated.json("review")
    assert {i["filename"] for i in listed} == set(l1)
    assert gated.json("status")["pending_reviews"] == len(l1)
    assert {i["review"] for i in listed} == {"pending"}
    assert by_name(gated.json("files", "--product", "L0_first"))  # no gate: review null
    assert {f["review"] for f in gated.json("files", "--product", "L0_first")} == {None}

    first = next(n for n, f in l1.items() if f["date"] == DAY1)
    explained = gated.json("explain", "--product", "L2", "--date", DAY1)
    assert explained["up_to_date"] is False or explained.get("review_hold")
    gated.json("review", "pass", first, "--by", "alice", "--comment", "fine")
    assert gated.json("review") and first not in {i["filename"] for i in gated.json("review")}
    gated.ok("run")
    l2 = l2_inputs(gated)
    assert list(l2.values()) == [[first]]


def test_fail_keeps_the_previous_pass_and_pass_rebuilds(gated: CliHarness) -> None:
    gated.ok("run")
    v1 = next(n for n, f in l1_files(gated).items() if f["date"] == DAY1)
    gated.ok("review", "pass", v1, "--by", "alice")
    gated.ok("run")
    assert list(l2_inputs(gated).values()) == [[v1]]

    v2 = rebuild_l1(gated)
    assert v2 != v1 and l1_files(gated)[v2]["review"] == "pending"
    assert list(l2_inputs(gated).values()) == [[v1]]  # held back: L2 still on v1
    gated.ok("review", "fail", v2, "--by", "bob", "--comment", "stripes")
    gated.ok("run")
    assert list(l2_inputs(gated).values()) == [[v1]]  # fail: L2 stays on the passed v1
    explained = gated.json("explain", "--product", "L2", "--date", DAY1)
    assert explained["up_to_date"] is True
    assert any(v2 in line and "fail" in line for line in explained["evidence"])

    v3 = rebuild_l1(gated)
    assert list(l2_inputs(gated).values()) == [[v1]]
    gated.ok("review", "semipass", v3, "--by", "carol")
    gated.ok("run")
    parents = sorted(l2_inputs(gated).values())
    assert [v3] in parents and [v1] in parents  # the old L2 stays, a new one uses v3

    gated.ok("review", "pass", v2, "--by", "bob", "--comment", "on second look")
    history = gated.json("review", "history", v2)
    assert [(v["verdict"], v["by"], v["comment"]) for v in history["verdicts"]] == [
        ("fail", "bob", "stripes"),
        ("pass", "bob", "on second look"),
    ]
    assert all(v["at"].endswith("Z") for v in history["verdicts"])
    assert history["review"] == "pass"
    listed = by_name(gated.json("review", "--state", "all"))
    assert listed[v1]["verdicts"][0]["by"] == "alice"
    verdicts = events(gated, "--kind", "review.verdict")
    assert [e["filename"] for e in verdicts] == [v1, v2, v3, v2]


def test_a_verdict_on_an_ungated_file_is_refused(gated: CliHarness) -> None:
    gated.ok("run")
    l0 = gated.json("files", "--product", "L0_first")[0]["filename"]
    result = gated.ok("review", "pass", l0, code=2)
    assert "no review gate" in result.stderr
    assert gated.ok("review", "pass", "nosuch.cat", code=2)
    assert events(gated, "--kind", "review.verdict") == []


def test_migration_keeps_an_archive_with_files(applied: CliHarness) -> None:
    """0003 up and down on a database holding files, runs and events."""
    from dbproc.db import schema
    from dbproc.db.engine import create_db_engine

    applied.ok("run")
    before = {f["filename"] for f in applied.json("files", "--all-versions")}
    engine = create_db_engine(applied.db)
    schema.downgrade(engine, "0001")
    schema.upgrade(engine)
    engine.dispose()
    after = applied.json("files", "--all-versions")
    assert {f["filename"] for f in after} == before
    assert {f["review"] for f in after} == {None}
    assert applied.json("review", "--state", "all") == []
