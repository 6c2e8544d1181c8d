"""``config apply`` / ``config export`` on both backends: refusals, idempotence, code bumps."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.helpers import CliHarness, dump_database

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


def _cycle(doc: dict[str, Any]) -> None:
    doc["products"]["A"] = {"level": 3, "dir": "A", "format": "a_{DATE}_v{VERSION}.a"}
    doc["products"]["B"] = {"level": 3, "dir": "B", "format": "b_{DATE}_v{VERSION}.b"}
    code = {"path": "scripts/l1_to_l2.py", "version": "1.0.0"}
    doc["processes"]["A_to_B"] = {
        "output": "B",
        "timebase": "DAILY",
        "inputs": [{"product": "A"}],
        "code": code,
    }
    doc["processes"]["B_to_A"] = {
        "output": "A",
        "timebase": "DAILY",
        "inputs": [{"product": "B"}],
        "code": code,
    }


def _two_problems(doc: dict[str, Any]) -> None:
    doc["products"]["L1"]["colour"] = "red"
    doc["processes"]["L0_to_L1"]["code"]["version"] = "1.0"


REFUSALS: list[tuple[str, Mutation, list[str]]] = [
    ("unknown key", _set("products.L1.colour", "red"), ["[products.L1] colour", "unknown key"]),
    ("missing key", _delete("products.L1.format"), ["[products.L1] format", "missing key"]),
    ("bad type", _set("products.L1.level", "one"), ["[products.L1] level", "number"]),
    (
        "bad version",
        _set("processes.L0_to_L1.code.version", "1.0"),
        ["[processes.L0_to_L1.code] version", "x.y.z"],
    ),
    (
        "bad date",
        _set("processes.L0_to_L1.code.valid_from", "2016-13-01"),
        ["[processes.L0_to_L1.code] valid_from", "YYYY-MM-DD"],
    ),
    (
        "unknown input",
        _set("processes.L1_to_L2.inputs", [{"product": "L9"}]),
        ["[processes.L1_to_L2] inputs[0].product", "L9"],
    ),
    (
        "unknown output",
        _set("processes.L1_to_L2.output", "L9"),
        ["[processes.L1_to_L2] output", "L9"],
    ),
    (
        "output without VERSION",
        _set("products.L2.format", "testDB_{Y}{m}{d}.rot"),
        ["[products.L2] format", "{VERSION}"],
    ),
    (
        "output without date",
        _set("products.L2.format", "testDB_{Y}_v{VERSION}.rot"),
        ["[products.L2] format", "date"],
    ),
    (
        "missing code",
        _set("processes.L1_to_L2.code.path", "scripts/nope.py"),
        ["[processes.L1_to_L2.code] path", "nope.py"],
    ),
    (
        "missing inspector",
        _set("products.L0_first.inspector", "inspectors/nope.py"),
        ["[products.L0_first] inspector", "nope.py"],
    ),
    (
        "missing inspector function",
        _set("products.L0_first.inspector", "inspectors/l0.py:nope"),
        ["[products.L0_first] inspector", "'nope'"],
    ),
    ("cycle", _cycle, ["cycle"]),
    (
        "bad timebase",
        _set("processes.L1_to_L2.timebase", "WEEKLY"),
        ["[processes.L1_to_L2] timebase", "DAILY, FILE or RUN"],
    ),
    (
        "RUN with output",
        _set("processes.L2_log.output", "L1"),
        ["[processes.L2_log] output", "RUN process makes no file"],
    ),
    (
        "non-RUN without output",
        _delete("processes.L1_to_L2.output"),
        ["[processes.L1_to_L2] output", "needs an output product"],
    ),
    (
        "code outside codes folder",
        _set("processes.L1_to_L2.code.path", "../../outside.py"),
        ["[processes.L1_to_L2.code] path", "outside the codes folder"],
    ),
    (
        "several at once",
        _two_problems,
        ["colour", "[processes.L0_to_L1.code] version", "2 problem(s)"],
    ),
]


def _write_variant(mission_file: Path, mutate: Mutation) -> Path:
    doc = tomllib.loads(mission_file.read_text())
    mutate(doc)
    bad = mission_file.with_name("bad.toml")
    bad.write_text(tomli_w.dumps(doc))
    return bad


@pytest.mark.parametrize(("label", "mutate", "expected"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusal_leaves_database_unchanged(
    applied: CliHarness, label: str, mutate: Mutation, expected: list[str]
) -> None:
    before = dump_database(applied.db)
    bad = _write_variant(applied.mission_file, mutate)
    result = applied.run("config", "apply", str(bad))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ")
    for text in expected:
        assert text in result.stderr, f"{text!r} not in {result.stderr}"
    assert "Traceback" not in result.output
    assert dump_database(applied.db) == before


def test_refusal_on_empty_database_creates_nothing(cli: CliHarness) -> None:
    bad = _write_variant(cli.mission_file, _set("products.L1.colour", "red"))
    result = cli.run("config", "apply", str(bad))
    assert result.exit_code == 2
    assert dump_database(cli.db) == {}


def test_example_applies_and_is_idempotent(cli: CliHarness) -> None:
    first = cli.json("config", "apply", str(cli.mission_file))
    assert first["created_schema"] is True
    added = {(c["kind"], c["name"]) for c in first["changes"]}
    assert ("product", "L0_first") in added and ("process", "L2_log") in added
    assert (cli.root / "errors").is_dir() and cli.incoming.is_dir()
    before = dump_database(cli.db)
    second = cli.json("config", "apply", str(cli.mission_file))
    assert second["changes"] == [] and second["created_schema"] is False
    assert dump_database(cli.db) == before


def test_export_then_apply_is_a_no_op(applied: CliHarness, tmp_path: Path) -> None:
    exported = tmp_path / "exported.toml"
    exported.write_text(applied.ok("config", "export").stdout)
    before = dump_database(applied.db)
    result = applied.json("config", "apply", str(exported))
    assert result["changes"] == []
    assert dump_database(applied.db) == before
    # and the export of the export is the same text
    assert applied.ok("config", "export").stdout == exported.read_text()


def test_new_code_version_keeps_both_code_rows(applied: CliHarness) -> None:
    bumped = _write_variant(applied.mission_file, _set("processes.L0_to_L1.code.version", "1.1.0"))
    result = applied.json("config", "apply", str(bumped))
    assert {
        "action": "new-code-version",
        "kind": "code",
        "name": "L0_to_L1",
        "details": ["1.0.0 -> 1.1.0", "1.0.0 kept for provenance"],
    } in result["changes"]
    rows = dump_database(applied.db)["code"]
    versions = sorted((r[2], r[3], r[4]) for r in rows if r[1] == "1")
    assert versions == [("1", "0", "0"), ("1", "1", "0")]
    exported = applied.ok("config", "export").stdout
    assert 'version = "1.1.0"' in exported


def test_edit_updates_in_place(applied: CliHarness) -> None:
    edited = _write_variant(applied.mission_file, _set("products.L1.description", "new words"))
    result = applied.json("config", "apply", str(edited))
    assert result["changes"] == [
        {
            "action": "update",
            "kind": "product",
            "name": "L1",
            "details": [
                "description: 'Daily concatenation of the raw parts within two days' -> 'new words'"
            ],
        }
    ]
    assert result["replan"] == []


def test_dry_run_changes_nothing(applied: CliHarness) -> None:
    before = dump_database(applied.db)
    bumped = _write_variant(applied.mission_file, _set("processes.L0_to_L1.code.version", "2.0.0"))
    result = applied.json("config", "apply", str(bumped), "--dry-run")
    assert result["dry_run"] is True and result["changes"]
    assert dump_database(applied.db) == before


def test_missing_mission_file(cli: CliHarness) -> None:
    result = cli.run("config", "apply", str(cli.mission_dir / "nope.toml"))
    assert result.exit_code == 2
    assert "nope.toml does not exist" in result.stderr


def test_invalid_toml(cli: CliHarness) -> None:
    bad = cli.mission_dir / "broken.toml"
    bad.write_text("[mission\nname=")
    result = cli.run("config", "apply", str(bad))
    assert result.exit_code == 2 and "not valid TOML" in result.stderr
