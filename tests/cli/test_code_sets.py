"""Several codes per process (contract §12): each output date is built by the one code
whose valid_from..valid_until contains it; overlapping ranges are refused."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from tests.helpers import CliHarness, by_name, dump_database, edit_mission

ERA2 = """import sys
*inputs, output = sys.argv[1:]
with open(output, "wb") as out:
    out.write(b"era2\\n")
    for name in inputs:
        with open(name, "rb") as fh:
            out.write(fh.read())
"""


def _two_codes(
    cli: CliHarness, *, first_until: str = "2016-01-02", second_from: str = "2016-01-03"
) -> Path:
    (cli.mission_dir / "codes" / "scripts" / "l0_to_l1_era2.py").write_text(ERA2)

    def mutate(doc: dict[str, Any]) -> None:
        first = doc["processes"]["L0_to_L1"]["code"]
        first["valid_until"] = first_until
        second = {
            "path": "scripts/l0_to_l1_era2.py",
            "version": "1.1.0",
            "valid_from": second_from,
            "valid_until": "2099-12-31",
        }
        doc["processes"]["L0_to_L1"]["code"] = [second, first]  # order does not matter

    return edit_mission(cli.mission_file, mutate, name="two-codes.toml")


def test_each_date_is_built_by_the_code_whose_range_contains_it(cli: CliHarness) -> None:
    mission = _two_codes(cli)
    cli.ok("config", "apply", str(mission))
    cli.ok("run")
    files = by_name(cli.json("files", "--product", "L1"))
    assert sorted(files) == [f"testDB_2016010{d}_v1.0.0.cat" for d in range(1, 5)]
    for name, row in files.items():
        day = int(name[14])
        lineage = cli.json("lineage", name)
        content = Path(row["path"]).read_text()
        if day <= 2:
            assert lineage["code"]["path"].endswith("scripts/l0_to_l1.py"), name
            assert lineage["code"]["version"] == "1.0.0"
            assert not content.startswith("era2")
        else:
            assert lineage["code"]["path"].endswith("scripts/l0_to_l1_era2.py"), name
            assert lineage["code"]["version"] == "1.1.0"
            assert content.startswith("era2\n")
    assert cli.json("plan") == []
    explained = cli.json("explain", "--product", "L1", "--date", "2016-01-04")
    item = explained["decisions"][0] if "decisions" in explained else explained
    assert item["code"]["version"] == "1.1.0"
    assert "2016-01-04" in item["code"]["why"] and "1.0.0" in item["code"]["why"]
    early = cli.json("explain", "testDB_20160101_v1.0.0.cat")
    assert early["code"]["version"] == "1.0.0"


def test_export_writes_the_array_back_and_reapplies_as_a_no_op(
    cli: CliHarness, tmp_path: Path
) -> None:
    cli.ok("config", "apply", str(_two_codes(cli)))
    text = cli.ok("config", "export").stdout
    codes = tomllib.loads(text)["processes"]["L0_to_L1"]["code"]
    assert isinstance(codes, list)
    assert [(c["version"], c["valid_from"].isoformat()) for c in codes] == [
        ("1.0.0", "2010-01-01"),
        ("1.1.0", "2016-01-03"),
    ]
    assert "[[processes.L0_to_L1.code]]" in text
    exported = tmp_path / "exported.toml"
    exported.write_text(text)
    before = dump_database(cli.db)
    assert cli.json("config", "apply", str(exported))["changes"] == []
    assert dump_database(cli.db) == before


def test_back_to_one_code_retires_the_other(cli: CliHarness) -> None:
    cli.ok("config", "apply", str(_two_codes(cli)))
    cli.ok("run")
    cli.ok("config", "apply", str(cli.mission_file))  # the single-table original again
    plan = {p["date"]: p for p in cli.json("plan") if p["process"] == "L0_to_L1"}
    assert sorted(plan) == ["2016-01-03", "2016-01-04"]
    assert all(p["reason"] == "code_changed" for p in plan.values())
    code = tomllib.loads(cli.ok("config", "export").stdout)["processes"]["L0_to_L1"]["code"]
    assert isinstance(code, dict) and code["version"] == "1.0.0"


def test_overlapping_ranges_are_refused_naming_both_codes(cli: CliHarness) -> None:
    mission = _two_codes(cli, first_until="2016-01-03", second_from="2016-01-03")
    before = dump_database(cli.db)
    result = cli.run("config", "apply", str(mission))
    assert result.exit_code == 2
    message = result.stdout + result.stderr
    assert "scripts/l0_to_l1.py" in message and "scripts/l0_to_l1_era2.py" in message
    assert "1.0.0" in message and "1.1.0" in message and "overlap" in message
    assert dump_database(cli.db) == before


def test_same_version_twice_is_refused(cli: CliHarness) -> None:
    mission = _two_codes(cli)

    def mutate(doc: dict[str, Any]) -> None:
        for code in doc["processes"]["L0_to_L1"]["code"]:
            code["version"] = "1.0.0"

    edit_mission(mission, mutate)
    result = cli.run("config", "apply", str(mission))
    assert result.exit_code == 2
    assert "version 1.0.0" in result.stdout + result.stderr
