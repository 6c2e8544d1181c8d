"""Releases and retention (interface.md §17) on the example mission, both backends."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
from pathlib import Path

import pytest

from tests.helpers import CliHarness, drop, use_test_code

PARTS = {4: "Fifth Part.\n", 5: "Sixth Part.\n", 6: "Seventh Part.\n"}


def _add_raw(cli: CliHarness, n: int, code: int = 0) -> None:
    drop(cli.incoming, f"testDB_000_{n:03d}.raw", PARTS[n])
    cli.ok("run", code=code)


def _newest(cli: CliHarness, product: str) -> set[str]:
    return {f["filename"] for f in cli.json("files", "--product", product)}


def test_release_create_show_list_and_immutability(built: CliHarness) -> None:
    made = built.json("release", "create", "v1", "--note", "first")
    newest = {f["filename"] for f in built.json("files")}
    assert made["files"] == len(newest)
    shown = built.json("release", "show", "v1")
    assert {r["filename"] for r in shown} == newest
    assert set(shown[0]) == {"filename", "product", "date", "version", "sha256", "path"}
    for row in shown:
        assert hashlib.sha256(Path(row["path"]).read_bytes()).hexdigest() == row["sha256"]
    again = built.run("release", "create", "v1")
    assert again.exit_code == 2 and "immutable" in again.stderr
    assert [r["name"] for r in built.json("release", "list")] == ["v1"]
    rows = list(
        csv.DictReader(io.StringIO(built.ok("release", "show", "v1", "--format", "csv").stdout))
    )
    assert {r["filename"] for r in rows} == newest
    only_l2 = built.json("release", "create", "l2-only", "--product", "L2")
    assert only_l2["files"] == len(_newest(built, "L2"))
    missing = built.run("release", "show", "nope")
    assert missing.exit_code == 2 and "v1" in missing.stderr


def test_manifest_verifies_with_sha256sum(built: CliHarness) -> None:
    made = built.json("release", "create", "v1")
    manifest = Path(made["manifest"])
    assert manifest.read_text() == built.ok("release", "show", "v1", "--format", "manifest").stdout
    ok = subprocess.run(
        ["sha256sum", "-c", str(manifest)],
        cwd=made["root"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    first = manifest.read_text().splitlines()[0].split("  ", 1)[1]
    (Path(made["root"]) / first).write_text("tampered\n")
    bad = subprocess.run(
        ["sha256sum", "-c", str(manifest)],
        cwd=made["root"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0 and "FAILED" in bad.stdout


def test_release_diff(built: CliHarness) -> None:
    built.ok("release", "create", "v1")
    _add_raw(built, 4)
    built.ok("release", "create", "v2")
    diff = built.json("release", "diff", "v1", "v2")
    assert diff["added"] == [
        "testDB_000_004.raw",
        "testDB_20160105_v1.0.0.cat",
        "testDB_20160105_v1.0.0.rot",
    ]
    assert diff["removed"] == []
    assert diff["changed"] == [
        {"from": f"testDB_2016010{d}_v1.0.0.{ext}", "to": f"testDB_2016010{d}_v1.1.0.{ext}"}
        for d in (3, 4)
        for ext in ("cat", "rot")
    ]
    text = built.ok("release", "diff", "v1", "v2").stdout
    assert "3 added, 0 removed, 4 changed" in text


@pytest.fixture
def aged(built: CliHarness) -> CliHarness:
    """Four passes, two releases and a broken L2 code: see the purge test."""
    built.ok("release", "create", "v1")  # every newest file of the first pass
    _add_raw(built, 4)
    _add_raw(built, 5)
    built.ok("release", "create", "v2", "--product", "L2")
    use_test_code(built, "L1_to_L2", "fail")  # L2 stays made from superseded L1 versions
    _add_raw(built, 6, code=3)
    return built


def test_purge_deletes_exactly_the_expected_files(aged: CliHarness) -> None:
    before = {f["filename"]: f for f in aged.json("files", "--all-versions")}
    dry = aged.json("purge", "--keep", "1")
    expected = [
        "testDB_20160104_v1.1.0.cat",
        "testDB_20160104_v1.1.0.rot",
        "testDB_20160105_v1.0.0.cat",
        "testDB_20160105_v1.0.0.rot",
    ]
    assert sorted(dry["delete"]) == expected
    assert dry["applied"] is False
    assert sorted(dry["kept"]["parent_of_newest"]) == [
        "testDB_20160105_v1.1.0.cat",
        "testDB_20160106_v1.0.0.cat",
    ]
    assert "testDB_20160104_v1.0.0.cat" in dry["kept"]["in_release"]
    assert all(Path(before[n]["path"]).exists() for n in expected)  # a dry run deletes nothing
    assert sorted(aged.json("purge")["delete"]) == ["testDB_20160105_v1.0.0.cat"]  # keep 2
    done = aged.json("purge", "--keep", "1", "--apply")
    assert sorted(done["delete"]) == expected and done["problems"] == []
    after = {f["filename"]: f for f in aged.json("files", "--all-versions")}
    assert set(after) == set(before)  # records stay
    gone = {n for n, f in before.items() if not Path(f["path"]).exists()}
    assert gone == set(expected)
    assert {n for n, f in after.items() if f["state"] == "purged"} == set(expected)
    assert "no (purged)" in aged.ok("files", "--all-versions").stdout
    check = aged.json("check")
    assert check["problems"] == [], check
    lineage = aged.json("lineage", "testDB_20160104_v1.1.0.rot")
    assert lineage["parents"] == ["testDB_20160104_v1.1.0.cat"]
    assert aged.json("purge", "--keep", "1")["delete"] == []
