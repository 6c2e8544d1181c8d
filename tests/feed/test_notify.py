"""Notifiers (§14): at least once across crashes, bounded by their timeout, URL posts."""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.faults.procs import run_crashing
from tests.helpers import CliHarness, edit_mission, use_test_code

RECORDER = Path(__file__).with_name("record_event.py")


def add_notifiers(cli: CliHarness, *tables: dict[str, Any]) -> None:
    def mutate(doc: dict[str, Any]) -> None:
        doc["notify"] = list(tables)

    edit_mission(cli.mission_file, mutate)
    cli.ok("config", "apply", str(cli.mission_file))


def delivered(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def failed_seqs(cli: CliHarness) -> list[int]:
    out = cli.ok("events", "--kind", "run.failed", "--json").stdout
    return [json.loads(line)["seq"] for line in out.splitlines() if line.strip()]


def test_each_failure_reaches_the_notifier_at_least_once_across_crashes(
    applied: CliHarness, tmp_path: Path
) -> None:
    log = tmp_path / "pager.log"
    add_notifiers(
        applied,
        {
            "name": "pager",
            "on": ["run.failed"],
            "command": [
                sys.executable,
                str(RECORDER),
                str(log),
                "{kind}",
                "{filename}",
                "{date}",
                "{product}",
            ],
        },
    )
    use_test_code(applied, "L0_to_L1", "fail", when="20160102")
    applied.ok("run", code=3)
    first = delivered(log)
    assert [d["event"]["seq"] for d in first] == failed_seqs(applied)
    assert first[0]["argv"][0] == "run.failed" and first[0]["argv"][2] == "2016-01-02"
    assert first[0]["event"]["kind"] == "run.failed"

    # crash after the pass committed, before any delivery: the next pass delivers
    crashed = run_crashing(applied, "notify.before_delivery", 1, "run", "--retry-failed")
    assert crashed.returncode == -9
    assert len(failed_seqs(applied)) == 2 and len(delivered(log)) == 1
    applied.ok("run")
    assert [d["event"]["seq"] for d in delivered(log)] == failed_seqs(applied)

    # crash after sending, before the cursor moved: sent again (a duplicate, never a loss)
    crashed = run_crashing(applied, "notify.delivered", 1, "run", "--retry-failed")
    assert crashed.returncode == -9
    applied.ok("run")
    counts = Counter(d["event"]["seq"] for d in delivered(log))
    seqs = failed_seqs(applied)
    assert sorted(counts) == seqs and len(seqs) == 3
    assert [counts[s] for s in seqs] == [1, 1, 2]
    state = applied.json("notify")[0]
    assert state["name"] == "pager" and state["cursor"] >= seqs[-1] and state["failures"] == 0


def test_a_hanging_notifier_is_stopped_at_its_timeout_and_backs_off(
    applied: CliHarness, tmp_path: Path
) -> None:
    pid_file = tmp_path / "hang.pid"
    hang = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(3600)"
    add_notifiers(
        applied,
        {
            "name": "hang",
            "on": ["pass.finished"],
            "timeout": 1,
            "command": [sys.executable, "-c", hang, str(pid_file)],
        },
    )
    applied.ok("run")  # the pass itself succeeds
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists()  # stopped and reaped, not left running
    state = applied.json("notify")[0]
    assert state["failures"] == 1 and "did not finish within 1 s" in state["last_error"]
    assert state["retry_at"] is not None
    pid_file.unlink()
    applied.ok("run")  # backing off: not tried again yet
    assert not pid_file.exists()
    assert applied.json("notify")[0]["failures"] == 1


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook_url() -> Any:
    _Hook.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", _Hook.received
    finally:
        server.shutdown()
        server.server_close()


def test_a_url_notifier_gets_posts_and_notify_test_sends_one(
    applied: CliHarness, hook_url: Any
) -> None:
    url, received = hook_url
    add_notifiers(applied, {"name": "hook", "on": ["pass.finished", "file.built"], "url": url})
    result = applied.json("notify", "test", "hook")
    assert result["error"] is None and received[-1]["kind"] == "notify.test"
    assert applied.json("notify")[0]["cursor"] is not None
    applied.ok("run")
    kinds = [e["kind"] for e in received[1:]]
    assert kinds[-1] == "pass.finished" and kinds.count("file.built") == 12 - 4
    assert applied.ok("notify", "test", "nosuch", code=2)


def test_a_failing_notifier_never_fails_the_pass(applied: CliHarness, tmp_path: Path) -> None:
    add_notifiers(
        applied, {"name": "broken", "on": ["*"], "command": [str(tmp_path / "does-not-exist")]}
    )
    applied.ok("run")
    state = applied.json("notify")[0]
    assert state["failures"] == 1 and "cannot start" in state["last_error"]
    failed = applied.run("notify", "test", "broken")
    assert failed.exit_code == 3


@pytest.mark.parametrize(
    "table, problem",
    [
        ({"on": ["run.failed"]}, "exactly one of command and url"),
        ({"on": ["run.failed"], "command": "page me"}, "list of strings"),
        ({"on": [], "url": "https://x"}, "list of event kinds"),
        ({"on": ["run.failed"], "url": "ftp://x"}, "http(s)"),
        ({"on": ["run.failed"], "url": "https://x", "shell": True}, "unknown key"),
    ],
)
def test_bad_notify_tables_are_refused(
    cli: CliHarness, table: dict[str, Any], problem: str
) -> None:
    def mutate(doc: dict[str, Any]) -> None:
        doc["notify"] = [table]

    edit_mission(cli.mission_file, mutate)
    result = cli.ok("config", "apply", str(cli.mission_file), code=2)
    assert problem in result.stderr and "notify" in result.stderr
    assert os.path.exists(cli.mission_file)


def test_export_keeps_review_retention_and_notifiers(cli: CliHarness, tmp_path: Path) -> None:
    def mutate(doc: dict[str, Any]) -> None:
        doc["products"]["L1"]["review"] = True
        doc["retention"] = {"events_days": 30}
        doc["notify"] = [
            {
                "name": "pager",
                "on": ["run.failed"],
                "command": ["/bin/true", "{kind}"],
                "timeout": 5,
            }
        ]

    edit_mission(cli.mission_file, mutate)
    cli.ok("config", "apply", str(cli.mission_file))
    exported = cli.ok("config", "export").stdout
    assert "review = true" in exported and "events_days = 30" in exported
    assert "[[notify]]" in exported and 'name = "pager"' in exported
    again = tmp_path / "exported.toml"
    again.write_text(exported)
    result = cli.json("config", "apply", str(again))
    assert result["changes"] == []
