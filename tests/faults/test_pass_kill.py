"""SIGKILL the whole pass while a real code runs (reliability.md B7 #3 and #6).

The code is started by ``dbproc-launch`` (or ``setpriv --pdeathsig KILL``) in its own
process group, so it dies with the pass; whatever it started itself is killed by the
next pass's recovery. The lock is free at once (codes are exec'd, they do not inherit
it). The next pass marks the run ``abandoned`` and builds it again, once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.faults.invariants import assert_consistent, engine_of, incoming_files, lock_is_free
from tests.faults.procs import code_processes, kill_group, spawn, wait_until
from tests.helpers import CliHarness, use_test_code


def _cmdlines(folder: Path) -> list[bytes]:
    out = []
    for pid in code_processes(folder):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                out.append(fh.read())
        except OSError:
            pass
    return out


def _codes(folder: Path) -> list[bytes]:
    return [c for c in _cmdlines(folder) if b"behave.py" in c]


def _sleepers(folder: Path) -> list[bytes]:
    return [c for c in _cmdlines(folder) if c.startswith(b"sleep\0")]


def _running_runs(cli: CliHarness) -> list[dict[str, object]]:
    return cli.json("runs", "--status", "running")  # type: ignore[no-any-return]


def test_sigkill_of_the_pass_kills_its_codes_and_the_run_is_redone_once(
    applied: CliHarness, tmp_path: Path
) -> None:
    use_test_code(applied, "L0_to_L1", "spawn-wait", when="20160102")
    originals = incoming_files(applied)
    staging = applied.root / ".dbproc-staging"
    log = tmp_path / "pass.log"
    first = spawn(applied, "run", env={"BEHAVE_SLEEP": "120"}, log=log)
    try:
        wait_until(lambda: _sleepers(staging), 30, "the code and its child to run")
        (running,) = [r for r in _running_runs(applied) if r["date"] == "2016-01-02"]
        # codes are exec'd without our descriptors: none holds the lock file (SQLite)
        lock_file = applied.db + ".lock"
        for pid in code_processes(staging):
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue  # another day's code finished meanwhile: it held nothing
            for fd in fds:
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                assert target != lock_file, f"code process {pid} holds the pass lock"
        os.kill(first.pid, signal.SIGKILL)  # the pass alone, as the OOM killer would
        first.wait(timeout=10)
    finally:
        kill_group(first)
    # the lock went with the pass at once (codes are exec'd: they do not inherit it) ...
    with engine_of(applied) as engine:
        assert lock_is_free(engine)
    # ... and so did every code (parent-death signal); only what a code started itself
    # may outlive it until the next pass
    wait_until(lambda: not _codes(staging), 5, "the codes to die with their pass")

    result = applied.run("--json", "run", env={"BEHAVE_SLEEP": "0"})
    assert result.exit_code == 0, result.output
    # nothing the killed code started survives the recovery
    assert code_processes(staging) == []
    runs = applied.json("runs", "--limit", "0")
    again = [r for r in runs if r["process"] == "L0_to_L1" and r["date"] == "2016-01-02"]
    assert sorted(r["status"] for r in again) == ["abandoned", "succeeded"]
    assert {r["id"] for r in again if r["status"] == "abandoned"} == {running["id"]}
    assert_consistent(applied, originals)
    assert applied.json("run")["process"]["counts"] == {"runs": 0}


def test_dbproc_never_forks_without_exec() -> None:
    """A forked child (no exec) would keep the flock after its pass died
    (reliability.md B1); codes are started with subprocess (fork+exec) only."""
    import re

    import dbproc

    for path in Path(dbproc.__file__).parent.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"\bos\.fork\(|\bos\.forkpty\(|multiprocessing", text), path


def test_recovery_kills_only_processes_of_codes(tmp_path: Path) -> None:
    """kill_strays finds a code's child by the DBPROC_RUN_DIR it inherited, wherever it
    runs; a process merely looking around in staging (an operator's shell) is spared."""
    import subprocess

    from dbproc.executors.base import RUN_DIR_VAR
    from dbproc.executors.strays import kill_strays

    staging = tmp_path / ".dbproc-staging"
    run_dir = staging / "run-7" / "run-abc"
    run_dir.mkdir(parents=True)
    stray = subprocess.Popen(
        ["sleep", "60"], cwd=tmp_path, env={**os.environ, RUN_DIR_VAR: str(run_dir)}
    )
    visitor = subprocess.Popen(["sleep", "60"], cwd=run_dir)
    other = subprocess.Popen(["sleep", "60"], env={**os.environ, RUN_DIR_VAR: "/elsewhere/x"})
    try:
        assert kill_strays(staging) == [stray.pid]
        assert stray.wait(timeout=5) == -signal.SIGKILL
        assert visitor.poll() is None and other.poll() is None
    finally:
        for proc in (stray, visitor, other):
            proc.kill()
            proc.wait()
