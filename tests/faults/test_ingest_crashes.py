"""SIGKILL an ingest pass at each step of the ingest order; the next pass must repair it.

For every ingest crash point and its 1st, 2nd and 3rd hit, a real ``dbproc ingest``
subprocess kills itself there (``DBPROC_CRASH_AT``); then a normal pass runs. Afterwards
every incoming file is registered and placed (or still in incoming), no record lacks its
file, no product folder holds a file without a record, every refused file is in
``errors/rejected`` with exactly one record and its ``.reason``, and a third pass changes
nothing.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dbproc.examples import example_dir
from dbproc.faults import CRASH_POINTS, ENV_VAR
from tests.helpers import CliHarness, by_name, drop, dump_database, tree_state

INGEST_POINTS = [p for p in CRASH_POINTS if p.startswith(("ingest.", "reject."))]
EXAMPLE = example_dir() / "incoming"
JUNK = ["zz_junk_1.bin", "zz_junk_2.bin", "zz_junk_3.bin"]  # claimed by nothing: rejected
LINKED = "testDB_000_004.raw"  # a symlink in incoming to its file in the product folder
WAITING = [".testDB_000_005.raw", "testDB_000_006.raw.part"]  # never touched


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def deliver(cli: CliHarness) -> dict[str, str]:
    """Fill incoming; return name -> sha256 of every file that must end up registered."""
    expected = {p.name: sha256(p) for p in EXAMPLE.iterdir()}
    target = drop(cli.root / "L0", LINKED, "Fifth Part.\n")
    os.symlink(target, cli.incoming / LINKED)
    expected[LINKED] = sha256(target)
    for name in JUNK:
        drop(cli.incoming, name, f"{name} is not a data file\n")
    for name in WAITING:
        drop(cli.incoming, name, "still arriving\n")
    return expected


def crash(cli: CliHarness, point: str, hit: int) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dbproc", "--db", cli.db, "ingest"],
        env={**os.environ, ENV_VAR: f"{point}:{hit}"},
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, (
        f"the pass did not die at {point}:{hit} (exit {result.returncode})\n"
        f"{result.stderr.decode(errors='replace')}"
    )


def product_files(cli: CliHarness) -> set[Path]:
    """Every file under the data root outside incoming, errors and staging."""
    skip = {cli.incoming, cli.errors, cli.root / ".dbproc-staging"}
    found = set()
    for dirpath, dirs, files in os.walk(cli.root):
        dirs[:] = [d for d in dirs if Path(dirpath) / d not in skip]
        found.update(Path(dirpath) / f for f in files)
    return found


def check_invariants(cli: CliHarness, expected: dict[str, str]) -> None:
    files = by_name(cli.json("files", "--all-versions"))
    # every delivered file is registered and placed (or, at worst, still in incoming)
    for name, digest in expected.items():
        if name in files:
            path = Path(files[name]["path"])
            assert path.is_file() and sha256(path) == digest == files[name]["sha256"], name
            assert path.parent == cli.root / "L0"
            assert not (cli.incoming / name).exists(), f"{name} registered but still incoming"
        else:
            assert (cli.incoming / name).exists(), f"{name} lost"
    # no record without its file, no file in a product folder without a record
    for row in files.values():
        assert Path(row["path"]).is_file(), f"record of {row['filename']} without its file"
        assert sha256(Path(row["path"])) == row["sha256"]
    assert product_files(cli) == {Path(r["path"]) for r in files.values()}
    # refused files: in rejected, with exactly one pending record and a reason each
    rejected = cli.errors / "rejected"
    listed = cli.json("rejects")
    stored = sorted(Path(r["stored"]).name for r in listed)
    assert stored == JUNK
    for name in JUNK:
        assert (rejected / name).read_text() == f"{name} is not a data file\n"
        assert (rejected / f"{name}.reason").is_file()
    assert sorted(os.listdir(rejected)) == sorted([*JUNK, *(f"{n}.reason" for n in JUNK)])
    # files still arriving are untouched
    for name in WAITING:
        assert (cli.incoming / name).read_text() == "still arriving\n"
    assert not any((cli.root / ".dbproc-staging").rglob("*"))


@pytest.mark.parametrize("hit", [1, 2, 3])
@pytest.mark.parametrize("point", INGEST_POINTS)
def test_sigkill_during_ingest_then_a_pass_repairs(
    applied: CliHarness, point: str, hit: int
) -> None:
    expected = deliver(applied)
    crash(applied, point, hit)
    after = applied.run("--json", "ingest")
    assert after.exit_code in (0, 3), after.output
    check_invariants(applied, expected)
    reasons = {r["filename"]: r["reason"] for r in applied.json("rejects")}
    if point == "reject.moved":  # moved aside, then killed before the record: adopted
        assert reasons.pop(JUNK[hit - 1]) == "unrecorded"
    assert set(reasons.values()) == {"no_product"}
    # nothing waits in incoming but the files still arriving: the repair pass took all
    assert sorted(os.listdir(applied.incoming)) == sorted(WAITING)
    assert sorted(by_name(applied.json("files"))) == sorted(expected)
    # a third pass changes nothing
    db_before = dump_database(applied.db)
    tree_before = tree_state(applied.mission_dir)
    third = applied.json("ingest")
    assert third["ingest"]["counts"] | {"skipped": 0} == {
        "ingested": 0,
        "absorbed": 0,
        "rejected": 0,
        "skipped": 0,
        "errors": 0,
    }
    db_after = dump_database(applied.db)
    for table in ("file", "reject", "pending", "file_link"):
        assert db_after.get(table) == db_before.get(table), table
    assert tree_state(applied.mission_dir) == tree_before


def test_crash_points_of_the_ingest_order_are_all_covered() -> None:
    assert INGEST_POINTS == [
        "ingest.hashed",
        "ingest.linked",
        "ingest.committed",
        "ingest.unlinked",
        "reject.moved",
    ]
