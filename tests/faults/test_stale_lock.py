"""A pass row left ``running`` by a pass that is gone, or by one that is alive.

- same host, its process gone (or its pid reused by another process): taken over at
  once, logged, the row marked crashed, the pass does its work;
- same host, its process alive: respected (exit 4);
- another host, heartbeat fresh: respected (exit 4, the message names the host and how
  to override); heartbeat older than ``[lock] stale_after_seconds``: taken over;
- a live pass keeps its heartbeat fresh, so another host never takes it over;
- ``dbproc unlock`` clears what is dead and refuses what is alive (``--force`` for
  another host).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.control.pass_holders import process_start_time
from dbproc.db.models import PassRecord, PassState
from tests.faults.invariants import assert_consistent, engine_of, incoming_files
from tests.faults.procs import spawn, wait_until
from tests.helpers import CliHarness, edit_mission, use_test_code

HOST = socket.gethostname()


def _plant(
    cli: CliHarness,
    *,
    host: str = HOST,
    pid: int = 999_999,
    pid_start: str | None = None,
    age: float = 0.0,
) -> int:
    """Leave a ``running`` pass row behind; return its id."""
    with engine_of(cli) as engine, Session(engine) as session:
        now = utcnow()
        row = PassRecord(
            command="run",
            host=host,
            pid=pid,
            pid_start=pid_start,
            user="x",
            started_at=now - dt.timedelta(seconds=age + 60),
            heartbeat_at=now - dt.timedelta(seconds=age),
            state=PassState.RUNNING,
        )
        session.add(row)
        session.commit()
        return row.id


def _row(cli: CliHarness, pass_id: int) -> PassRecord:
    with engine_of(cli) as engine, Session(engine) as session:
        row = session.get(PassRecord, pass_id)
        assert row is not None
        session.expunge(row)
        return row


def _passes(cli: CliHarness) -> int:
    with engine_of(cli) as engine, Session(engine) as session:
        return len(session.scalars(select(PassRecord)).all())


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_process() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _short_lease(cli: CliHarness, stale_after: float, heartbeat: float = 30.0) -> None:
    edit_mission(
        cli.mission_file,
        lambda doc: doc.update(
            lock={"stale_after_seconds": stale_after, "heartbeat_seconds": heartbeat}
        ),
    )
    cli.ok("config", "apply", str(cli.mission_file))


def test_row_of_a_dead_process_on_this_host_is_taken_over_and_logged(
    applied: CliHarness, dead_pid: int
) -> None:
    originals = incoming_files(applied)
    stale = _plant(applied, pid=dead_pid, pid_start="boot:1", age=3600)
    result = applied.run("--json", "run")
    assert result.exit_code == 0, result.output
    assert (
        f"previous pass {stale} (run) on host {HOST}, pid {dead_pid}" in result.stderr
        and "taking over and recovering" in result.stderr
    )
    import json

    report = json.loads(result.stdout)
    assert report["takeovers"] and f"pid {dead_pid}" in report["takeovers"][0]
    row = _row(applied, stale)
    assert row.state == PassState.CRASHED and row.ended_at is not None
    assert "taken over" in (row.outcome or "")
    assert_consistent(applied, originals)


def test_row_whose_pid_now_belongs_to_another_process_is_taken_over(
    applied: CliHarness, live_process: subprocess.Popen[bytes]
) -> None:
    start = process_start_time(live_process.pid)
    assert start is not None
    stale = _plant(applied, pid=live_process.pid, pid_start=start + "0")  # not its start
    assert applied.run("run").exit_code == 0
    assert _row(applied, stale).state == PassState.CRASHED


def test_row_of_a_live_process_on_this_host_is_respected(
    applied: CliHarness, live_process: subprocess.Popen[bytes]
) -> None:
    held = _plant(applied, pid=live_process.pid, pid_start=process_start_time(live_process.pid))
    before = incoming_files(applied)
    result = applied.run("run")
    assert result.exit_code == 4, result.output
    assert f"pass {held} (run) on host {HOST}, pid {live_process.pid}" in result.stderr
    assert incoming_files(applied) == before  # nothing was done
    assert _row(applied, held).state == PassState.RUNNING
    assert _passes(applied) == 1
    # unlock refuses too: its holder is alive
    assert applied.run("unlock").exit_code == 4
    assert _row(applied, held).state == PassState.RUNNING


def test_fresh_row_of_another_host_is_respected_until_its_heartbeat_ages(
    applied: CliHarness,
) -> None:
    _short_lease(applied, stale_after=30)
    foreign = _plant(applied, host="elsewhere.example", pid=4242, age=5)
    before = incoming_files(applied)
    result = applied.run("run")
    assert result.exit_code == 4, result.output
    assert "on host elsewhere.example, pid 4242" in result.stderr
    assert "30 s" in result.stderr and "dbproc unlock --force" in result.stderr
    assert incoming_files(applied) == before
    assert _row(applied, foreign).state == PassState.RUNNING
    # the heartbeat stops: once older than the configured timeout, the row is taken over
    with engine_of(applied) as engine, engine.begin() as conn:
        conn.execute(
            update(PassRecord)
            .where(PassRecord.id == foreign)
            .values(heartbeat_at=utcnow() - dt.timedelta(seconds=31))
        )
    result = applied.run("run")
    assert result.exit_code == 0, result.output
    assert "on host elsewhere.example" in result.stderr and "taking over" in result.stderr
    assert _row(applied, foreign).state == PassState.CRASHED
    assert_consistent(applied, before)


def test_unlock_clears_a_dead_row_and_needs_force_for_a_fresh_foreign_one(
    applied: CliHarness, dead_pid: int
) -> None:
    dead = _plant(applied, pid=dead_pid, pid_start="boot:1")
    cleared = applied.json("unlock")
    assert len(cleared["cleared"]) == 1 and f"pid {dead_pid}" in cleared["cleared"][0]
    assert _row(applied, dead).state == PassState.CRASHED
    foreign = _plant(applied, host="elsewhere.example", pid=4242)
    refused = applied.run("unlock")
    assert refused.exit_code == 4 and "--force" in refused.stderr
    assert _row(applied, foreign).state == PassState.RUNNING
    applied.ok("unlock", "--force")
    assert _row(applied, foreign).state == PassState.CRASHED
    assert applied.json("status")["lock"] == {
        "held": False,
        "passes_marked_running": [],
        "stale": False,
        "activity": None,
    }


def test_a_live_pass_keeps_its_heartbeat_fresh(applied: CliHarness, tmp_path: Path) -> None:
    """The heartbeat is what another host judges by: it must advance while a pass works,
    so a pass that runs longer than the timeout is never taken over."""
    stale_after = 1.0
    _short_lease(applied, stale_after=stale_after, heartbeat=0.1)
    use_test_code(applied, "L0_to_L1", "hold", when="20160101")
    held, release = tmp_path / "held", tmp_path / "release"
    proc = spawn(applied, "run", env={"BEHAVE_HELD": str(held), "BEHAVE_RELEASE": str(release)})
    try:
        wait_until(held.exists, 60, "the pass to reach its code")
        first = _row(applied, 1).heartbeat_at
        # the pass has now worked longer than stale_after_seconds, and kept its heartbeat
        wait_until(
            lambda: (_row(applied, 1).heartbeat_at - first).total_seconds() > stale_after,
            60,
            "the heartbeat to advance past stale_after_seconds",
        )
        assert _row(applied, 1).state == PassState.RUNNING
        # on this host the live pid decides; the row is respected (exit 4)
        assert applied.run("run").exit_code == 4
    finally:
        release.touch()
        assert proc.wait(timeout=60) == 0
    assert _row(applied, 1).state == PassState.DONE


def test_a_leftover_row_of_this_very_process_does_not_lock_it_out(applied: CliHarness) -> None:
    """An API user's earlier pass in this process that could not close its row (say the
    database went away during its last update) must not lock the process out for good:
    the OS lock we now hold proves that pass is over."""
    mine = _plant(applied, pid=os.getpid(), pid_start=process_start_time(os.getpid()))
    result = applied.run("run")
    assert result.exit_code == 0, result.output
    assert _row(applied, mine).state == PassState.CRASHED
