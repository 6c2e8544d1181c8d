"""What a person sees in a real terminal during `dbproc run`: log lines above the
progress bar, never glued onto it (a pseudo-terminal read through a VT100 emulator)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from typing import Any

import pyte

from tests.helpers import CliHarness, edit_mission

SLOW_CODE = """\
import pathlib, sys, time
time.sleep(0.3)
*inputs, output = sys.argv[1:]
with open(output, "wb") as out:
    for name in inputs:
        out.write(pathlib.Path(name).read_bytes())
"""
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|DEBUG) ")


def _screen_of(argv: list[str], columns: int = 120, lines: int = 60) -> list[str]:
    screen = pyte.Screen(columns, lines)
    stream = pyte.ByteStream(screen)
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": str(lines), "TERM": "xterm"}
    env.pop("DBPROC_DB", None)
    proc = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    bars_seen = 0
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            assert ready, "no output from dbproc for 60 s"
            try:
                data = os.read(leader, 65536)
            except OSError:  # the follower side closed: the process is done
                break
            if not data:
                break
            stream.feed(data)
            bars_seen += any("so far" in line for line in screen.display)
    finally:
        proc.wait(timeout=120)
        os.close(leader)
    assert proc.returncode == 0
    assert bars_seen, "the progress bar was never drawn"
    return [line.rstrip() for line in screen.display]


def test_log_lines_and_the_bar_share_one_console(applied: CliHarness) -> None:
    script = applied.mission_dir / "codes" / "scripts" / "slow.py"
    script.write_text(SLOW_CODE)

    def mutate(doc: dict[str, Any]) -> None:
        for name in ("L0_to_L1", "L1_to_L2"):
            doc["processes"][name]["code"].update(path="scripts/slow.py", args=[])

    edit_mission(applied.mission_file, mutate)
    applied.ok("config", "apply", str(applied.mission_file))
    shown = [
        line
        for line in _screen_of(
            [sys.executable, "-m", "dbproc", "--db", applied.db, "run", "--jobs", "2"]
        )
        if line
    ]
    logs = [line for line in shown if STAMP.match(line)]
    assert len(logs) >= 18, shown  # 6 ingested, 12 runs
    summary = shown[len(logs) :]
    assert shown[: len(logs)] == logs, shown  # every log line whole, on its own line
    assert summary[0].startswith("ingest: 6 ingested"), shown
    assert not any("━" in line or "so far" in line for line in shown), shown  # bar gone
    assert all(line.count("Z INFO") + line.count("Z WARNING") <= 1 for line in shown)
