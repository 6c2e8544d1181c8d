"""Codes are untrusted (contract section 10): never through a shell, output streamed
and capped, their own peak memory, a mission-wide default timeout, logs kept tidy."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db.models import Run
from tests.faults.invariants import engine_of
from tests.helpers import DATA, CliHarness
from tests.usercode.codes import LOUD, l1_runs, use_code

SHELL_BAIT = "touch {marker}\n$(touch {marker})\necho `touch {marker}`\n"


def test_an_executable_without_shebang_is_refused_at_apply(applied: CliHarness) -> None:
    marker = applied.mission_dir / "PWNED"
    path = use_code(applied, "tool", SHELL_BAIT.format(marker=marker), [], mode=0o755, apply_code=2)
    result = applied.run("config", "apply", str(applied.mission_file))
    assert result.exit_code == 2
    assert str(path) in result.stderr and "#!" in result.stderr
    assert not marker.exists()


def test_no_shell_even_when_the_code_loses_its_shebang_after_apply(
    applied: CliHarness,
) -> None:
    marker = applied.mission_dir / "PWNED"
    path = use_code(applied, "tool", "#!/bin/sh\nexit 1\n", [], mode=0o755)
    path.write_text(SHELL_BAIT.format(marker=marker))  # a chmod -R, a Windows share...
    report = applied.json("run", code=3)
    failed = [r for r in report["process"]["runs"] if r["status"] != "succeeded"]
    assert failed and all("#!" in (r.get("error") or "") for r in failed), failed
    assert not marker.exists()
    assert not list(applied.mission_dir.rglob("PWNED"))


def test_a_python_code_with_its_run_bit_but_no_shebang_runs_with_python(
    applied: CliHarness,
) -> None:
    marker = applied.mission_dir / "PWNED"
    source = (DATA / "codes" / "behave.py").read_text()
    assert not source.startswith("#!")
    source = source.replace('"""A test code', f'"""$(touch {marker}) A test code', 1)
    use_code(applied, "behave.py", source, ["concat", "{DATE}", "all"], mode=0o755)
    report = applied.json("run")
    assert report["exit_code"] == 0 and report["process"]["runs"]
    assert not marker.exists()
    assert all(r["argv"][0] == sys.executable for r in l1_runs(applied))


def test_each_stream_keeps_its_head_and_tail_within_the_limit(applied: CliHarness) -> None:
    use_code(
        applied,
        "loud.py",
        LOUD,
        ["print", "2", "{DATE}", "20160101"],
        execution={"log_limit_bytes": 65536},
    )
    applied.ok("run")
    run = next(r for r in l1_runs(applied) if r["date"] == "2016-01-01")
    log = Path(run["log"])
    assert log.stat().st_size < 65536 + 4096
    text = log.read_text()
    assert "HEAD-MARK" in text and "TAIL-MARK" in text
    cut = 2 * 1024 * 1024 + len("HEAD-MARK\nTAIL-MARK\n") - 65536
    assert f"… {cut} bytes cut …" in text
    assert "TAIL-MARK" in run["stdout_tail"]
    assert not list(applied.root.rglob("*.tail"))  # the ring files are gone


CONTROLLER = """
import atexit, os, runpy, sys
def peak():
    with open("/proc/self/status") as fh:
        hwm = next(line.split()[1] for line in fh if line.startswith("VmHWM"))
    with open(os.environ["PEAK_FILE"], "w") as out:
        out.write(hwm)
atexit.register(peak)
sys.argv = ["dbproc"] + sys.argv[1:]
runpy.run_module("dbproc", run_name="__main__")
"""


def _controller_peak_kb(cli: CliHarness, tmp: Path) -> int:
    """Run ``dbproc run`` in a process of its own; its peak resident memory in KiB."""
    script = tmp / "controller.py"
    script.write_text(CONTROLLER)
    result_file = tmp / "peak.txt"
    subprocess.run(
        [sys.executable, str(script), "--db", cli.db, "run"],
        check=True,
        capture_output=True,
        timeout=600,
        env={**os.environ, "PEAK_FILE": str(result_file)},
    )
    return int(result_file.read_text())


def test_the_controller_memory_does_not_grow_with_what_a_code_prints(
    cli: CliHarness, tmp_path: Path
) -> None:
    use_code(cli, "loud.py", LOUD, ["print", "0", "{DATE}", "20160101"])
    quiet = _controller_peak_kb(cli, tmp_path)
    cli.ok("reprocess", "--process", "L0_to_L1")
    use_code(cli, "loud.py", LOUD, ["print", "200", "{DATE}", "20160101"])
    loud = _controller_peak_kb(cli, tmp_path)
    run = next(r for r in reversed(l1_runs(cli)) if r["date"] == "2016-01-01")
    assert "TAIL-MARK" in run["stdout_tail"] and run["status"] == "succeeded"
    assert loud - quiet < 10 * 1024, (quiet, loud)


def test_peak_memory_is_the_codes_own_not_the_controllers(applied: CliHarness) -> None:
    ballast = bytearray(300 * 1024 * 1024)  # a big controller (the test runs it in-process)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    use_code(applied, "loud.py", LOUD, ["alloc", "120", "{DATE}", "20160102"])
    applied.ok("run")
    peaks = {r["date"]: r["peak_memory_kb"] for r in l1_runs(applied)}
    assert peaks["2016-01-02"] >= 120 * 1024, peaks
    assert peaks["2016-01-02"] < 250 * 1024, peaks
    quiet = [kb for day, kb in peaks.items() if day != "2016-01-02"]
    assert quiet and all(kb < 60 * 1024 for kb in quiet), peaks
    del ballast


def test_code_timeout_is_the_default_for_codes_without_one(applied: CliHarness) -> None:
    source = (DATA / "codes" / "behave.py").read_text()
    use_code(
        applied,
        "behave.py",
        source,
        ["sleep", "{DATE}", "20160101"],
        execution={"code_timeout": 1, "kill_grace_seconds": 1},
    )
    result = applied.run("--json", "run", env={"BEHAVE_SLEEP": "120"})
    assert result.exit_code == 3
    runs = {r["date"]: r for r in l1_runs(applied)}
    assert runs["2016-01-01"]["status"] == "timeout"
    assert "timeout of 1 s" in runs["2016-01-01"]["error"]


def test_successful_logs_are_pruned_after_run_logs_days_failed_ones_on_request(
    applied: CliHarness,
) -> None:
    source = (DATA / "codes" / "behave.py").read_text()
    use_code(
        applied, "behave.py", source, ["fail", "{DATE}", "20160101"], retention={"run_logs_days": 1}
    )
    applied.ok("run", code=3)
    runs = l1_runs(applied)
    ok_logs = [Path(r["log"]) for r in runs if r["status"] == "succeeded"]
    failed = next(r for r in runs if r["status"] == "failed")
    assert ok_logs and all(p.is_file() for p in ok_logs)
    with engine_of(applied) as engine, Session(engine) as session:
        session.execute(update(Run).values(ended_at=utcnow() - dt.timedelta(days=2)))
        session.commit()
    applied.ok("run")  # nothing new to build; the pass ends by pruning
    assert not any(p.exists() for p in ok_logs)
    assert Path(failed["log"]).is_file()  # failed runs keep theirs
    pruned = applied.json("runs", "prune", "--failed")
    assert pruned["failed_runs"] >= 1
    assert not Path(failed["log"]).parent.exists()
    assert all(r["log"] is None for r in l1_runs(applied) if r["id"] == failed["id"])


def test_a_missing_root_is_refused_at_apply_and_nothing_is_created(
    cli: CliHarness, tmp_path: Path
) -> None:
    doc = cli.mission_file.read_text().replace('root = "data"', 'root = "/nonexistent/root"')
    cli.mission_file.write_text(doc)
    result = cli.run("config", "apply", str(cli.mission_file))
    assert result.exit_code == 2
    assert "/nonexistent/root" in result.stderr and "does not exist" in result.stderr
    assert not Path("/nonexistent").exists()


def test_incoming_outside_the_root_is_never_created(cli: CliHarness, tmp_path: Path) -> None:
    elsewhere = tmp_path / "share" / "incoming"
    doc = cli.mission_file.read_text().replace('incoming = "incoming"', f'incoming = "{elsewhere}"')
    cli.mission_file.write_text(doc)
    result = cli.run("config", "apply", str(cli.mission_file))
    assert result.exit_code == 2 and str(elsewhere) in result.stderr
    assert not elsewhere.parent.exists()
    elsewhere.mkdir(parents=True)  # the share is mounted
    cli.ok("config", "apply", str(cli.mission_file))
