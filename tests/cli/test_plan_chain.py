"""``dbproc plan``: what can start now by default (contract section 7), saying how many
builds follow; ``--chain`` for the whole chain, levels marked; what a running pass holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import CliHarness, edit_mission

WAIT_CODE = """\
import pathlib, sys, time
release = pathlib.Path(sys.argv[1])
deadline = time.monotonic() + 120
while not release.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
*inputs, output = sys.argv[2:]
with open(output, "wb") as out:
    for name in inputs:
        out.write(pathlib.Path(name).read_bytes())
"""


def test_plan_shows_the_chain_that_run_builds(applied: CliHarness) -> None:
    applied.ok("ingest")
    chain = applied.json("plan", "--chain")
    assert [(p["level"], p["process"]) for p in chain] == (
        [(1, "L0_to_L1")] * 4 + [(2, "L1_to_L2")] * 4 + [(3, "L2_log")] * 4
    )
    assert all(p["in_flight"] is None for p in chain)
    text = applied.ok("plan", "--chain").stdout
    assert "12 build(s) in 3 levels (level 1 can start now)" in text
    assert "a pass is running" not in text
    first = applied.json("plan")
    assert first == [p for p in chain if p["level"] == 1]
    assert applied.json("plan", "--next") == first
    # the default says what follows, so a plan after `config apply` is never a surprise
    assert "and 8 more build(s) downstream" in applied.ok("plan").stdout
    report = applied.json("process")
    made = {(r["process"], r["date"], r["output"], r["version"]) for r in report["process"]["runs"]}
    assert made == {(p["process"], p["date"], p["output"], p["version"]) for p in chain}


def _wait_until(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_plan_while_a_pass_runs_marks_what_it_holds(applied: CliHarness, tmp_path: Path) -> None:
    release = tmp_path / "release"
    script = applied.mission_dir / "codes" / "scripts" / "wait.py"
    script.write_text(WAIT_CODE)

    def mutate(doc: dict[str, Any]) -> None:
        doc["processes"]["L0_to_L1"]["code"].update(path="scripts/wait.py", args=[str(release)])

    edit_mission(applied.mission_file, mutate)
    applied.ok("config", "apply", str(applied.mission_file))
    applied.ok("ingest")
    env = {k: v for k, v in os.environ.items() if k != "DBPROC_DB"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbproc", "--db", applied.db, "-q", "process", "--jobs", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until(lambda: applied.json("runs", "--status", "running"), "a running run")
        chain = applied.json("plan")
        held = [p for p in chain if p["in_flight"]]
        assert held and all(p["process"] == "L0_to_L1" for p in held)
        assert {p["in_flight"]["status"] for p in held} <= {"queued", "running", "promoting"}
        text = applied.ok("plan").stdout
        assert "a pass is running (pass " in text and "it already holds" in text
        assert "* L0_to_L1" in text
    finally:
        release.touch()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert applied.json("plan") == []
    assert "a pass is running" not in applied.ok("plan").stdout
    assert json.loads(applied.ok("plan", "--next", "--json").stdout) == []
