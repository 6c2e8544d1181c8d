"""Test helpers: a CLI harness and whole-database / file-tree snapshots."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w
from click.testing import CliRunner, Result
from sqlalchemy import MetaData, create_engine, select

from dbproc.cli import cli as dbproc_cli
from dbproc.db.engine import database_url


class CliHarness:
    """Runs ``dbproc`` commands in-process against one database and mission."""

    def __init__(self, db: str, mission_file: Path) -> None:
        self.db = db
        self.mission_file = mission_file
        self.mission_dir = mission_file.parent
        self.root = self.mission_dir / "data"
        self.incoming = self.root / "incoming"
        self.errors = self.root / "errors"

    def run(self, *args: str, db: bool = True, env: dict[str, str] | None = None) -> Result:
        """Invoke ``dbproc [--db DB] ARGS``; never raises for a non-zero exit."""
        argv = (["--db", self.db] if db else []) + list(args)
        return CliRunner().invoke(dbproc_cli, argv, env=env, catch_exceptions=False)

    def ok(self, *args: str, code: int = 0) -> Result:
        """Invoke and assert the exit code."""
        result = self.run(*args)
        assert result.exit_code == code, (
            f"dbproc {' '.join(args)} exited {result.exit_code}, expected {code}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        """Invoke with ``--json``, assert the exit code and return the parsed stdout."""
        return json.loads(self.ok(*args, "--json", code=code).stdout)


def dump_database(db: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: equal dumps mean an unchanged database."""
    engine = create_engine(database_url(db))
    meta = MetaData()
    meta.reflect(engine)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for name, table in sorted(meta.tables.items()):
            rows = [tuple(repr(v) for v in row) for row in conn.execute(select(table))]
            out[name] = sorted(rows)
    engine.dispose()
    return out


def tree_state(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Relative path -> (mode, content) for every file and link under ``folder``."""
    state: dict[str, tuple[int, bytes]] = {}
    if not folder.exists():
        return state
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                state[rel] = (0, os.readlink(path).encode())
            else:
                state[rel] = (path.stat().st_mode, path.read_bytes())
    return state


DATA = Path(__file__).resolve().parent / "data"


def edit_mission(
    mission_file: Path, mutate: Callable[[dict[str, Any]], None], name: str | None = None
) -> Path:
    """Write a changed copy of a mission file (beside it, or over it when ``name`` is None)."""
    doc = tomllib.loads(mission_file.read_text())
    mutate(doc)
    target = mission_file if name is None else mission_file.with_name(name)
    target.write_text(tomli_w.dumps(doc))
    return target


def use_test_code(cli: CliHarness, process: str, mode: str, when: str = "all", **code: Any) -> None:
    """Make ``process`` run tests/data/codes/behave.py in ``mode`` and apply the mission."""
    import shutil

    scripts = cli.mission_dir / "codes" / "scripts"
    shutil.copy(DATA / "codes" / "behave.py", scripts / "behave.py")

    def mutate(doc: dict[str, Any]) -> None:
        section = doc["processes"][process]["code"]
        section["path"] = "scripts/behave.py"
        section["args"] = [mode, "{DATE}", when]
        section.update(code)

    edit_mission(cli.mission_file, mutate)
    cli.ok("config", "apply", str(cli.mission_file))


def drop(folder: Path, name: str, content: bytes | str, *, age: float = 60.0) -> Path:
    """Put a complete file in ``folder`` as a producer would (mtime ``age`` seconds ago)."""
    import time

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """JSON rows keyed by filename."""
    return {r["filename"]: r for r in rows}
