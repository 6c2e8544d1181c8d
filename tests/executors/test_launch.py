"""How a code is started (dbproc/executors/launch.py): the same results through every
wrapper, and ``dbproc-launch`` itself (dbproc/executors/launcher.c, built by setup.py).

Each result test runs real codes through ``run_spec`` with the launcher, with its
fallback ``setpriv`` + GNU ``time``, and with ``setpriv`` alone.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dbproc.executors import launch
from dbproc.executors.base import JobResult, JobSpec
from dbproc.executors.worker import run_spec
from tests.executors.cluster import Proc, wait_for, wait_gone

_ids = itertools.count(1)
WRAPPERS = ["launcher", "setpriv-time", "setpriv"]


@pytest.fixture(params=WRAPPERS)
def wrapper(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which wrapper starts the codes of this test."""
    name = str(request.param)
    if name == "launcher":
        assert launch.LAUNCHER is not None, (
            "dbproc-launch was not built: reinstall dbproc (pip install -e .) where a C "
            "compiler is found"
        )
        return name
    if launch.SETPRIV is None:
        pytest.skip("setpriv is not installed")
    monkeypatch.setattr(launch, "LAUNCHER", None)
    if name == "setpriv":
        monkeypatch.setattr(launch, "GNU_TIME", None)
    elif launch.GNU_TIME is None:
        pytest.skip("GNU time is not installed")
    return name


def _code(tmp_path: Path, source: str, *args: str, **kwargs: Any) -> JobResult:
    """Run the Python code ``source`` with ``args`` through run_spec."""
    run_id = next(_ids)
    code = tmp_path / f"code-{run_id}.py"
    code.write_text(source)
    root = tmp_path / f"job-{run_id}"
    root.mkdir()
    return run_spec(
        JobSpec(
            run_id=run_id,
            attempt=1,
            argv=(sys.executable, str(code), *args),
            run_root=str(root),
            **kwargs,
        )
    )


def test_a_code_ends_as_it_exited_or_died(wrapper: str, tmp_path: Path) -> None:
    exits = "import sys; sys.exit(int(sys.argv[1]))"
    dies = "import os, signal, sys; os.kill(os.getpid(), getattr(signal, sys.argv[1]))"
    for status in ("0", "7", "130"):  # 130 is 128 + SIGINT, yet a plain exit status
        result = _code(tmp_path, exits, status)
        assert (result.exit_code, result.signal) == (int(status), None), result
    result = _code(tmp_path, dies, "SIGUSR1")
    assert (result.status, result.exit_code, result.signal) == (
        "code_failed",
        None,
        signal.SIGUSR1,
    )
    assert result.error == "killed by signal SIGUSR1"
    # the wrapper leaves nothing behind in the run root (no report file)
    assert [p.name for p in Path(result.run_dir or "").parent.iterdir()] == [
        Path(result.run_dir or "").name
    ]


def test_a_timeout_says_which_signal_ended_the_code(wrapper: str, tmp_path: Path) -> None:
    """SIGTERM reaches the code, never a wrapper that stays to report (it would then
    report nothing, and the code would wait for the SIGKILL after the grace)."""
    sleeps = "import time; print('started', flush=True); time.sleep(300)"
    result = _code(tmp_path, sleeps, timeout=1.0, kill_grace=30.0)
    assert (result.status, result.signal) == ("timeout", signal.SIGTERM), result
    assert result.ended is not None and result.started is not None
    assert result.ended - result.started < 20  # ended by the SIGTERM, not the grace


def test_peak_memory_is_the_codes_own(wrapper: str, tmp_path: Path) -> None:
    ballast = bytearray(300 * 1024 * 1024)  # a big controller: run_spec runs in this process
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    touches = "import sys; b = bytearray(int(sys.argv[1]) << 20); b[::4096] = b'x' * len(b[::4096])"
    small, big = _code(tmp_path, touches, "1"), _code(tmp_path, touches, "120")
    assert small.ok and big.ok
    assert small.peak_memory_kb is not None and big.peak_memory_kb is not None
    if wrapper == "setpriv":  # no small process to fork the code from: the runner's figure
        assert small.peak_memory_kb >= 300 * 1024
    else:
        assert small.peak_memory_kb < 60 * 1024, small.peak_memory_kb
        assert 120 * 1024 <= big.peak_memory_kb < 250 * 1024, big.peak_memory_kb
    del ballast


def test_a_code_inherits_no_descriptor_but_its_three_streams(wrapper: str, tmp_path: Path) -> None:
    lists = (
        "import json, os\n"
        "fds = {}\n"
        "for fd in os.listdir('/proc/self/fd'):\n"
        "    try: fds[fd] = os.readlink(f'/proc/self/fd/{fd}')\n"
        "    except OSError: pass\n"
        "print(json.dumps(fds))\n"
    )
    result = _code(tmp_path, lists)
    assert result.ok, result
    fds = json.loads(result.stdout_tail)
    listing = [fd for fd, target in fds.items() if target.startswith("/proc/")]
    inherited = {fd: fds[fd] for fd in sorted(set(fds) - set(listing))}
    if wrapper == "setpriv-time":  # GNU time leaves its -o file open in the code
        assert Path(inherited.pop("3")).name.startswith(".rusage-run-"), fds
    assert sorted(inherited) == ["0", "1", "2"], fds


# -- dbproc-launch on its own -------------------------------------------------------------


@pytest.fixture
def launcher() -> str:
    assert launch.LAUNCHER is not None, "dbproc-launch was not built (see setup.py)"
    return launch.LAUNCHER


def _launch(launcher: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [launcher, "1", str(os.getpid()), *argv], cwd=cwd, capture_output=True, text=True
    )


def test_the_launcher_never_hands_a_file_to_a_shell(launcher: str, tmp_path: Path) -> None:
    script = tmp_path / "no-shebang"
    script.write_text("touch ran-by-a-shell\n")
    script.chmod(0o755)
    done = _launch(launcher, "./no-shebang", cwd=tmp_path)
    assert done.returncode == 126, done
    assert "cannot run ./no-shebang: Exec format error" in done.stderr
    assert not (tmp_path / "ran-by-a-shell").exists()
    # the same file found on PATH is refused the same way
    env_path = f"{tmp_path}:{os.environ['PATH']}"
    found = subprocess.run(
        [launcher, "1", str(os.getpid()), "no-shebang"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": env_path},
    )
    assert found.returncode == 126 and not (tmp_path / "ran-by-a-shell").exists(), found


def test_the_launcher_reports_the_code_and_exits_as_it_did(launcher: str, tmp_path: Path) -> None:
    ok = _launch(launcher, "true", cwd=tmp_path)  # a bare name is looked up on PATH
    status, peak = launch._parse_launch(ok.stdout.encode())
    assert (ok.returncode, status) == (0, 0) and peak is not None and peak > 0
    failed = _launch(launcher, "sh", "-c", "exit 3", cwd=tmp_path)
    assert failed.returncode == 3 and launch._parse_launch(failed.stdout.encode())[0] == 3
    killed = _launch(launcher, "sh", "-c", "kill -USR1 $$", cwd=tmp_path)
    assert killed.returncode == 128 + signal.SIGUSR1
    assert launch._parse_launch(killed.stdout.encode())[0] == -signal.SIGUSR1
    missing = _launch(launcher, "./not-there", cwd=tmp_path)
    assert missing.returncode == 127 and "No such file or directory" in missing.stderr
    usage = subprocess.run([launcher, "x", "1"], capture_output=True, text=True)
    assert usage.returncode == 125 and "usage: dbproc-launch" in usage.stderr


def test_the_launcher_runs_nothing_when_its_runner_is_already_gone(
    launcher: str, tmp_path: Path
) -> None:
    """It is told its runner's pid: a launcher whose parent is not that process (the
    runner died before the death signal was armed) must not start the code."""
    done = subprocess.run(
        [launcher, "1", "1", "touch", "started"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 125 and not (tmp_path / "started").exists()


def test_the_launcher_and_its_code_die_with_their_runner(launcher: str, tmp_path: Path) -> None:
    runner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys\n"
            f"p = subprocess.Popen([{launcher!r}, '1', str(os.getpid()), 'sleep', '300'])\n"
            "print(p.pid, flush=True)\n"
            "p.wait()\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert runner.stdout is not None
        launcher_pid = int(runner.stdout.readline())
        children = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children")
        wait_for(lambda: children.read_text().split(), 30, "the launcher to fork its code")
        code_pid = int(children.read_text().split()[0])
        procs = [Proc(launcher_pid), Proc(code_pid)]
        runner.kill()
        runner.wait(timeout=30)
        wait_gone(procs)
    finally:
        runner.kill()
        runner.wait(timeout=30)
