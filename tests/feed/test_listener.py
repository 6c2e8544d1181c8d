"""A listener process following ``events --follow --json``, SIGKILLed at random points
while passes run and restarted from its last stored seq, sees every event exactly once,
in order (§14)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.procs import spawn
from tests.helpers import CliHarness, drop

LISTENER = Path(__file__).with_name("listener.py")


def start_listener(cli: CliHarness, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(LISTENER), cli.db, str(log)],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill9(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def lines_in(log: Path) -> int:
    return log.read_bytes().count(b"\n") if log.exists() else 0


def wait_for(predicate: object, timeout: float = 60.0) -> bool:
    """Bounded poll of a state (never a fixed sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def all_seqs(cli: CliHarness) -> list[int]:
    out = cli.ok("events", "--json").stdout
    return [json.loads(line)["seq"] for line in out.splitlines() if line.strip()]


@pytest.mark.slow
def test_a_killed_listener_sees_every_event_once_in_order(
    applied: CliHarness, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    log = tmp_path / "listener.log"
    listener = start_listener(applied, log)
    kills = 0
    try:
        for round_no in range(4):
            for n in range(2):
                nnn = 4 + round_no * 2 + n
                drop(applied.incoming, f"testDB_000_{nnn:03d}.raw", f"part {nnn}\n")
            before = lines_in(log)
            pass_proc = spawn(applied, "run")
            while pass_proc.poll() is None:
                target = before + rng.randint(0, 6)
                wait_for(
                    lambda t=target, p=pass_proc: lines_in(log) >= t or p.poll() is not None,
                    timeout=30,
                )
                kill9(listener)
                kills += 1
                listener = start_listener(applied, log)
                before = lines_in(log)
            assert pass_proc.wait(timeout=120) == 0
        expected = all_seqs(applied)

        def caught_up() -> bool:
            text = log.read_text() if log.exists() else ""
            return bool(text.endswith("\n")) and f'"seq": {expected[-1]},' in text

        assert wait_for(caught_up, timeout=60), f"seed {seed}"
    finally:
        kill9(listener)
    seen = [json.loads(line)["seq"] for line in log.read_text().splitlines() if line.strip()]
    assert kills >= 4, f"seed {seed}"
    assert seen == expected, f"seed {seed}: duplicates or gaps after {kills} kills"
