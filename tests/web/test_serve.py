"""``dbproc serve`` as a user starts it: a real subprocess on a loopback port, its
option checks, and the message when the web extra is missing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import CliHarness


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, proc: subprocess.Popen[bytes], bound: float = 30.0) -> bytes:
    """GET ``url`` once the server answers (polled, bounded)."""
    deadline = time.monotonic() + bound
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bytes(response.read())
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # polling a server that is starting, not synchronising a test


def test_serve_runs_until_terminated(built: CliHarness) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbproc", "--db", built.db, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        status = json.loads(_wait_for(f"http://127.0.0.1:{port}/api/status", proc))
        assert status["mission"] == "testDB"
        page = _wait_for(f"http://127.0.0.1:{port}/", proc).decode()
        assert "Mission testDB" in page
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert b"read-only" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--allow-actions"], "needs --token-file"),
        (["--token-file", "tok"], "only used with --allow-actions"),
        (["--allow-actions", "--token-file", "missing-token"], "cannot read it"),
    ],
)
def test_serve_refuses_bad_options(
    built: CliHarness, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [str(tmp_path / a) if a.endswith("token") else a for a in args]
    result = built.run("serve", *args)
    assert result.exit_code == 2 and message in result.output


def test_serve_refuses_a_token_others_can_read(built: CliHarness, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("x" * 32)
    token.chmod(0o644)
    result = built.run("serve", "--allow-actions", "--token-file", str(token))
    assert result.exit_code == 2 and "chmod 600" in result.output
    token.write_text("short")
    token.chmod(0o600)
    result = built.run("serve", "--allow-actions", "--token-file", str(token))
    assert result.exit_code == 2 and "at least 16" in result.output


def test_serve_without_the_extra_says_how_to_install(
    built: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "dbproc.web.server", None)  # as if not installed
    result = built.run("serve")
    assert result.exit_code == 2 and "pip install 'dbproc[web]'" in result.output
