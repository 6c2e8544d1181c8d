"""Contract section 11: read-only commands never create a database file and work on a
database the user can only read (SQLite file permissions; a PostgreSQL SELECT-only role)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dbproc.cli import cli as dbproc_cli
from dbproc.examples import write_example
from tests.conftest import PG_URL
from tests.helpers import CliHarness

READ_ONLY_COMMANDS = [
    ["status"],
    ["files"],
    ["plan"],
    ["plan", "--next"],
    ["runs"],
    ["rejects"],
    ["config", "export"],
    ["db", "current"],
]


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["files"],
        ["plan"],
        ["lineage", "x.cat"],
        ["explain", "x.cat"],
        ["config", "export"],
        ["runs"],
    ],
    ids=" ".join,
)
def test_read_only_command_creates_no_database_file(args: list[str], tmp_path: Path) -> None:
    typo = tmp_path / "typo.sqlite"
    result = CliRunner().invoke(dbproc_cli, ["--db", str(typo), *args, "--json"])
    assert result.exit_code == 5, result.output
    assert "does not exist" in json.loads(result.stdout)["error"]["message"]
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def shared_mission() -> Iterator[Path]:
    """The example mission after a run, in a folder another user may read but not write."""
    folder = Path(tempfile.mkdtemp(prefix="dbproc-ro-", dir="/tmp"))
    try:
        mission = write_example(folder / "mission")
        harness = CliHarness(str(folder / "mission.sqlite"), mission)
        harness.ok("config", "apply", str(mission))
        harness.ok("run")
        for path in [folder, *folder.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            path.chmod(
                (
                    mode
                    | stat.S_IRUSR
                    | stat.S_IRGRP
                    | stat.S_IROTH
                    | (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0)
                )
                & ~(stat.S_IWGRP | stat.S_IWOTH)
            )
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


def _as_reader(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run dbproc as a user who may read ``folder`` but not write it."""
    if os.geteuid() == 0:  # root writes anything: run as nobody
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    else:  # take write permission away from ourselves
        for path in [folder, *folder.rglob("*")]:
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
        prefix = []
    env = {**os.environ, "HOME": "/tmp"}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "dbproc", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd="/tmp",
    )


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.skipif(
    shutil.which("setpriv") is None and os.geteuid() == 0,
    reason="needs setpriv to run as another user",
)
def test_sqlite_database_the_user_can_only_read(shared_mission: Path) -> None:
    db = str(shared_mission / "mission.sqlite")
    before = _tree(shared_mission)
    for args in READ_ONLY_COMMANDS:
        proc = _as_reader(shared_mission, "--db", db, *args, "--json")
        assert proc.returncode == 0, (args, proc.stderr)
        json.loads(proc.stdout)
    files = json.loads(_as_reader(shared_mission, "--db", db, "files", "--json").stdout)
    name = files[0]["filename"]
    for args in (["lineage", name], ["explain", name]):
        proc = _as_reader(shared_mission, "--db", db, *args, "--json")
        assert proc.returncode == 0, (args, proc.stderr)
    status = json.loads(_as_reader(shared_mission, "--db", db, "status", "--json").stdout)
    assert status["lock"]["held"] is False
    # a command that writes says why it cannot, and exits 2 (not "a bug")
    proc = _as_reader(shared_mission, "--db", db, "reprocess", "--all", "--json")
    error = json.loads(proc.stdout)["error"]
    assert proc.returncode == error["exit_code"] == 2, proc.stderr
    assert error["kind"] == "database" and "write" in error["message"]
    assert _tree(shared_mission) == before


@pytest.fixture
def select_only_url(applied: CliHarness) -> Iterator[str]:
    """A URL to the applied-and-run PostgreSQL schema as a role with only SELECT."""
    if "://" not in applied.db:
        pytest.skip("PostgreSQL roles")
    applied.ok("run")
    url = make_url(applied.db)
    schema = url.query["options"].split("=", 1)[1]
    role = f"ro_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'))
    try:
        yield url.set(username=role, password=None).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def test_postgresql_role_with_only_select(select_only_url: str, applied: CliHarness) -> None:
    runner = CliRunner()
    for args in READ_ONLY_COMMANDS:
        result = runner.invoke(dbproc_cli, ["--db", select_only_url, *args, "--json"])
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.stdout)
    name = json.loads(
        runner.invoke(dbproc_cli, ["--db", select_only_url, "files", "--json"]).stdout
    )[0]["filename"]
    for args in (["lineage", name], ["explain", name]):
        result = runner.invoke(dbproc_cli, ["--db", select_only_url, *args, "--json"])
        assert result.exit_code == 0, (args, result.output)
    result = runner.invoke(dbproc_cli, ["--db", select_only_url, "reprocess", "--all", "--json"])
    error = json.loads(result.stdout)["error"]
    assert result.exit_code == error["exit_code"] == 2 and error["kind"] == "database"
