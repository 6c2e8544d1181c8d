"""Commands that set the database up: ``config apply|export`` and ``db upgrade|current``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import click

from dbproc.cli.provenance import builds_text
from dbproc.cli.state import AppState, command
from dbproc.errors import UsageError
from dbproc.examples import write_example


@click.group("config")
def config_group() -> None:
    """Register the mission file, or print the registered mission."""


@command(config_group, "apply")
@click.argument("mission_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
def config_apply(state: AppState, mission_file: Path, dry_run: bool) -> None:
    """Register or update the mission from MISSION_FILE (TOML).

    Creates the schema on an empty database. Idempotent: applying the same file twice
    changes nothing. A changed code.version registers a new code version and queues
    its process for rebuilding; nothing built is ever deleted.

    Example:

    \b
        dbproc --db mission.sqlite config apply mission.toml --dry-run
    """
    result = state.archive().apply_config(mission_file, dry_run=dry_run)
    lines = [c.describe() for c in result.changes]
    if result.created_schema:
        lines.insert(
            0, "created the database schema" if not dry_run else "would create the database schema"
        )
    if not lines:
        lines = ["nothing changed"]
    if result.replan_processes:
        verb = "would queue" if dry_run else "queued"
        lines.append(f"{verb} for replanning: " + ", ".join(result.replan_processes))
    if dry_run:
        lines += builds_text(result.builds)
        lines.append("dry run: nothing was changed")
    state.emit(result, "\n".join(lines))


@command(config_group, "export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
def config_export(state: AppState, output: Path | None) -> None:
    """Print the registered mission as a mission file (TOML).

    Applying the exported file changes nothing.

    Example:

    \b
        dbproc --db mission.sqlite config export -o mission-registered.toml
    """
    text = state.archive().export_config()
    if output is not None:
        output.write_text(text, encoding="utf-8")
        state.emit({"written": str(output)}, f"wrote {output}")
    elif state.json:
        state.emit(tomllib.loads(text))
    else:
        click.echo(text, nl=False)


@click.group("db")
def db_group() -> None:
    """Database schema: upgrade it, show its revision."""


@command(db_group, "upgrade")
def db_upgrade(state: AppState) -> None:
    """Migrate the database schema to the newest revision.

    Example:

    \b
        dbproc --db postgresql+psycopg2://dbproc@dbhost/mission db upgrade
    """
    before, after = state.archive().upgrade_schema()
    text = (
        f"schema already at {after}"
        if before == after
        else f"schema upgraded from {before or 'empty'} to {after}"
    )
    state.emit({"before": before, "after": after}, text)


@command(db_group, "current")
def db_current(state: AppState) -> None:
    """Show the database's schema revision and this dbproc's newest.

    Example:

    \b
        dbproc --db mission.sqlite db current
    """
    current, head = state.archive().schema_revision()
    status = "current" if current == head else ("empty" if current is None else "behind")
    state.emit(
        {"current": current, "head": head, "status": status},
        f"database: {current or 'empty'}; dbproc: {head} ({status})",
    )


@click.command("example")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--no-data", is_flag=True, help="Leave the incoming folder empty.")
def example(folder: Path, no_data: bool) -> None:
    """Write a small worked mission (the rot13 chain) into FOLDER to try dbproc on.

    FOLDER gets mission.toml, codes/ (an inspector and three codes) and data/incoming/
    with six raw files.

    Example:

    \b
        dbproc example ./my-mission
        dbproc --db my-mission/mission.sqlite config apply my-mission/mission.toml
        dbproc --db my-mission/mission.sqlite run
    """
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} is not empty; give a new or empty folder")
    mission_file = write_example(folder, with_incoming=not no_data)
    click.echo(
        f"wrote {mission_file} with codes/ and data/incoming/; next:\n"
        f"  dbproc --db {folder / 'mission.sqlite'} config apply {mission_file}\n"
        f"  dbproc --db {folder / 'mission.sqlite'} run"
    )


def register(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
    cli.add_command(config_group)
    cli.add_command(db_group)
    cli.add_command(example)
