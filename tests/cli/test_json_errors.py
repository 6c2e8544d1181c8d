"""Contract section 11: with --json every failure is one JSON object on stdout whose
exit_code is the process's exit code; timestamps in JSON are UTC with a Z."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from dbproc.cli import cli as dbproc_cli
from dbproc.cli.funnel import KINDS
from dbproc.cli.reference import command_paths
from tests.helpers import CliHarness

PATHS = command_paths(dbproc_cli)


def _command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = dbproc_cli
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


def _arguments(cmd: click.Command, tmp_path: Path) -> list[str]:
    """Values for the required arguments of ``cmd`` (any command, also ones added later)."""
    values = []
    for param in cmd.params:
        if not isinstance(param, click.Argument) or not param.required:
            continue
        if isinstance(param.type, click.Path) and param.type.exists:
            existing = tmp_path / "some_file.raw"
            existing.write_text("x")
            values.append(str(existing))
        elif isinstance(param.type, click.types.IntParamType):
            values.append("1")
        else:
            values.append(str(tmp_path / "new_folder_or_name"))
    return values


def _takes_db(cmd: click.Command) -> bool:
    return any(isinstance(p, click.Option) and "--db" in p.opts for p in cmd.params)


def _one_error_object(result: Any) -> dict[str, Any]:
    data = json.loads(result.stdout)  # one JSON document, nothing else on stdout
    assert isinstance(data, dict) and set(data) == {"error"}, result.stdout
    error = data["error"]
    assert error["exit_code"] == result.exit_code != 0, (result.exit_code, result.stdout)
    assert error["kind"] in KINDS
    assert error["message"] and "Traceback" not in result.output
    return error


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_usage_error_of_every_command_is_one_json_object(
    path: tuple[str, ...], tmp_path: Path
) -> None:
    args = [*path, *_arguments(_command(path), tmp_path), "--no-such-option", "--json"]
    result = CliRunner().invoke(dbproc_cli, args)
    error = _one_error_object(result)
    assert error["kind"] == "usage" and error["exit_code"] == 2
    assert "--no-such-option" in error["message"]


@pytest.mark.parametrize("path", [p for p in PATHS if _takes_db(_command(p))], ids=" ".join)
def test_database_error_of_every_command_is_one_json_object(
    path: tuple[str, ...], tmp_path: Path
) -> None:
    cmd = _command(path)
    if isinstance(cmd, click.Group) and not cmd.invoke_without_command:
        pytest.skip("a group that only holds commands")
    db = str(tmp_path / "no_such_folder" / "mission.sqlite")
    args = [*path, *_arguments(cmd, tmp_path), "--db", db, "--json"]
    result = CliRunner().invoke(dbproc_cli, args)
    _one_error_object(result)
    assert not (tmp_path / "no_such_folder").exists()


def test_click_usage_error_before_the_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(dbproc_cli, ["--json", "--bogus", "files"])
    assert _one_error_object(result)["kind"] == "usage"
    result = CliRunner().invoke(dbproc_cli, ["--json", "no-such-command"])
    assert _one_error_object(result)["kind"] == "usage"


def test_errors_without_json_stay_prose(tmp_path: Path) -> None:
    result = CliRunner().invoke(dbproc_cli, ["files", "--db", str(tmp_path / "x" / "m.sqlite")])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("Error: ") and "does not exist" in result.stderr


def test_unknown_file_in_a_real_process(applied: CliHarness) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dbproc", "--db", applied.db, "--json", "lineage", "nosuch.cat"],
        capture_output=True,
        text=True,
        check=False,
    )
    data = json.loads(proc.stdout)
    assert data["error"]["exit_code"] == proc.returncode == 2
    assert data["error"]["kind"] == "usage" and "nosuch.cat" in data["error"]["message"]


def test_bad_mission_file_is_a_config_error_object(cli: CliHarness) -> None:
    bad = cli.mission_dir / "bad.toml"
    bad.write_text("[mission]\nname = 3\n")
    result = cli.run("config", "apply", str(bad), "--json")
    error = _one_error_object(result)
    assert error["kind"] == "config" and error["exit_code"] == 2
    assert error["problems"]


def test_schema_and_lock_kinds(applied: CliHarness) -> None:
    from dbproc.db import schema
    from dbproc.db.engine import create_db_engine

    engine = create_db_engine(applied.db)
    schema.downgrade(engine, "base")
    engine.dispose()
    error = _one_error_object(applied.run("status", "--json"))
    assert error["kind"] == "schema" and error["exit_code"] == 5


def test_failed_runs_answer_with_their_report_and_an_error(applied: CliHarness) -> None:
    (applied.incoming / "testDB_999_000.raw").write_text("not a raw file at all\n")
    result = applied.run("run", "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == 3
    assert data["exit_code"] == 3 and data["error"]["exit_code"] == 3
    assert data["error"]["kind"] == "failed" and "ingest" in data


_STAMP = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d")


def _timestamps(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _timestamps(v)]
    if isinstance(value, list):
        return [s for v in value for s in _timestamps(v)]
    return [value] if isinstance(value, str) and _STAMP.match(value) else []


def test_every_json_timestamp_is_utc_with_z(applied: CliHarness) -> None:
    (applied.incoming / "testDB_999_000.raw").write_text("rejected\n")
    applied.run("run")
    name = applied.json("files")[0]["filename"]
    outputs = [
        applied.json("status"),
        applied.json("files", "--all-versions"),
        applied.json("runs"),
        applied.json("runs", "show", "1"),
        applied.json("rejects", "--all"),
        applied.json("lineage", name),
        applied.json("explain", name),
        applied.json("plan"),
        applied.json("check", "--quick"),
    ]
    stamps = [s for out in outputs for s in _timestamps(out)]
    assert len(stamps) > 10
    naive = [s for s in stamps if not s.endswith("Z")]
    assert not naive, naive


def _open_error(db: str) -> dict[str, Any]:
    result = CliRunner().invoke(dbproc_cli, ["--db", db, "status", "--json"])
    error = _one_error_object(result)
    assert error["kind"] == "database" and error["exit_code"] == 2, error
    return error


def test_databases_that_cannot_be_opened_exit_2(tmp_path: Path) -> None:
    not_a_db = tmp_path / "notes.sqlite"
    not_a_db.write_text("these are my notes, not a database\n" * 100)
    assert "not a database" in _open_error(str(not_a_db))["message"]
    assert not_a_db.read_text().startswith("these are my notes")
    assert "does not exist" in _open_error(str(tmp_path / "missing" / "m.sqlite"))["message"]
    assert "is a folder" in _open_error(str(tmp_path))["message"]
    closed = _open_error("postgresql+psycopg2://alice:s3cret@127.0.0.1:1/mission")
    assert "s3cret" not in closed["message"] and "***" in closed["message"]


def test_postgresql_user_or_database_that_does_not_exist_exits_2() -> None:
    from sqlalchemy.engine import make_url

    from tests.conftest import PG_URL, require_postgres

    require_postgres()
    url = make_url(PG_URL)
    no_role = url.set(username="no_such_role_i12", password="wrong")
    message = _open_error(no_role.render_as_string(hide_password=False))["message"]
    assert "wrong" not in message and "no_such_role_i12" in message
    _open_error(url.set(database="no_such_database_i12").render_as_string(hide_password=False))
