"""``files --missing --by hour`` for a product with ``{H}`` and ``cadence = "1h"``."""

from __future__ import annotations

from typing import Any

from tests.helpers import CliHarness, drop, edit_mission


def _hourly(doc: dict[str, Any]) -> None:
    doc["products"]["HK"] = {
        "level": 0,
        "dir": "HK",
        "format": "hk_{Y}{m}{d}{H}.dat",
        "cadence": "1h",
    }


def test_missing_hours(cli: CliHarness) -> None:
    edit_mission(cli.mission_file, _hourly)
    cli.ok("config", "apply", str(cli.mission_file))
    for hour in range(24):
        if hour not in (3, 4, 17):
            drop(cli.incoming, f"hk_20160101{hour:02d}.dat", f"{hour}\n")
    drop(cli.incoming, "hk_2016010200.dat", "0\n")
    cli.ok("ingest")
    rows = cli.json(
        "files",
        "--product",
        "HK",
        "--missing",
        "--by",
        "hour",
        "--since",
        "2016-01-01",
        "--until",
        "2016-01-01",
    )
    assert [r["start"] for r in rows] == [f"2016-01-01T{h:02d}:00:00Z" for h in (3, 4, 17)]
    both = cli.json("files", "--product", "HK", "--missing", "--by", "hour")
    assert len(both) == 3 + 23  # the second day has only its first hour
    assert cli.json("files", "--product", "HK", "--missing") == []  # every day has a file
    no_cadence = cli.run("files", "--product", "L0_first", "--missing", "--by", "hour")
    assert no_cadence.exit_code == 2 and "cadence" in no_cadence.stderr
    assert 'cadence = "1h"' in cli.ok("config", "export").stdout


def test_a_bad_cadence_is_refused(cli: CliHarness) -> None:
    def bad(doc: dict[str, Any]) -> None:
        _hourly(doc)
        doc["products"]["HK"]["cadence"] = "7h"

    edit_mission(cli.mission_file, bad)
    result = cli.run("config", "apply", str(cli.mission_file))
    assert result.exit_code == 2 and "products.HK" in result.stderr and "cadence" in result.stderr
