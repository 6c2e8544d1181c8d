"""Reading typed values out of a parsed TOML document, collecting problems."""

from __future__ import annotations

import ast
import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dbproc.mission.model import resolve_code_path


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, table: str, key: str | None, problem: str, fix: str) -> None:
        where = f"[{table}]" + (f" {key}" if key else "")
        self.items.append(f"{where}: {problem}; {fix}")


def check_keys(
    problems: Problems,
    table: str,
    value: Mapping[str, Any],
    allowed: set[str],
    required: tuple[str, ...] = (),
) -> None:
    for key in value:
        if key not in allowed:
            problems.add(
                table, key, "unknown key", f"remove it or use one of: {', '.join(sorted(allowed))}"
            )
    for key in required:
        if key not in value:
            problems.add(table, key, "missing key", "add it (it is required)")


def is_table(problems: Problems, table: str, value: object) -> bool:
    if isinstance(value, dict):
        return True
    problems.add(
        table,
        None,
        f"must be a table, got {type(value).__name__}",
        f"write it as [{table}] with keys below it",
    )
    return False


def resolve_dir(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def string(
    problems: Problems,
    table: str,
    key: str,
    value: object,
    *,
    required: bool = False,
    allow_empty: bool = False,
) -> str | None:
    if value is None:
        if required:
            problems.add(table, key, "missing key", "add it (it is required)")
        return None
    if not isinstance(value, str):
        problems.add(
            table, key, f"must be a string, got {type(value).__name__} {value!r}", "quote the value"
        )
        return None
    if not allow_empty and not value.strip():
        problems.add(table, key, "must not be empty", "give a value")
        return None
    if "\x00" in value:
        problems.add(table, key, "contains a NUL character", "remove it")
        return None
    return value


def parse_date(problems: Problems, table: str, key: str, value: object) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        problems.add(table, key, f"must be a date, got a date-time {value}", "write YYYY-MM-DD")
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    problems.add(table, key, f"{value!r} is not a date", "write YYYY-MM-DD, e.g. 2016-01-01")
    return None


def integer(
    problems: Problems, table: str, key: str, value: object, default: int, minimum: int
) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        problems.add(
            table,
            key,
            f"must be a whole number >= {minimum}, got {value!r}",
            f"write e.g. {key} = {max(default, minimum)}",
        )
        return default
    return value


def positive(problems: Problems, table: str, key: str, value: object) -> float | None:
    """An optional number of seconds > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        problems.add(table, key, f"must be a number of seconds > 0, got {value!r}", "write e.g. 60")
        return None
    return float(value)


def check_code_file(
    problems: Problems, table: str, key: str, codes: Path, path: str
) -> Path | None:
    given = Path(path).expanduser()
    resolved = resolve_code_path(codes, path)
    if not given.is_absolute():
        try:
            resolved.resolve().relative_to(codes.resolve())
        except ValueError:
            problems.add(
                table,
                key,
                f"{path!r} lies outside the codes folder {codes}",
                "move it under [mission].codes or give an absolute path",
            )
            return None
    if not resolved.is_file():
        problems.add(
            table,
            key,
            f"{resolved} does not exist or is not a file",
            "fix the path (relative to [mission].codes) or create the file",
        )
        return None
    return resolved


def defines_function(path: Path, function: str) -> bool | str:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError) as exc:
        return f"is not valid Python ({exc})"
    except OSError as exc:
        return f"cannot be read ({exc})"
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == function for t in node.targets
        ):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (a.asname or a.name) == function for a in node.names
        ):
            return True
    return False
