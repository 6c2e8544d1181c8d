"""The dbprocessing INI file (``addFromConfig.py`` format), compared with the database.

The database is what dbprocessing ran, so it is what the import translates; the INI file
(when given) is read to report what it says and the database does not (addFromConfig never
updates: a process or product edited in the file after its first load is not in the DB).
"""

from __future__ import annotations

import configparser
from pathlib import Path

from dbproc.errors import UsageError
from dbproc.importing.legacy import LegacyDatabase
from dbproc.importing.report import ImportReport


def read_ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    try:
        with path.open() as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error) as exc:
        raise UsageError(
            f"--config {str(path)!r} cannot be read as a dbprocessing INI: {exc}"
        ) from None
    return parser


def compare_ini(path: Path, legacy: LegacyDatabase, report: ImportReport) -> None:
    parser = read_ini(path)
    mission = legacy.mission()
    names = {"{MISSION}": mission.name}
    products = {p.name for p in legacy.products()}
    processes = {p.name for p in legacy.processes()}
    for section in parser.sections():
        body = parser[section]
        if section.startswith("product"):
            name = body.get("product_name", "")
            for key, value in names.items():
                name = name.replace(key, value)
            if "{" not in name and name not in products:
                report.note(
                    "mission",
                    name,
                    f"[{section}] of {path.name} is not in the "
                    "database (addFromConfig never loaded it)",
                    "add it to the mission file by hand if it is wanted",
                )
        elif section.startswith("process"):
            name = body.get("process_name", "")
            if name and name not in processes:
                report.note(
                    "mission",
                    name,
                    f"[{section}] of {path.name} is not in the database",
                    "add it to the mission file by hand if it is wanted",
                )
    report.count("INI sections read", len(parser.sections()))
