"""A pass under signals and stuck: SIGTERM/SIGHUP end it like Ctrl-C; it says what it
does (``status --json`` ``lock.activity``); a pass that makes no progress is taken over."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.db.models import PassRecord, Run
from dbproc.faults import HANG_VAR, SIGNAL_VAR
from tests.faults.invariants import engine_of
from tests.faults.procs import kill_group, processes_mentioning, spawn, wait_until
from tests.helpers import DATA, CliHarness, drop, edit_mission
from tests.usercode.codes import use_code
from tests.usercode.test_inspectors import hostile_mission


def _rows(cli: CliHarness, model: Any) -> list[Any]:
    with engine_of(cli) as engine, Session(engine) as session:
        rows = list(session.scalars(select(model).order_by(model.id)))
        for row in rows:
            session.expunge(row)
        return rows


def _lock(cli: CliHarness) -> dict[str, Any]:
    return cli.json("status")["lock"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_mid_run_cancels_the_runs_and_frees_the_lock(
    applied: CliHarness, tmp_path: Path, signum: int
) -> None:
    source = (DATA / "codes" / "behave.py").read_text()
    use_code(applied, "behave.py", source, ["sleep", "{DATE}", "all"])
    log = tmp_path / "pass.log"
    proc = spawn(applied, "run", "--jobs", "2", env={"BEHAVE_SLEEP": "300"}, log=log)
    try:
        wait_until(
            lambda: sum(r.status == "running" for r in _rows(applied, Run)) == 2,
            60,
            "two codes to run",
        )
        wait_until(
            lambda: _lock(applied)["activity"] == "running 2 codes",
            30,
            "the pass to say what it does",
        )
        proc.send_signal(signum)
        assert proc.wait(timeout=120) == 128 + signum
    finally:
        if proc.poll() is None:
            kill_group(proc)
    errors = [line for line in log.read_text().splitlines() if line.startswith("Error:")]
    assert errors == [errors[0]] and signal.Signals(signum).name in errors[0]
    (row,) = _rows(applied, PassRecord)
    assert row.state == "interrupted" and signal.Signals(signum).name in (row.outcome or "")
    assert {r.status for r in _rows(applied, Run)} == {"cancelled"}
    assert _lock(applied)["held"] is False and _lock(applied)["passes_marked_running"] == []
    assert processes_mentioning(str(applied.mission_dir / "data")) == []
    # the next pass builds what was cancelled
    use_code(applied, "behave.py", source, ["concat", "{DATE}", "all"])
    assert applied.json("run")["exit_code"] == 0


def test_a_stop_signal_as_runs_start_stops_every_started_code(
    applied: CliHarness, tmp_path: Path
) -> None:
    """SIGTERM just after two runs' rows are committed, before their codes are handed to
    the executor: the pass still starts and stops both, and records them ``cancelled``
    (cut there, it would leave the rows ``running``, or a code that nobody stops)."""
    source = (DATA / "codes" / "behave.py").read_text()
    use_code(applied, "behave.py", source, ["sleep", "{DATE}", "all"])
    log = tmp_path / "pass.log"
    env = {"BEHAVE_SLEEP": "300", SIGNAL_VAR: "job.queued:1"}
    proc = spawn(applied, "run", "--jobs", "2", env=env, log=log)
    try:
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM, log.read_text()
    finally:
        if proc.poll() is None:
            kill_group(proc)
    runs = _rows(applied, Run)
    assert len(runs) == 2 and {r.status for r in runs} == {"cancelled"}, log.read_text()
    assert _lock(applied)["held"] is False
    assert processes_mentioning(str(applied.mission_dir / "data")) == []


def test_status_names_the_file_being_inspected(cli: CliHarness) -> None:
    hostile_mission(cli, inspector_timeout=600)

    def long_timeout(doc: dict[str, Any]) -> None:
        doc["products"]["H"]["inspector_timeout"] = 600

    edit_mission(cli.mission_file, long_timeout)
    cli.ok("config", "apply", str(cli.mission_file))
    drop(cli.incoming, "h_hang_000.dat", "x")
    proc = spawn(cli, "ingest")
    try:
        wait_until(
            lambda: (_lock(cli)["activity"] or "").startswith("inspecting h_hang_000.dat for "),
            60,
            "the pass to name the file",
        )
        assert _lock(cli)["activity"].endswith(" s")
    finally:
        kill_group(proc)


def test_a_pass_stuck_outside_user_code_is_taken_over_after_stale_after(
    applied: CliHarness,
) -> None:
    edit_mission(
        applied.mission_file,
        lambda doc: doc.update(lock={"stale_after_seconds": 2, "heartbeat_seconds": 0.2}),
    )
    applied.ok("config", "apply", str(applied.mission_file))
    stuck = spawn(applied, "run", env={HANG_VAR: "ingest.hashed"})
    try:
        wait_until(lambda: bool(_lock(applied)["passes_marked_running"]), 60, "the pass to start")
        assert applied.run("run").exit_code == 4  # alive and fresh: respected
        # the status rounds the age to 0.1 s and this `run` starts at once (in-process):
        # wait for a margin past stale_after_seconds, or the run may see 1.96 s and wait
        wait_until(
            lambda: _lock(applied)["passes_marked_running"][0]["heartbeat_age_seconds"] >= 2.5,
            60,
            "the stuck pass's heartbeat to age",
        )
        report = applied.json("run")
        assert report["exit_code"] == 0 and report["ingest"]["counts"]["ingested"] == 6
        assert stuck.wait(timeout=60) != 0
    finally:
        if stuck.poll() is None:
            kill_group(stuck)
    states = [r.state for r in _rows(applied, PassRecord)]
    assert states[-1] == "done" and states[0] in ("interrupted", "crashed")
