"""The ``[products.*]`` tables: names, levels, folders, formats, inspectors, cadences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbproc.mission.fields import (
    Problems,
    check_code_file,
    check_keys,
    defines_function,
    is_table,
    positive,
    string,
)
from dbproc.mission.model import NAME_RE, MissionSettings, ProductConfig, split_inspector_spec
from dbproc.naming import FilenameFormat, FormatError, dir_template_fields

PRODUCT_KEYS = {
    "level",
    "dir",
    "format",
    "inspector",
    "inspector_args",
    "instrument",
    "satellite",
    "description",
    "inspector_timeout",
    "review",
    "cadence",
}

_CADENCE_UNITS = {"s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400}


def cadence_seconds(text: str) -> int | None:
    """``"1h"`` -> 3600; None unless a whole number of a unit, at most one day, divides it."""
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number) :]
    if not number.isdigit() or unit not in _CADENCE_UNITS:
        return None
    seconds = int(number) * _CADENCE_UNITS[unit]
    if seconds <= 0 or seconds > 86400 or 86400 % seconds:
        return None
    return seconds


def parse_products(
    problems: Problems, value: object, mission: MissionSettings | None
) -> dict[str, ProductConfig]:
    out: dict[str, ProductConfig] = {}
    if not is_table(problems, "products", value):
        return out
    assert isinstance(value, dict)
    folded: dict[str, str] = {}
    for name, body in value.items():
        table = f"products.{name}"
        _check_product_name(problems, table, name, folded)
        if not is_table(problems, table, body):
            continue
        product = _parse_product(problems, table, name, body, mission)
        if product is not None:
            out[name] = product
    return out


def _check_product_name(problems: Problems, table: str, name: str, folded: dict[str, str]) -> None:
    """A product name must be usable and differ from the earlier ones by more than case."""
    twin = folded.setdefault(name.casefold(), name)
    if twin != name:
        problems.add(
            table,
            None,
            f"product name {name!r} differs from product {twin!r} only by case",
            "product names must differ by more than case (--product matches either); rename one",
        )
    if not NAME_RE.match(name):
        problems.add(
            table,
            None,
            f"product name {name!r} is not usable",
            "use letters, digits, '_', '-', '.' (at most 100)",
        )


def _parse_product(
    problems: Problems,
    table: str,
    name: str,
    body: dict[str, Any],
    mission: MissionSettings | None,
) -> ProductConfig | None:
    """One ``[products.NAME]`` table; None when a required key is missing or unusable."""
    check_keys(problems, table, body, PRODUCT_KEYS, required=("level", "dir", "format"))
    level = _level(problems, table, body.get("level"))
    dir_ = string(problems, table, "dir", body.get("dir"))
    if dir_ is not None:
        check_dir_template(problems, table, dir_)
    fmt_text, fmt = _format(problems, table, body.get("format"))
    inspector = string(problems, table, "inspector", body.get("inspector"))
    if inspector is not None and mission is not None:
        _check_inspector(problems, table, inspector, mission)
    if fmt is not None and inspector is None and not fmt.has_date:
        problems.add(
            table,
            "format",
            f"{fmt_text!r} has no complete date and the product has no inspector",
            "add {Y}{m}{d} (or {DATE}) or give an inspector",
        )
    args = _inspector_args(problems, table, body.get("inspector_args", {}))
    strings = {
        k: string(problems, table, k, body.get(k))
        for k in ("instrument", "satellite", "description")
    }
    inspector_timeout = positive(
        problems, table, "inspector_timeout", body.get("inspector_timeout")
    )
    review = _review(problems, table, body.get("review", False))
    cadence = _cadence(problems, table, body.get("cadence"))
    if level is None or dir_ is None or fmt_text is None:
        return None
    return ProductConfig(
        name,
        float(level),
        dir_,
        fmt_text,
        inspector,
        dict(args),
        strings["instrument"],
        strings["satellite"],
        strings["description"],
        inspector_timeout,
        review,
        cadence,
    )


def _level(problems: Problems, table: str, level: object) -> int | float | None:
    if level is None:
        return None
    if isinstance(level, bool) or not isinstance(level, (int, float)):
        problems.add(table, "level", f"must be a number, got {level!r}", "write e.g. level = 1")
        return None
    return level


def _format(
    problems: Problems, table: str, value: object
) -> tuple[str | None, FilenameFormat | None]:
    """The format as written and parsed (None where it is missing or does not parse)."""
    fmt_text = string(problems, table, "format", value)
    fmt = None
    if fmt_text is not None:
        try:
            fmt = FilenameFormat.parse(fmt_text)
        except FormatError as exc:
            problems.add(table, "format", str(exc), "fix the format")
    return fmt_text, fmt


def _check_inspector(
    problems: Problems, table: str, inspector: str, mission: MissionSettings
) -> None:
    """The inspector file exists under the codes folder and defines its function."""
    ipath, function = split_inspector_spec(inspector)
    resolved = check_code_file(problems, table, "inspector", mission.codes, ipath)
    if resolved is None:
        return
    defined = defines_function(resolved, function)
    if defined is not True:
        problem = (
            f"{resolved} {defined}"
            if isinstance(defined, str)
            else f"{resolved} defines no function {function!r}"
        )
        problems.add(
            table,
            "inspector",
            problem,
            "define it, or name the function as 'path.py:function'",
        )


def _inspector_args(problems: Problems, table: str, args: object) -> dict[Any, Any]:
    if not isinstance(args, dict):
        problems.add(
            table,
            "inspector_args",
            f"must be a table, got {args!r}",
            'write e.g. inspector_args = { apid = "000" }',
        )
        return {}
    return args


def _review(problems: Problems, table: str, review: object) -> bool:
    if not isinstance(review, bool):
        problems.add(
            table, "review", f"must be true or false, got {review!r}", "write review = true"
        )
        return False
    return review


def _cadence(problems: Problems, table: str, value: object) -> str | None:
    cadence = string(problems, table, "cadence", value)
    if cadence is not None and cadence_seconds(cadence) is None:
        problems.add(
            table,
            "cadence",
            f"{cadence!r} is not a cadence",
            'write e.g. cadence = "1h" (units s, min, h, d; at most a day)',
        )
    return cadence


def check_dir_template(problems: Problems, table: str, dir_: str) -> None:
    try:
        fields = dir_template_fields(dir_)
    except FormatError as exc:
        problems.add(table, "dir", str(exc), "fix the template")
        return
    bad = sorted(fields - {"Y", "m", "d", "j", "y", "b", "DATE"})
    if bad:
        problems.add(
            table,
            "dir",
            f"field(s) {', '.join(bad)} are not allowed in a folder",
            "use only {Y} {m} {d} {j} {y} {b} {DATE}",
        )
    parts = Path(dir_).parts
    if Path(dir_).is_absolute() or ".." in parts or "\\" in dir_:
        problems.add(
            table,
            "dir",
            f"{dir_!r} must stay inside the data root",
            "give a relative folder without '..'",
        )
    elif parts and parts[0].startswith("."):
        problems.add(
            table,
            "dir",
            f"{dir_!r} starts with '.', which dbproc keeps for itself",
            "choose a folder name not starting with '.'",
        )
