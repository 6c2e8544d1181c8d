"""The ``code`` of a ``[processes.NAME]`` table: one ``[processes.NAME.code]`` table or an
array of them (``[[processes.NAME.code]]``), each a path, a version, arguments, a validity
range and a timeout; several codes of a process must not overlap in time."""

from __future__ import annotations

import datetime as dt
import itertools

from dbproc.executors.launch import exec_problem
from dbproc.mission.fields import (
    Problems,
    check_code_file,
    check_keys,
    integer,
    is_table,
    parse_date,
    string,
)
from dbproc.mission.model import CodeConfig, MissionSettings
from dbproc.mission.tables import CODE_KEYS
from dbproc.version import Version


def parse_codes(
    problems: Problems, table: str, value: object, mission: MissionSettings | None
) -> tuple[CodeConfig, ...]:
    """``code``: one table, or an array of tables (``[[processes.NAME.code]]``) whose
    ``valid_from..valid_until`` ranges do not overlap; sorted by ``valid_from``."""
    if not isinstance(value, list):
        one = parse_code(problems, table, value, mission)
        return (one,) if one is not None else ()
    if not value:
        problems.add(table, "code", "is an empty array", f"add a [[{table}.code]] table")
        return ()
    codes: list[CodeConfig] = []
    for i, item in enumerate(value):
        parsed = parse_code(problems, table, item, mission, f"{table}.code[{i}]")
        if parsed is not None:
            codes.append(parsed)
    if len(codes) != len(value):
        return ()
    codes.sort(key=lambda c: c.valid_from or dt.date.min)
    seen: dict[Version, CodeConfig] = {}
    for code in codes:
        if code.version in seen:
            problems.add(
                f"{table}.code",
                "version",
                f"two codes have version {code.version} ({seen[code.version].path} and "
                f"{code.path})",
                "give each code of a process its own version",
            )
        seen[code.version] = code
    for a, b in itertools.combinations(codes, 2):
        if _ranges_overlap(a, b):
            problems.add(
                f"{table}.code",
                "valid_from",
                f"code {describe_code(a)} and code {describe_code(b)} overlap "
                f"{max(a.valid_from or dt.date.min, b.valid_from or dt.date.min)}.."
                f"{min(a.valid_until or dt.date.max, b.valid_until or dt.date.max)}",
                "make the valid_from..valid_until ranges disjoint "
                "(each output date is built by one code)",
            )
    return tuple(codes)


def describe_code(code: CodeConfig) -> str:
    """``"1.0.0 (l1.py, 2010-01-01..2014-12-31)"``."""
    return (
        f"{code.version} ({code.path}, {code.valid_from or '-inf'}..{code.valid_until or '+inf'})"
    )


def _ranges_overlap(a: CodeConfig, b: CodeConfig) -> bool:
    a_lo, a_hi = a.valid_from or dt.date.min, a.valid_until or dt.date.max
    b_lo, b_hi = b.valid_from or dt.date.min, b.valid_until or dt.date.max
    return a_lo <= b_hi and b_lo <= a_hi


def parse_code(
    problems: Problems,
    table: str,
    value: object,
    mission: MissionSettings | None,
    ctable: str | None = None,
) -> CodeConfig | None:
    """One code table (``ctable``, by default ``{table}.code``), or None when it is unusable."""
    ctable = ctable or f"{table}.code"
    if value is None:
        problems.add(table, "code", "missing key", f"add a [{ctable}] table with path and version")
        return None
    if not is_table(problems, ctable, value):
        return None
    assert isinstance(value, dict)
    check_keys(problems, ctable, value, CODE_KEYS, required=("path", "version"))
    path = string(problems, ctable, "path", value.get("path"))
    if path is not None and mission is not None:
        _check_executable(problems, ctable, path, mission)
    version = _parse_version(problems, ctable, value.get("version"))
    output_interface = integer(
        problems, ctable, "output_interface", value.get("output_interface"), 1, 1
    )
    args = _parse_args(problems, ctable, value.get("args", []))
    valid_from = parse_date(problems, ctable, "valid_from", value.get("valid_from"))
    valid_until = parse_date(problems, ctable, "valid_until", value.get("valid_until"))
    if valid_from and valid_until and valid_from > valid_until:
        problems.add(
            ctable,
            "valid_until",
            f"{valid_until} is before valid_from {valid_from}",
            "swap or fix the dates",
        )
    timeout = _parse_timeout(problems, ctable, value.get("timeout"))
    description = string(problems, ctable, "description", value.get("description"))
    if path is None or version is None:
        return None
    return CodeConfig(
        path,
        version,
        output_interface,
        tuple(args),
        valid_from,
        valid_until,
        float(timeout) if timeout is not None else None,
        description,
    )


def _check_executable(problems: Problems, ctable: str, path: str, mission: MissionSettings) -> None:
    """The code file exists under the codes folder and can be executed."""
    resolved = check_code_file(problems, ctable, "path", mission.codes, path)
    problem = exec_problem(resolved) if resolved is not None else None
    if problem is not None:
        problems.add(
            ctable,
            "path",
            f"{resolved}: {problem.split(': add ')[0]}",
            "add a first line such as '#!/usr/bin/env python3', or name a Python code *.py",
        )


def _parse_version(problems: Problems, ctable: str, raw_version: object) -> Version | None:
    """``version = "x.y.z"``; None when absent or not a version."""
    if raw_version is None:
        return None
    version = None
    try:
        version = Version.parse(raw_version) if isinstance(raw_version, str) else None
    except ValueError:
        version = None
    if version is None:
        problems.add(
            ctable,
            "version",
            f"{raw_version!r} is not a version x.y.z",
            'write e.g. version = "1.0.0" (interface >= 1)',
        )
    return version


def _parse_args(problems: Problems, ctable: str, args: object) -> list[str]:
    """``args``: a list of strings (none containing NUL); empty when it is not one."""
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        problems.add(
            ctable,
            "args",
            f"must be a list of strings, got {args!r}",
            'write e.g. args = ["--flag", "{DATE}"]',
        )
        return []
    if any("\x00" in a for a in args):
        problems.add(ctable, "args", "an argument contains a NUL character", "remove it")
    return args


def _parse_timeout(problems: Problems, ctable: str, timeout: object) -> int | float | None:
    """``timeout``: seconds > 0, or None (absent or unusable)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        problems.add(
            ctable,
            "timeout",
            f"must be a number of seconds > 0, got {timeout!r}",
            "write e.g. timeout = 3600",
        )
        return None
    return timeout
