"""Issue 12: the command line a person trusts (global options anywhere, help texts,
terminal output, explain and runs wording, product names, rejects retry)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dbproc.cli import cli as dbproc_cli
from dbproc.cli.reference import command_paths
from dbproc.examples import write_example
from tests.helpers import CliHarness, drop, edit_mission, use_test_code


def test_global_options_after_the_command(applied: CliHarness, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "dbproc.log"
    result = applied.run("ingest", "-q", "--log-file", str(log))
    assert result.exit_code == 0
    assert "INFO" not in result.stderr  # -q quiets the terminal ...
    assert "ingested testDB_000_000.raw" in log.read_text()  # ... never the log file
    assert applied.run("reprocess", "--all", "--dry-run", "-q").exit_code == 0
    verbose = applied.run("process", "-v")
    assert verbose.exit_code == 0 and "DEBUG" in verbose.stderr
    assert applied.run("runs", "-q", "--json").exit_code == 0
    assert applied.run("rejects", "-v").exit_code == 0
    before = CliRunner().invoke(
        dbproc_cli, ["--traceback", "--db", str(tmp_path / "x" / "y"), "status"]
    )
    after = CliRunner().invoke(
        dbproc_cli, ["status", "--db", str(tmp_path / "x" / "y"), "--traceback"]
    )
    assert (
        type(before.exception).__name__ == type(after.exception).__name__ == "DatabaseUnreachable"
    )


@pytest.mark.parametrize("path", [(), *command_paths(dbproc_cli)], ids=" ".join)
def test_help_shows_examples_as_written(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(dbproc_cli, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0
    assert "\\b" not in result.output and "\b" not in result.output
    if "Example:" in result.output:
        example = result.output.split("Example:", 1)[1].split("Options:", 1)[0]
        lines = [line for line in example.splitlines() if line.strip()]
        assert lines and all(line.startswith("    ") for line in lines), example
        assert all(line.split().count("dbproc") <= 1 for line in lines), example  # one a line


def test_piped_output_stays_plain(applied: CliHarness) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dbproc", "--db", applied.db, "run"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stderr + proc.stdout
    assert "━" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line]
    assert lines and all(" INFO " in line or " WARNING " in line for line in lines)


def test_config_apply_prints_each_change_once(cli: CliHarness, tmp_path: Path) -> None:
    log = tmp_path / "apply.log"
    result = cli.run("config", "apply", str(cli.mission_file), "--log-file", str(log))
    assert result.exit_code == 0
    assert result.stdout.count("+ product L1") == 1
    assert "+ product L1" not in result.stderr
    assert "config apply: + product L1" in log.read_text()  # the log file keeps the record


def test_explain_says_each_word_once(applied: CliHarness) -> None:
    applied.ok("run")
    drop(applied.incoming, "testDB_000_004.raw", "Fifth Part.\n")
    applied.ok("run")
    superseded = applied.ok("explain", "testDB_20160104_v1.0.0.cat").stdout
    assert "superseded" in superseded and "superseded (superseded)" not in superseded
    ingested = applied.ok("explain", "testDB_000_000.raw").stdout
    assert "up to date (ingested)" in ingested and "(ingested) (ingested)" not in ingested


def _harness_with_spaces(tmp_path: Path, db_url: str) -> CliHarness:
    mission = write_example(tmp_path / "my mission")
    harness = CliHarness(db_url, mission)
    harness.ok("config", "apply", str(mission))
    return harness


def test_runs_show_quotes_the_command_and_names_the_process(db_url: str, tmp_path: Path) -> None:
    harness = _harness_with_spaces(tmp_path, db_url)
    use_test_code(harness, "L0_to_L1", "fail", when="20160102")
    harness.ok("run", code=3)
    failed = harness.json("runs", "--failed")[0]
    shown = harness.ok("runs", "show", str(failed["id"])).stdout
    assert f"  command: {shlex.join(failed['argv'])}" in shown
    assert "my mission" in shlex.join(failed["argv"]) and "'" in shown
    assert f"run {failed['id']}: process L0_to_L1 date" in shown  # the run log's header
    ok_run = next(r for r in harness.json("runs") if r["status"] == "succeeded")
    log_text = harness.json("runs", "show", str(ok_run["id"]))["log_text"]
    assert log_text.startswith(f"run {ok_run['id']}: process {ok_run['process']} date")


def test_wrote_no_file_lists_what_was_written(applied: CliHarness) -> None:
    script = applied.mission_dir / "codes" / "scripts" / "misnamed.py"
    script.write_text(
        "import pathlib, sys\n"
        "out = pathlib.Path(sys.argv[-1])\n"
        "out.with_name('v1.0.0_' + out.name).write_text('x')\n"
    )

    def mutate(doc: dict[str, Any]) -> None:
        doc["processes"]["L0_to_L1"]["code"].update(path="scripts/misnamed.py", args=[])

    edit_mission(applied.mission_file, mutate)
    applied.ok("config", "apply", str(applied.mission_file))
    applied.ok("run", code=3)
    failed = {r["date"]: r["error"] for r in applied.json("runs", "--failed")}
    error = failed["2016-01-01"]
    assert "wrote no file testDB_20160101_v1.0.0.cat" in error
    assert "it wrote: v1.0.0_testDB_20160101_v1.0.0.cat" in error


def test_leading_dash_file_name_suggests_double_dash(applied: CliHarness) -> None:
    result = applied.run("lineage", "-odd.cat")
    assert result.exit_code == 2
    assert "put -- before it" in result.stderr and "-- -odd.cat" in result.stderr
    result = applied.run("lineage", "--json", "--", "-odd.cat")
    assert result.exit_code == 2 and "no registered file" in result.stderr


def test_product_names_differ_by_more_than_case(cli: CliHarness) -> None:
    def twin(doc: dict[str, Any]) -> None:
        doc["products"]["l1"] = dict(doc["products"]["L1"], dir="other")

    bad = edit_mission(cli.mission_file, twin, name="twin.toml")
    result = cli.run("config", "apply", str(bad), "--json")
    error = json.loads(result.stdout)["error"]
    assert result.exit_code == 2 and error["kind"] == "config"
    assert "'l1' differs from product 'L1' only by case" in error["message"]


def test_product_option_ignores_case_and_names_near_matches(applied: CliHarness) -> None:
    applied.ok("run")
    assert applied.json("files", "--product", "l1") == applied.json("files", "--product", "L1")
    assert applied.json("explain", "--product", "l2", "--date", "2016-01-02")
    result = applied.run("files", "--product", "L3", "--json")
    error = json.loads(result.stdout)["error"]
    assert result.exit_code == 2 and "did you mean" in error["message"]
    assert "'L1'" in error["message"] or "'L2'" in error["message"]


def test_changed_product_dir_warns_about_registered_files(applied: CliHarness) -> None:
    applied.ok("run")

    def move(doc: dict[str, Any]) -> None:
        doc["products"]["L1"]["dir"] = "L1-new/{Y}"

    edit_mission(applied.mission_file, move)
    data = applied.json("config", "apply", str(applied.mission_file))
    warnings = [c for c in data["changes"] if c["action"] == "warning"]
    assert warnings and warnings[0]["name"] == "L1"
    assert "4 registered file(s) are not under the new dir" in warnings[0]["details"][0]
    text = applied.ok("config", "apply", str(applied.mission_file), "--dry-run").stdout
    assert "registered file" not in text  # already applied: nothing changes, no warning


def test_rejects_retry_restores_the_original_name(applied: CliHarness) -> None:
    odd = "testDB\n000_009.raw"
    drop(applied.incoming, odd, "Ninth.\n")
    applied.ok("ingest", code=3)
    rejects = applied.json("rejects")
    assert [r["reason"] for r in rejects] == ["bad_name"]
    assert rejects[0]["filename"] == "testDB\\x0a000_009.raw"
    result = applied.json("rejects", "retry")
    assert result["moved"] == ["testDB\\x0a000_009.raw"]
    assert sorted(os.listdir(applied.incoming)) == [odd]
