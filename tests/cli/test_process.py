"""Plan and process end to end, on both backends, with real subprocess codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import CliHarness, by_name, drop, dump_database, tree_state, use_test_code

L1 = "testDB_{}_v{}.cat"


def test_chain_built_in_one_run_and_second_run_does_nothing(applied: CliHarness) -> None:
    report = applied.json("run")
    assert report["exit_code"] == 0
    assert report["ingest"]["counts"]["ingested"] == 6
    assert report["process"]["counts"] == {"runs": 12, "succeeded": 12}
    files = by_name(applied.json("files"))
    assert {f["product"] for f in files.values()} == {"L0_first", "L0_second", "L1", "L2"}
    l1 = files["testDB_20160104_v1.0.0.cat"]
    assert Path(l1["path"]).read_text() == "Second Part.\nThird Part.\nFourth Part.\n"
    l2 = files["testDB_20160104_v1.0.0.rot"]
    assert Path(l2["path"]).read_text() == "Frpbaq Cneg.\nGuveq Cneg.\nSbhegu Cneg.\n"
    assert l2["path"].endswith("/L2/2016/01/testDB_20160104_v1.0.0.rot")
    log = (applied.root / "L2-log.txt").read_text().splitlines()
    assert sorted(log)[0] == "20160101 testDB_20160101_v1.0.0.rot"
    runs_before = len(applied.json("runs", "--limit", "0"))
    again = applied.json("run")
    assert again["exit_code"] == 0 and again["process"]["counts"] == {"runs": 0}
    assert len(applied.json("runs", "--limit", "0")) == runs_before == 12
    assert applied.json("plan") == []


def test_worked_example_of_the_contract(applied: CliHarness) -> None:
    applied.ok("run")
    drop(applied.incoming, "testDB_000_004.raw", "Fifth Part.\n")
    applied.ok("ingest")
    plan = {(p["process"], p["date"]): p for p in applied.json("plan", "--next")}
    assert set(plan) == {
        ("L0_to_L1", "2016-01-03"),
        ("L0_to_L1", "2016-01-04"),
        ("L0_to_L1", "2016-01-05"),
    }
    assert plan[("L0_to_L1", "2016-01-05")]["version"] == "1.0.0"
    assert plan[("L0_to_L1", "2016-01-05")]["reason"] == "new"
    for day in ("2016-01-03", "2016-01-04"):
        assert plan[("L0_to_L1", day)]["reason"] == "input_added"
        assert plan[("L0_to_L1", day)]["version"] == "1.1.0"
        assert plan[("L0_to_L1", day)]["output"] == L1.format(day.replace("-", ""), "1.1.0")
    applied.ok("process")
    files = by_name(applied.json("files"))
    assert Path(files["testDB_20160104_v1.1.0.cat"]["path"]).read_text().endswith("Fifth Part.\n")
    assert "testDB_20160104_v1.1.0.rot" in files  # L2 follows with its own new version
    assert "testDB_20160102_v1.1.0.cat" not in files
    everything = by_name(applied.json("files", "--all-versions"))
    assert everything["testDB_20160104_v1.0.0.cat"]["newest"] is False


def test_plan_changes_nothing(applied: CliHarness) -> None:
    applied.ok("ingest")
    db_before, tree_before = dump_database(applied.db), tree_state(applied.mission_dir)
    plan = applied.json("plan", "--next")
    assert len(plan) == 4 and {p["reason"] for p in plan} == {"new"}
    chain = applied.json("plan", "--chain")  # the whole chain, level by level
    assert [p["level"] for p in chain] == [1] * 4 + [2] * 4 + [3] * 4
    assert plan[0] | {"inputs": None} == plan[0] | {"inputs": None}  # shape check below
    assert set(plan[0]) >= {"process", "date", "output", "version", "inputs", "reason"}
    assert dump_database(applied.db) == db_before
    assert tree_state(applied.mission_dir) == tree_before


def test_failing_code_keeps_its_log_and_others_are_built(applied: CliHarness) -> None:
    use_test_code(applied, "L0_to_L1", "fail", when="20160102")
    result = applied.run("--json", "run")
    assert result.exit_code == 3, result.output
    failed = applied.json("runs", "--failed")
    assert len(failed) == 1 and failed[0]["date"] == "2016-01-02"
    assert failed[0]["exit_code"] == 7 and "boom" in failed[0]["stderr_tail"]
    log = applied.errors / "runs" / str(failed[0]["id"]) / "run.log"
    text = log.read_text()
    assert "exit status 7" in text and "boom: cannot calibrate 20160102" in text
    assert "behave.py fail 20160102" in text and "working on 20160102" in text
    products = [f["product"] for f in applied.json("files")]
    assert products.count("L1") == 3 and products.count("L2") == 3
    shown = applied.ok("runs", "show", str(failed[0]["id"])).stdout
    assert "boom" in shown
    # not retried until something changes ...
    again = applied.json("run")
    assert again["process"]["counts"] == {"runs": 0}
    status = applied.json("status")
    assert status["failed_builds"] == {"L0_to_L1": 1}
    # ... or until asked
    retried = applied.run("--json", "run", "--retry-failed")
    assert retried.exit_code == 3
    assert applied.json("status")["failed_builds"] == {"L0_to_L1": 1}  # one key, failed twice
    use_test_code(applied, "L0_to_L1", "fail", when="29991231")  # fails on no day now
    assert applied.run("--json", "run", "--retry-failed").exit_code == 0
    assert applied.json("status")["failed_builds"] == {}  # its newest run succeeded


def test_a_quiet_code_leaves_empty_streams_in_its_logs(applied: CliHarness) -> None:
    """A stream the code printed nothing on has no file while it runs (one file less a
    run); the kept log shows it empty, and a kept failed run folder has both logs."""
    use_test_code(applied, "L0_to_L1", "no-output", when="20160103")
    assert applied.run("run").exit_code == 3
    (failed,) = applied.json("runs", "--failed")
    folder = applied.errors / "runs" / str(failed["id"])
    assert (folder / "stdout.log").read_bytes() == b""
    assert (folder / "stderr.log").read_bytes() == b""
    text = (folder / "run.log").read_text()
    assert "(missing)" not in text
    assert text.endswith(f"{'-' * 30} stdout {'-' * 30}\n{'-' * 30} stderr {'-' * 30}\n")
    built = [r for r in applied.json("runs") if r["status"] == "succeeded"]
    shown = applied.ok("runs", "show", str(built[0]["id"])).stdout
    assert "stdout" in shown and "(missing)" not in shown


def test_no_output_is_a_failure(applied: CliHarness) -> None:
    use_test_code(applied, "L0_to_L1", "no-output", when="20160103")
    assert applied.run("run").exit_code == 3
    (failed,) = applied.json("runs", "--failed")
    assert "wrote no file testDB_20160103_v1.0.0.cat" in failed["error"]


def test_output_its_inspector_reads_differently_is_a_failure(applied: CliHarness) -> None:
    import shutil

    from tests.helpers import DATA, edit_mission

    shutil.copy(
        DATA / "inspectors" / "content_date.py",
        applied.mission_dir / "codes" / "inspectors" / "content_date.py",
    )
    edit_mission(
        applied.mission_file,
        lambda doc: doc["products"]["L1"].update(inspector="inspectors/content_date.py"),
    )
    use_test_code(applied, "L0_to_L1", "wrong-content", when="20160101")
    assert applied.run("run").exit_code == 3
    (failed,) = applied.json("runs", "--failed")
    assert "date 1999-01-01 disagrees" in failed["error"]
    assert (applied.errors / "runs" / str(failed["id"])).is_dir()
    partial = list((applied.errors / "runs" / str(failed["id"])).rglob("*.cat"))
    assert partial and partial[0].read_text() == "DATE=1999-01-01\n"


def test_timeout_kills_the_whole_process_group(applied: CliHarness) -> None:
    use_test_code(applied, "L0_to_L1", "spawn-sleep", when="20160101", timeout=2)
    assert applied.run("run").exit_code == 3
    (failed,) = applied.json("runs", "--failed")
    assert failed["status"] == "timeout"
    child = int(failed["stdout_tail"].split()[1])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the code's child {child} survived the timeout")


def _dbproc(
    cli: CliHarness, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dbproc", "--db", cli.db, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def _wait_for_running(cli: CliHarness, seconds: float = 60, date: str | None = None) -> None:
    """A bounded wait until a run (of ``date``, if given) is running."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        running = cli.json("runs", "--status", "running")
        if any(date is None or r["date"] == date for r in running):
            return
        time.sleep(0.1)
    pytest.fail(f"no run {'of ' + date + ' ' if date else ''}started")


def test_second_pass_exits_4_while_one_runs(applied: CliHarness) -> None:
    use_test_code(applied, "L0_to_L1", "sleep", when="20160101")
    first = _dbproc(applied, "run", env={"BEHAVE_SLEEP": "4"})
    try:
        _wait_for_running(applied)
        second = applied.run("run")
        assert second.exit_code == 4
        assert "another pass holds the lock" in second.stderr
        assert "pass 1 (run)" in second.stderr
    finally:
        first.wait(timeout=60)
    assert first.returncode == 0


def test_killed_pass_is_recovered_by_the_next(applied: CliHarness) -> None:
    use_test_code(applied, "L0_to_L1", "sleep", when="20160102")
    first = _dbproc(applied, "run", env={"BEHAVE_SLEEP": "30"})
    _wait_for_running(applied, date="2016-01-02")  # the slow code is running
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    status = applied.json("status")
    assert status["lock"]["held"] is False and status["lock"]["stale"] is True
    result = applied.run("--json", "run", env={"BEHAVE_SLEEP": "0"})
    assert result.exit_code == 0, result.output
    abandoned = applied.json("runs", "--status", "abandoned")
    # the slow run, and whatever else was running at the kill (two codes run at once)
    assert ("L0_to_L1", "2016-01-02") in {(r["process"], r["date"]) for r in abandoned}
    files = applied.json("files", "--all-versions")
    l1 = sorted(f["filename"] for f in files if f["product"] == "L1")
    assert l1 == [L1.format(f"2016010{d}", "1.0.0") for d in range(1, 5)]
    assert len([f for f in files if f["product"] == "L2"]) == 4
    assert not any((applied.root / ".dbproc-staging").glob("run-*"))
    assert applied.json("run")["process"]["counts"] == {"runs": 0}


@pytest.mark.parametrize("chunk", [1, 500])
def test_plan_all_and_a_code_bump_plan_in_chunks_of_dates(
    applied: CliHarness, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """``plan --all`` and the replanning of every date after a code bump go through
    snapshots of at most PLAN_CHUNK (process, date) keys; the result does not depend on
    the chunk size."""
    import dbproc.admin.status
    import dbproc.build.processing
    from tests.helpers import edit_mission

    monkeypatch.setattr(dbproc.admin.status, "PLAN_CHUNK", chunk)
    monkeypatch.setattr(dbproc.build.processing, "PLAN_CHUNK", chunk)
    assert {(p["process"], p["date"]) for p in applied.json("plan", "--next", "--all")} == set()
    applied.ok("ingest")
    planned = {
        (p["process"], p["date"]): p["reason"] for p in applied.json("plan", "--next", "--all")
    }
    days = ["2016-01-01", "2016-01-02", "2016-01-03", "2016-01-04"]
    assert planned == {("L0_to_L1", d): "new" for d in days}
    applied.ok("run")
    assert applied.json("plan", "--next", "--all") == []

    def bump(doc: dict[str, object]) -> None:
        doc["processes"]["L1_to_L2"]["code"]["version"] = "1.1.0"  # type: ignore[index]

    edit_mission(applied.mission_file, bump)
    applied.ok("config", "apply", str(applied.mission_file))
    planned = {
        (p["process"], p["date"]): p["reason"] for p in applied.json("plan", "--next", "--all")
    }
    assert planned == {("L1_to_L2", d): "code_changed" for d in days}
    assert {(p["process"], p["date"]) for p in applied.json("plan", "--next")} == set(planned)
    report = applied.json("run")
    assert report["process"]["counts"]["runs"] == 8  # four L2 and their four RUN logs
    assert {r["process"] for r in report["process"]["runs"]} == {"L1_to_L2", "L2_log"}
    assert applied.json("plan", "--next", "--all") == [] and applied.json("plan") == []
    assert not dump_database(applied.db).get("pending")  # every queued row settled


def test_a_recorded_runs_kept_log_says_what_its_row_says(applied: CliHarness) -> None:
    """A successful run's kept log (build/promotion.py) heads with what its row in the
    database says: command, exit, host and times."""
    from sqlalchemy import select

    from dbproc.build.run_log_files import LogHead, _log_head
    from dbproc.db.engine import create_db_engine, database_url
    from dbproc.db.models import Process, Run

    applied.ok("run")
    engine = create_db_engine(database_url(applied.db))
    try:
        with engine.connect() as connection:
            names = dict(connection.execute(select(Process.id, Process.name)).all())
            runs = connection.execute(select(Run).where(Run.status == "succeeded")).all()
    finally:
        engine.dispose()
    assert len(runs) == 12
    for run in runs:
        kept = Path(run.log_path).read_text(encoding="utf-8")
        assert kept.startswith(_log_head(LogHead.of(run), names[run.process_id])), kept
        assert run.argv and run.host and run.started_at and run.exit_code == 0
