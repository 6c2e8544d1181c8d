"""``dbproc check [--repair]`` finds every planted inconsistency; ``--repair`` fixes the
safe ones and reports the rest (exit 3 while something needs a person)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db.models import File, Reject, Run, RunStatus
from tests.faults.invariants import assert_consistent, dump_without_passes, engine_of
from tests.faults.procs import spawn, wait_until
from tests.helpers import CliHarness, drop, dump_database, tree_state, use_test_code


def _kinds(report: dict[str, Any], *, open_only: bool = False) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for p in report["problems"]:
        if open_only and p["repaired"]:
            continue
        out.setdefault(p["kind"], set()).add(Path(p["path"]).name)
    return out


def _file(cli: CliHarness, name: str) -> File:
    with engine_of(cli) as engine, Session(engine) as session:
        row = session.scalars(select(File).where(File.filename == name)).one()
        session.expunge(row)
        return row


class Planted:
    """Every kind of inconsistency ``check`` knows, planted in a built archive."""

    def __init__(self, cli: CliHarness) -> None:
        root = cli.root
        self.cli = cli
        # a reject whose file is gone (its pass first: a pass clears what is planted below)
        drop(cli.incoming, "zz_junk.bin", "junk\n")
        assert cli.run("ingest").exit_code == 3
        (cli.errors / "rejected" / "zz_junk.bin").unlink()
        # a file in its product folder without a record, that its inspector claims
        self.orphan = drop(root / "L0", "testDB_000_009.raw", "Tenth Part.\n")
        # ... one in the wrong folder for its date, and one no inspector claims
        self.misplaced = drop(root / "L1" / "2015", "testDB_20160101_v1.5.0.cat", "x\n")
        self.unclaimed = drop(root / "L0", "testDB_000_abc.raw", "not a day\n")
        # a record whose file is gone, and one whose bytes changed
        self.missing = root / "L2" / "2016" / "01" / "testDB_20160103_v1.0.0.rot"
        self.missing.unlink()
        self.changed = root / "L1" / "2016" / "testDB_20160102_v1.0.0.cat"
        self.changed_bytes = self.changed.read_bytes()
        self.changed.write_bytes(self.changed_bytes.replace(b"Part", b"Fart"))
        # a record marked missing whose file is back
        self.back = "testDB_20160104_v1.0.0.rot"
        with engine_of(cli) as engine, engine.begin() as conn:
            conn.execute(update(File).where(File.filename == self.back).values(on_disk=False))
        # a file in rejected/ without a record
        self.unrecorded = drop(cli.errors / "rejected", "zz_lost.bin", "lost\n")
        # staging a dead pass left
        self.staging = root / ".dbproc-staging" / "run-98" / "run-abc"
        self.staging.mkdir(parents=True)
        (self.staging / "half-written.cat").write_text("half")
        # a run a dead pass left running
        with engine_of(cli) as engine, Session(engine) as session:
            model = session.scalars(select(Run).limit(1)).one()
            run = Run(
                process_id=model.process_id,
                code_id=model.code_id,
                date=model.date,
                slot="",
                reason="new",
                build_key="x" * 64,
                inputs=[],
                argv=[],
                status=RunStatus.RUNNING,
                queued_at=utcnow(),
                started_at=utcnow(),
                run_root=str(root / ".dbproc-staging" / "run-99"),
            )
            session.add(run)
            session.commit()
            self.run_id = run.id


def _built(cli: CliHarness) -> CliHarness:
    assert cli.run("run").exit_code == 0
    return cli


def test_check_of_a_consistent_archive_finds_nothing(applied: CliHarness) -> None:
    _built(applied)
    report = applied.json("check")
    assert report["problems"] == [] and report["exit_code"] == 0
    assert report["files_checked"] == 14
    assert "everything is consistent" in applied.ok("check").stdout


def test_check_finds_every_planted_inconsistency_and_changes_nothing(
    applied: CliHarness,
) -> None:
    planted = Planted(_built(applied))
    db, tree = dump_database(applied.db), tree_state(applied.mission_dir)
    report = applied.json("check", code=3)
    assert _kinds(report) == {
        "orphan": {"testDB_000_009.raw"},
        "orphan_unidentified": {"testDB_20160101_v1.5.0.cat", "testDB_000_abc.raw"},
        "missing_file": {"testDB_20160103_v1.0.0.rot"},
        "checksum_mismatch": {"testDB_20160102_v1.0.0.cat"},
        "back_on_disk": {"testDB_20160104_v1.0.0.rot"},
        "leftover_staging": {"run-98"},
        "reject_without_file": {"zz_junk.bin"},
        "reject_without_record": {"zz_lost.bin"},
        "unfinished_run": {f"run {planted.run_id}"},
    }
    assert report["needs_attention"] == len(report["problems"])
    assert not any(p["repaired"] for p in report["problems"])
    assert dump_database(applied.db) == db  # check alone changes nothing
    assert tree_state(applied.mission_dir) == tree
    text = applied.ok("check", code=3).stdout
    assert "[OPEN] checksum_mismatch" in text and "need attention" in text


def test_quick_check_compares_sizes_only(applied: CliHarness) -> None:
    _built(applied)
    same_size = applied.root / "L1" / "2016" / "testDB_20160101_v1.0.0.cat"
    data = same_size.read_bytes()
    same_size.write_bytes(data.upper())
    assert applied.json("check", "--quick")["problems"] == []
    assert _kinds(applied.json("check", code=3)) == {"checksum_mismatch": {same_size.name}}
    same_size.write_bytes(data + b"more")
    assert _kinds(applied.json("check", "--quick", code=3)) == {
        "checksum_mismatch": {same_size.name}
    }


def test_repair_fixes_the_safe_ones_and_reports_the_rest(applied: CliHarness) -> None:
    planted = Planted(_built(applied))
    report = applied.json("check", "--repair", code=3)
    repaired = _kinds({"problems": [p for p in report["problems"] if p["repaired"]]})
    assert repaired == {
        "orphan": {"testDB_000_009.raw"},
        "missing_file": {"testDB_20160103_v1.0.0.rot"},
        "back_on_disk": {"testDB_20160104_v1.0.0.rot"},
        "leftover_staging": {"run-98"},
        "reject_without_file": {"zz_junk.bin"},
        "unfinished_run": {f"run {planted.run_id}"},
    }
    left = {
        "orphan_unidentified": {"testDB_20160101_v1.5.0.cat", "testDB_000_abc.raw"},
        "checksum_mismatch": {"testDB_20160102_v1.0.0.cat"},
        "reject_without_record": {"zz_lost.bin"},
    }
    assert _kinds(report, open_only=True) == left
    assert report["needs_attention"] == 4
    # what was repaired is so in the database and on disk
    orphan = _file(applied, "testDB_000_009.raw")
    assert orphan.on_disk and orphan.path == "L0/testDB_000_009.raw"
    assert _file(applied, "testDB_20160103_v1.0.0.rot").on_disk is False
    assert _file(applied, "testDB_20160104_v1.0.0.rot").on_disk is True
    assert not planted.staging.exists()
    runs = {r["id"]: r["status"] for r in applied.json("runs", "--limit", "0")}
    assert runs[planted.run_id] == "abandoned"
    with engine_of(applied) as engine, Session(engine) as session:
        junk = session.scalars(select(Reject).where(Reject.filename == "zz_junk.bin")).one()
        assert junk.retried_at is not None
    # a second repair finds only what needs a person; it changes nothing more
    before = dump_without_passes(applied.db)
    again = applied.json("check", "--repair", code=3)
    assert _kinds(again) == left
    assert dump_without_passes(applied.db) == before
    # the person fixes those; then everything is consistent
    planted.changed.write_bytes(planted.changed_bytes)
    planted.misplaced.unlink()
    planted.unclaimed.unlink()
    shutil.move(planted.unrecorded, applied.incoming / "zz_lost.bin")
    os.unlink(applied.incoming / "zz_lost.bin")
    assert applied.json("check")["exit_code"] == 0
    # the registered orphan is built upon by the next pass; the missing file is rebuilt
    result = applied.run("--json", "run")
    assert result.exit_code == 0, result.output
    files = {f["filename"] for f in applied.json("files")}
    assert "testDB_20160110_v1.0.0.cat" in files
    assert applied.json("check")["exit_code"] == 0


def test_repair_takes_the_pass_lock(applied: CliHarness) -> None:
    use_test_code(applied, "L0_to_L1", "sleep", when="20160101")
    proc = spawn(applied, "run", env={"BEHAVE_SLEEP": "3"})
    try:
        wait_until(
            lambda: applied.json("runs", "--status", "running") != [], 30, "the pass to run a code"
        )
        refused = applied.run("check", "--repair")
        assert refused.exit_code == 4, refused.output
        assert "another pass holds the lock" in refused.stderr
    finally:
        assert proc.wait(timeout=60) == 0
    assert applied.json("check", "--repair")["exit_code"] == 0
    assert_consistent(applied)


def test_check_during_a_pass_reports_nothing_of_the_pass_in_flight(
    applied: CliHarness,
) -> None:
    """A pass at work has runs running, files in staging and files linked but not yet
    recorded: none of that is a problem, and check must not cry wolf (exit 3) while it
    is so; it says a pass is running."""
    use_test_code(applied, "L0_to_L1", "sleep")
    proc = spawn(applied, "run", env={"BEHAVE_SLEEP": "1.5"})
    try:
        wait_until(
            lambda: applied.json("runs", "--status", "running") != [], 30, "the pass to run a code"
        )
        report = applied.json("check")
        assert report["problems"] == [], report
        assert report["pass_running"] is True
    finally:
        assert proc.wait(timeout=60) == 0
    report = applied.json("check")
    assert report["problems"] == [] and report["pass_running"] is False
