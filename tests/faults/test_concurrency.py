"""Passes started at the same moment: exactly one works, the others exit 4 at once.

Each pass is a real process that imports dbproc first and then waits for a "go" file, so
they all reach the lock within milliseconds of each other. The working pass is kept inside
its lock by a code that holds until the test releases it, so "at once" is a state, not a
time: every other pass has exited 4 while the working one still holds the lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.invariants import assert_consistent, engine_of, incoming_files
from tests.faults.procs import wait_until
from tests.helpers import CliHarness, use_test_code

WRAPPER = """
import os, sys, time
from dbproc.cli import cli
import dbproc.api, dbproc.cli.passes, dbproc.control.passes  # (the CLI imports them lazily)
go = sys.argv[1]
print("READY", flush=True)
while not os.path.exists(go):
    time.sleep(0.002)
cli.main(args=sys.argv[2:], prog_name="dbproc")
"""


def _start(cli: CliHarness, go: Path, n: int, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRAPPER, str(go), "--db", cli.db, "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
            start_new_session=True,
        )
        for _ in range(n)
    ]
    for proc in procs:  # every one has imported dbproc and waits
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
    return procs


@pytest.mark.parametrize("n", [2, 10])
def test_passes_started_at_once_one_works_the_others_exit_4(
    applied: CliHarness, tmp_path: Path, n: int
) -> None:
    use_test_code(applied, "L0_to_L1", "hold", when="20160101")
    originals = incoming_files(applied)
    go, held, release = tmp_path / "go", tmp_path / "held", tmp_path / "release"
    procs = _start(applied, go, n, {"BEHAVE_HELD": str(held), "BEHAVE_RELEASE": str(release)})
    try:
        go.touch()
        wait_until(
            lambda: sum(p.poll() is not None for p in procs) == n - 1,
            120,
            f"{n - 1} passes to give up on the lock",
        )
        [holder] = [p for p in procs if p.poll() is None]
        wait_until(held.exists, 120, "the working pass to reach its code")
        losers = [p for p in procs if p is not holder]
        for proc in losers:  # they ended while the lock was held, without waiting for it
            _, err = proc.communicate()
            assert proc.returncode == 4, err[-600:]
            assert "another pass holds the lock" in err
        release.touch()
        _, err = holder.communicate(timeout=120)
        assert holder.returncode == 0, err[-600:]
    finally:
        release.touch()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    # exactly one pass row, which did all the work, once
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from dbproc.db.models import File, PassRecord, Run

    with engine_of(applied) as engine, Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(PassRecord)) == 1
        assert set(session.scalars(select(Run.pass_id))) == {1}
        assert session.scalar(select(func.count()).select_from(File)) == 14
    assert_consistent(applied, originals)
