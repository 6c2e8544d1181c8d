"""Passes started at the same moment: exactly one works, the others exit 4 at once.

Each pass is a real process that imports dbproc first and then waits for a "go" file, so
they all reach the lock within milliseconds of each other and the time measured is
dbproc's own (from "go" to exit), not the interpreter's start-up. The working pass is
kept inside its lock by a code that sleeps.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.invariants import assert_consistent, engine_of, incoming_files
from tests.helpers import CliHarness, use_test_code

HOLD_SECONDS = 2
WRAPPER = """
import os, sys, time
from dbproc.cli import cli
import dbproc.api, dbproc.cli.passes, dbproc.control.passes  # (the CLI imports them lazily)
go = sys.argv[1]
print("READY", flush=True)
while not os.path.exists(go):
    time.sleep(0.002)
t0 = time.monotonic()
try:
    cli.main(args=sys.argv[2:], prog_name="dbproc")
finally:
    sys.stderr.write("\\nELAPSED %.3f\\n" % (time.monotonic() - t0))
"""


def _start(cli: CliHarness, go: Path, n: int) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "BEHAVE_SLEEP": str(HOLD_SECONDS)}
    procs = [subprocess.Popen([sys.executable, "-c", WRAPPER, str(go), "--db", cli.db, "run"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, start_new_session=True) for _ in range(n)]
    for proc in procs:  # every one has imported dbproc and waits
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
    return procs


@pytest.mark.parametrize("n", [2, 10])
def test_passes_started_at_once_one_works_the_others_exit_4(
    applied: CliHarness, tmp_path: Path, n: int
) -> None:
    use_test_code(applied, "L0_to_L1", "sleep", when="20160101")
    originals = incoming_files(applied)
    go = tmp_path / "go"
    procs = _start(applied, go, n)
    try:
        go.touch()
        ended = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            elapsed = float(err.rsplit("ELAPSED", 1)[1])
            ended.append((proc.returncode, elapsed, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    codes = sorted(code for code, _, _ in ended)
    assert codes == [0] + [4] * (n - 1), [e[2][-600:] for e in ended]
    for code, elapsed, err in ended:
        if code == 4:
            assert "another pass holds the lock" in err
            assert elapsed < 1.0, f"a pass waited {elapsed:.2f} s for a held lock"
        else:
            assert elapsed >= HOLD_SECONDS
    # exactly one pass row, which did all the work, once
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from dbproc.db.models import File, PassRecord, Run

    with engine_of(applied) as engine, Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(PassRecord)) == 1
        assert set(session.scalars(select(Run.pass_id))) == {1}
        assert session.scalar(select(func.count()).select_from(File)) == 14
    assert_consistent(applied, originals)
