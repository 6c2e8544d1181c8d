"""``dbproc import-dbprocessing``: bring a dbprocessing archive under dbproc, in place."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dbproc.cli.state import AppState, command


def _progress(enabled: bool) -> Callable[[int, int], Callable[[int], None] | None]:
    def start(total: int, _done: int) -> Callable[[int], None] | None:
        if not enabled or total == 0:
            return None
        bar = click.progressbar(length=total, label="registering files", file=sys.stderr)
        bar.__enter__()

        def tick(n: int) -> None:
            bar.update(n)
            if bar.pos >= total:
                bar.__exit__(None, None, None)

        return tick

    return start


def register(cli: click.Group) -> None:  # long: it holds the commands, each short
    @command(cli, "import-dbprocessing")
    @click.option(
        "--from",
        "source",
        required=True,
        metavar="OLD",
        help="The dbprocessing database: a SQLite path or a PostgreSQL URL.",
    )
    @click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="OLD.conf",
        help="Its addFromConfig INI file, to compare.",
    )
    @click.option(
        "--mission-file",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="OUT.toml",
        help="Where to write the translated mission file.",
    )
    @click.option(
        "--old-root",
        type=click.Path(file_okay=False, path_type=Path),
        metavar="DIR",
        help="dbprocessing's rootdir, when it is stored relative "
        "(dbprocessing resolves it against the current folder).",
    )
    @click.option(
        "--dry-run", is_flag=True, help="Print the report and mission file; change nothing."
    )
    def import_dbprocessing(
        state: AppState,
        source: str,
        config: Path | None,
        mission_file: Path,
        old_root: Path | None,
        dry_run: bool,
    ) -> None:
        """Import a dbprocessing database and its files, in place (nothing is moved).

        Writes the mission file, registers products, processes, every code version with
        its date range, every file with its version and sha256, file and code links,
        releases and the process queue. What cannot be translated is listed. A rerun
        resumes an interrupted import.

        Example:

        \b
            dbproc --db new.sqlite import-dbprocessing --from old.sqlite \\
                --mission-file mission.toml --dry-run
        """
        report: Any = state.archive().import_dbprocessing(
            source,
            mission_file,
            config=config,
            old_root=old_root,
            dry_run=dry_run,
            progress=_progress(not state.json and sys.stderr.isatty()),
        )
        state.emit(report, report.text())
