"""The CLI frame: database selection, option placement, exit codes, errors, logging."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from dbproc.cli import cli as dbproc_cli
from dbproc.db import schema
from dbproc.db.engine import create_db_engine
from tests.helpers import CliHarness


def test_db_and_json_before_or_after_the_command(applied: CliHarness) -> None:
    runner = CliRunner()
    before = runner.invoke(dbproc_cli, ["--db", applied.db, "--json", "db", "current"])
    after = runner.invoke(dbproc_cli, ["db", "current", "--db", applied.db, "--json"])
    env = runner.invoke(dbproc_cli, ["db", "current", "--json"], env={"DBPROC_DB": applied.db})
    assert before.exit_code == after.exit_code == env.exit_code == 0
    assert before.stdout == after.stdout == env.stdout
    assert '"status": "current"' in before.stdout


def test_no_database_given_is_a_usage_error() -> None:
    result = CliRunner().invoke(dbproc_cli, ["db", "current"], env={"DBPROC_DB": ""})
    assert result.exit_code == 2
    assert "Error: no database given" in result.stderr


def test_unreachable_server_names_url_without_password() -> None:
    url = "postgresql+psycopg2://alice:s3cret@127.0.0.1:1/mission"
    result = CliRunner().invoke(dbproc_cli, ["--db", url, "db", "current"])
    assert result.exit_code == 2  # contract section 11: a URL that cannot be opened
    assert (
        "Error: cannot connect to database postgresql+psycopg2://alice:***@127.0.0.1:1/mission"
        in result.stderr
    )
    assert "s3cret" not in result.output
    assert "Traceback" not in result.output


def test_bare_postgresql_url_uses_the_installed_driver() -> None:
    import importlib.util

    from dbproc.db.engine import database_url

    url = database_url("postgresql://alice@db.example:5432/mission")
    expected = "postgresql" if importlib.util.find_spec("psycopg") else "postgresql+psycopg2"
    assert url.drivername == expected
    assert url.host == "db.example" and url.database == "mission"
    assert database_url("postgresql+psycopg2://a@b/c").drivername == "postgresql+psycopg2"
    assert database_url("sqlite:///x.sqlite").drivername == "sqlite"


def test_bare_postgresql_url_reaches_the_server() -> None:
    from tests.conftest import PG_URL, require_postgres

    require_postgres()
    bare = PG_URL.replace("postgresql+psycopg2://", "postgresql://", 1)
    result = CliRunner().invoke(dbproc_cli, ["--db", bare, "db", "current"])
    assert "No module named" not in result.output
    assert result.exit_code in (0, 5), result.output


def test_unwritable_sqlite_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        dbproc_cli, ["--db", str(tmp_path / "no" / "dir" / "m.sqlite"), "db", "current"]
    )
    assert result.exit_code == 2
    assert "folder" in result.stderr and "does not exist" in result.stderr


def test_empty_database_exits_5(cli: CliHarness) -> None:
    result = cli.run("config", "export")
    assert result.exit_code == 5
    assert "dbproc config apply" in result.stderr


def test_database_behind_the_code_exits_5(applied: CliHarness) -> None:
    engine = create_db_engine(applied.db)
    schema.downgrade(engine, "base")
    engine.dispose()
    result = applied.run("config", "export")
    assert result.exit_code == 5
    result = applied.run("config", "apply", str(applied.mission_file))
    assert result.exit_code == 0  # an emptied database is set up again by apply


def test_unknown_revision_is_a_clear_error(applied: CliHarness) -> None:
    engine = create_db_engine(applied.db)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    result = applied.run("config", "export")
    assert result.exit_code == 1 and "newer dbproc" in result.stderr


def test_db_upgrade_is_idempotent(applied: CliHarness) -> None:
    result = applied.json("db", "upgrade")
    assert result["before"] == result["after"] == schema.head_revision()


def test_bad_option_is_exit_2(applied: CliHarness) -> None:
    result = applied.run("config", "export", "--no-such-option")
    assert result.exit_code == 2


def test_log_file_gets_utc_lines(cli: CliHarness, tmp_path: Path) -> None:
    log = tmp_path / "logs" / "dbproc.log"
    result = cli.run("--log-file", str(log), "-v", "config", "apply", str(cli.mission_file))
    assert result.exit_code == 0
    lines = log.read_text().splitlines()
    assert lines, "the log file is empty"
    import re

    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", line) for line in lines)
    assert "s3cret" not in log.read_text()


def test_import_creates_no_file_and_configures_no_logging(tmp_path: Path) -> None:
    code = (
        "import logging, dbproc, dbproc.api, dbproc.cli, dbproc.admin.registry\n"
        "assert not logging.getLogger('dbproc').handlers\n"
        "assert not logging.getLogger().handlers\n"
    )
    env = {**os.environ, "HOME": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_every_command_has_help() -> None:
    def walk(group: object, prefix: list[str]) -> list[list[str]]:
        out = []
        for name, cmd in getattr(group, "commands", {}).items():
            out.append(prefix + [name])
            out.extend(walk(cmd, prefix + [name]))
        return out

    for path in walk(dbproc_cli, []):
        result = CliRunner().invoke(dbproc_cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Usage:" in result.stdout
