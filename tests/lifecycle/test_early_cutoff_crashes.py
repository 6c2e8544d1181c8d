"""SIGKILL during an early-cutoff rebuild: the next pass ends as an uninterrupted one
(no new version, every date reproduced once, consumers untouched)."""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from tests.faults.invariants import assert_consistent, dump_without_passes, incoming_files
from tests.faults.procs import run_crashing
from tests.helpers import CliHarness, tree_state
from tests.lifecycle.conftest import set_code


@pytest.mark.parametrize(
    ("point", "hit"), [("job.queued", 2), ("job.recorded", 2), ("job.cleaned", 3)]
)
def test_sigkill_during_an_unchanged_rebuild(applied: CliHarness, point: str, hit: int) -> None:
    originals = incoming_files(applied)
    applied.ok("run")
    names = {f["filename"] for f in applied.json("files", "--all-versions")}
    set_code(applied, "L0_to_L1", proc_early_cutoff=True)
    set_code(applied, "L0_to_L1", version="1.1.0")
    crashed = run_crashing(applied, point, hit, "run", "--jobs", "1")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode(errors="replace")
    recovery = applied.run("run")
    assert recovery.exit_code == 0, recovery.output
    facts = assert_consistent(applied, originals)
    assert {f["filename"] for f in applied.json("files", "--all-versions")} == names
    rebuilt = [
        r for r in facts["runs"].values() if r.code_id is not None and r.pass_id and r.pass_id > 1
    ]
    unchanged = Counter(r.date for r in rebuilt if r.status == "unchanged")
    assert set(unchanged.values()) == {1} and len(unchanged) == 4
    assert {r.status for r in rebuilt} <= {"unchanged", "abandoned"}
    db_before, tree_before = dump_without_passes(applied.db), tree_state(applied.mission_dir)
    assert applied.json("run")["process"]["counts"] == {"runs": 0}
    assert dump_without_passes(applied.db) == db_before
    assert tree_state(applied.mission_dir) == tree_before
