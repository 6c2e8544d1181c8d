"""``dbproc watch`` (§14) as a real resident process on both backends."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_URL
from tests.faults.procs import kill_group, processes_mentioning, spawn
from tests.helpers import CliHarness, drop, edit_mission


def wait_for(predicate: Any, timeout: float = 90.0) -> bool:
    """Bounded poll of a state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def names(cli: CliHarness, product: str) -> set[str]:
    return {f["filename"] for f in cli.json("files", "--product", product)}


def dates(cli: CliHarness, product: str) -> set[str]:
    return {f["date"] for f in cli.json("files", "--product", product)}


@pytest.fixture
def gated(cli: CliHarness) -> CliHarness:
    def mutate(doc: dict[str, Any]) -> None:
        doc["products"]["L1"]["review"] = True

    edit_mission(cli.mission_file, mutate)
    cli.ok("config", "apply", str(cli.mission_file))
    return cli


def terminate_app_connections(app_name: str) -> int:
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :a AND pid <> pg_backend_pid()"
            ),
            {"a": app_name},
        ).scalar_one()
    engine.dispose()
    return int(killed)


@pytest.mark.slow
def test_watch_builds_what_arrives_and_what_a_verdict_releases(
    gated: CliHarness, tmp_path: Path
) -> None:
    log = tmp_path / "watch.log"
    app = f"dbproc-watch-{uuid.uuid4().hex[:8]}"
    proc = spawn(gated, "watch", "--interval", "600", log=log, env={"PGAPPNAME": app})
    try:
        # the pass at start: the example's raw files become L1 (held for review)
        assert wait_for(lambda: dates(gated, "L1") >= {"2016-01-01", "2016-01-04"}), log.read_text()
        assert names(gated, "L2") == set()
        # a file dropped into incoming is ingested and built without another command
        drop(gated.incoming, "testDB_000_004.raw", "Fifth Part.\n")
        assert wait_for(lambda: "2016-01-05" in dates(gated, "L1")), log.read_text()
        # a verdict releases the consumer
        first = next(
            f["filename"]
            for f in gated.json("files", "--product", "L1")
            if f["date"] == "2016-01-01"
        )
        gated.ok("review", "pass", first)
        assert wait_for(lambda: "2016-01-01" in dates(gated, "L2")), log.read_text()

        if "://" in gated.db:  # PostgreSQL: every connection of watch is killed
            assert terminate_app_connections(app) >= 1
            drop(gated.incoming, "testDB_000_005.raw", "Sixth Part.\n")
            assert wait_for(lambda: "2016-01-06" in dates(gated, "L1")), log.read_text()

        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            kill_group(proc)
    text_log = log.read_text()
    assert "watch: pass" in text_log and "stopped after" in text_log
    assert processes_mentioning(str(gated.mission_dir)) == []


def test_watch_refuses_a_bad_interval(applied: CliHarness) -> None:
    result = applied.run("watch", "--interval", "0")
    assert result.exit_code == 2


def test_sigterm_during_a_pass_ends_watch_with_exit_0(applied: CliHarness, tmp_path: Path) -> None:
    from tests.helpers import use_test_code

    use_test_code(applied, "L0_to_L1", "sleep", when="20160101")
    log = tmp_path / "watch.log"
    proc = spawn(applied, "watch", "--interval", "600", log=log, env={"BEHAVE_SLEEP": "120"})
    try:
        assert wait_for(
            lambda: (
                "started L0_to_L1 2016-01-01" in log.read_text()
                or any(r["status"] == "running" for r in applied.json("runs"))
            ),
            timeout=60,
        ), log.read_text()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            kill_group(proc)
    assert wait_for(lambda: processes_mentioning(str(applied.mission_dir)) == [], timeout=30)
    assert subprocess.run(["true"]).returncode == 0
