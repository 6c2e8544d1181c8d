"""Start-up: each command imports what it needs, and the lazy stand-ins behave like the
real thing. Every check runs a new interpreter, as a command does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from dbproc.cli import COMMAND_MODULES, cli
from dbproc.lazy import lazy_module, lazy_names

REPORT_MODULES = """
import json, sys
from dbproc.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def modules_after(*argv: str, cwd: Path) -> set[str]:
    """The modules a new interpreter has imported after ``dbproc ARGV``."""
    run = subprocess.run(
        [sys.executable, "-c", REPORT_MODULES, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return set(json.loads(run.stderr.strip().splitlines()[-1]))


def loaded(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def test_version_imports_no_database_code(tmp_path: Path) -> None:
    modules = modules_after("--version", cwd=tmp_path)
    assert "dbproc.cli" in modules
    for heavy in (
        "sqlalchemy",
        "rich",
        "alembic",
        "dbproc.api",
        "dbproc.executors",
        "dbproc.cli.admin",
        "dbproc.cli.passes",
    ):
        assert not loaded(modules, heavy), heavy


def test_status_imports_only_what_it_needs(tmp_path: Path) -> None:
    from dbproc.examples import write_example

    mission = write_example(tmp_path / "mission")
    db = str(tmp_path / "m.sqlite")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from dbproc.cli import main; main()",
            "-q",
            "--db",
            db,
            "config",
            "apply",
            str(mission),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    modules = modules_after("--db", db, "status", cwd=tmp_path)
    assert "dbproc.admin.status" in modules and "sqlalchemy" in modules
    for unneeded in (
        "rich",
        "alembic",
        "dbproc.executors.local",
        "dbproc.cli.admin",
        "dbproc.cli.provenance",
        "dbproc.admin.reprocess",
        "dbproc.admin.check",
        "dbproc.control.passes",
        "dbproc.ingest.ingestor",
        "sqlalchemy.dialects.postgresql",  # the models' JSONB and partial index included
    ):
        assert not loaded(modules, unneeded), unneeded


def test_each_listed_command_lives_in_its_listed_module() -> None:
    import importlib

    for name, modules in COMMAND_MODULES.items():
        group = click.Group("probe")
        for module in modules:
            importlib.import_module(module).register(group)
        assert name in group.commands, f"{name} is not registered by {modules}"


def test_every_command_is_found_and_listed() -> None:
    ctx = click.Context(cli)
    names = cli.list_commands(ctx)
    assert set(COMMAND_MODULES) <= set(names)
    for name in names:
        assert cli.get_command(ctx, name) is not None


def test_a_lazy_module_imports_on_first_use() -> None:
    code = (
        "import sys; from dbproc.lazy import lazy_module; "
        "m = lazy_module('dbproc.version'); before = 'dbproc.version' in sys.modules; "
        "v = m.Version.parse('1.2.3'); print(before, 'dbproc.version' in sys.modules, v)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == ["False", "True", "1.2.3"]


def test_lazy_names_call_and_forward_attributes() -> None:
    import dbproc.version as real

    (version,) = lazy_names("dbproc.version", "Version")
    assert version(1, 2, 3) == real.Version(1, 2, 3)
    assert version.parse("2.0.0") == real.Version.parse("2.0.0")
    assert lazy_module("dbproc.version").Version is real.Version
    missing = lazy_module("dbproc.version")
    with pytest.raises(AttributeError):
        missing.no_such_name  # noqa: B018 - the access is the test


SECOND_COMMAND = """
import sys
from click.testing import CliRunner
from dbproc.cli import cli
runner = CliRunner()
runner.invoke(cli, [sys.argv[1], "--help"])  # registers its module first
result = runner.invoke(cli, ["runs", "prune", "--help"])
print(result.output)
sys.exit(result.exit_code)
"""


@pytest.mark.parametrize("first", ["files", "rejects", "runs"])
def test_a_group_gets_the_subcommands_of_every_module_after_another_command(
    first: str, tmp_path: Path
) -> None:
    """`runs` is made by one module and `runs prune` comes from another: one process that
    ran `files` first (which made `runs`) must still find `prune`."""
    run = subprocess.run(
        [sys.executable, "-c", SECOND_COMMAND, first],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Remove the logs of runs that ended long ago" in run.stdout
