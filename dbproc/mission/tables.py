"""The ``[mission]``, ``[products.*]`` and optional settings tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbproc.mission.fields import (
    Problems,
    check_code_file,
    check_keys,
    defines_function,
    integer,
    is_table,
    resolve_dir,
    string,
)
from dbproc.mission.model import (
    NAME_RE,
    ExecutionSettings,
    MissionSettings,
    ProductConfig,
    split_inspector_spec,
)
from dbproc.naming import FilenameFormat, FormatError, dir_template_fields

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


MISSION_KEYS = {"name", "root", "incoming", "errors", "codes"}
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
PROCESS_KEYS = {"output", "timebase", "inputs", "code", "description", "early_cutoff"}
INPUT_KEYS = {"product", "before", "after", "optional"}
CODE_KEYS = {
    "path",
    "version",
    "output_interface",
    "args",
    "valid_from",
    "valid_until",
    "timeout",
    "description",
}
TOP_KEYS = {
    "mission",
    "products",
    "processes",
    "ingest",
    "lock",
    "execution",
    "retention",
    "notify",
}
INGEST_KEYS = {
    "settle_seconds",
    "settle_check_seconds",
    "inspector_timeout",
    "inspector_workers",
    "max_answer_bytes",
    "allow_empty",
}
LOCK_KEYS = {"stale_after_seconds", "heartbeat_seconds"}
EXECUTION_KEYS = {
    "executor",
    "jobs",
    "scheduler",
    "kill_grace_seconds",
    "code_timeout",
    "log_limit_bytes",
}
RETENTION_KEYS = {"run_logs_days"}


def parse_mission_table(
    problems: Problems, value: object, base_dir: Path
) -> MissionSettings | None:
    if value is None:
        return None
    if not is_table(problems, "mission", value):
        return None
    assert isinstance(value, dict)
    check_keys(problems, "mission", value, MISSION_KEYS, required=("name", "root", "incoming"))
    name = string(problems, "mission", "name", value.get("name"))
    if name is not None and not NAME_RE.match(name):
        problems.add(
            "mission",
            "name",
            f"{name!r} is not a usable name",
            "use letters, digits, '_', '-', '.' (at most 100)",
        )
    root_s = string(problems, "mission", "root", value.get("root"))
    incoming_s = string(problems, "mission", "incoming", value.get("incoming"))
    errors_s = string(problems, "mission", "errors", value.get("errors", "errors"))
    codes_s = string(problems, "mission", "codes", value.get("codes", "."))
    if None in (name, root_s, incoming_s, errors_s, codes_s):
        return None
    assert name and root_s and incoming_s and errors_s and codes_s
    root = resolve_dir(base_dir, root_s)
    incoming = resolve_dir(root, incoming_s)
    errors = resolve_dir(root, errors_s)
    codes = resolve_dir(base_dir, codes_s)
    if incoming == root:
        problems.add(
            "mission",
            "incoming",
            "is the data root itself",
            'use a folder of its own, e.g. incoming = "incoming"',
        )
    if errors == root:
        problems.add(
            "mission",
            "errors",
            "is the data root itself",
            'use a folder of its own, e.g. errors = "errors"',
        )
    if errors == incoming:
        problems.add("mission", "errors", "is the incoming folder", "use another folder")
    if root.exists() and not root.is_dir():
        problems.add("mission", "root", f"{root} exists and is not a folder", "point at a folder")
    elif not root.exists():
        problems.add(
            "mission",
            "root",
            f"the data root {root} does not exist",
            f"create it first (mkdir -p {root}) or fix the path",
        )
    for key, folder in (("incoming", incoming), ("errors", errors)):
        if not folder.is_relative_to(root) and not folder.is_dir():
            problems.add(
                "mission",
                key,
                f"{folder} does not exist and lies outside the root "
                f"{root} (dbproc creates {key} only inside the root)",
                f"create it first (mkdir -p {folder}) or fix the path",
            )
    return MissionSettings(name, root, incoming, errors, codes)


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
        twin = folded.setdefault(name.casefold(), name)
        if twin != name:
            problems.add(
                table,
                None,
                f"product name {name!r} differs from product {twin!r} only by case",
                "product names must differ by more than case (--product matches either); "
                "rename one",
            )
        if not NAME_RE.match(name):
            problems.add(
                table,
                None,
                f"product name {name!r} is not usable",
                "use letters, digits, '_', '-', '.' (at most 100)",
            )
        if not is_table(problems, table, body):
            continue
        check_keys(problems, table, body, PRODUCT_KEYS, required=("level", "dir", "format"))
        level = body.get("level")
        if level is not None and (isinstance(level, bool) or not isinstance(level, (int, float))):
            problems.add(table, "level", f"must be a number, got {level!r}", "write e.g. level = 1")
            level = None
        dir_ = string(problems, table, "dir", body.get("dir"))
        if dir_ is not None:
            check_dir_template(problems, table, dir_)
        fmt_text = string(problems, table, "format", body.get("format"))
        fmt = None
        if fmt_text is not None:
            try:
                fmt = FilenameFormat.parse(fmt_text)
            except FormatError as exc:
                problems.add(table, "format", str(exc), "fix the format")
        inspector = string(problems, table, "inspector", body.get("inspector"))
        if inspector is not None and mission is not None:
            ipath, function = split_inspector_spec(inspector)
            resolved = check_code_file(problems, table, "inspector", mission.codes, ipath)
            if resolved is not None:
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
        if fmt is not None and inspector is None and not fmt.has_date:
            problems.add(
                table,
                "format",
                f"{fmt_text!r} has no complete date and the product has no inspector",
                "add {Y}{m}{d} (or {DATE}) or give an inspector",
            )
        args = body.get("inspector_args", {})
        if not isinstance(args, dict):
            problems.add(
                table,
                "inspector_args",
                f"must be a table, got {args!r}",
                'write e.g. inspector_args = { apid = "000" }',
            )
            args = {}
        strings = {
            k: string(problems, table, k, body.get(k))
            for k in ("instrument", "satellite", "description")
        }
        inspector_timeout = positive(
            problems, table, "inspector_timeout", body.get("inspector_timeout")
        )
        review = body.get("review", False)
        if not isinstance(review, bool):
            problems.add(
                table, "review", f"must be true or false, got {review!r}", "write review = true"
            )
            review = False
        cadence = string(problems, table, "cadence", body.get("cadence"))
        if cadence is not None and cadence_seconds(cadence) is None:
            problems.add(
                table,
                "cadence",
                f"{cadence!r} is not a cadence",
                'write e.g. cadence = "1h" (units s, min, h, d; at most a day)',
            )
        if level is None or dir_ is None or fmt_text is None:
            continue
        out[name] = ProductConfig(
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
    return out


def positive(problems: Problems, table: str, key: str, value: object) -> float | None:
    """An optional number of seconds > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        problems.add(table, key, f"must be a number of seconds > 0, got {value!r}", "write e.g. 60")
        return None
    return float(value)


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


def parse_settings(
    problems: Problems, table: str, value: object, keys: set[str], cls: type[Any]
) -> Any:
    if not is_table(problems, table, value):
        return cls()
    assert isinstance(value, dict)
    check_keys(problems, table, value, keys)
    kwargs: dict[str, Any] = {}
    defaults = cls()
    for key in keys:
        if key not in value:
            continue
        v = value[key]
        default = getattr(defaults, key)
        if isinstance(default, bool):
            if not isinstance(v, bool):
                problems.add(table, key, f"must be true or false, got {v!r}", "write e.g. true")
            else:
                kwargs[key] = v
        elif isinstance(default, int):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                problems.add(
                    table, key, f"must be a whole number >= 1, got {v!r}", f"write e.g. {default}"
                )
            else:
                kwargs[key] = v
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            problems.add(table, key, f"must be a number >= 0, got {v!r}", "write e.g. 5")
        else:
            kwargs[key] = float(v)
    if "inspector_timeout" in kwargs and kwargs["inspector_timeout"] <= 0:
        problems.add(table, "inspector_timeout", "must be more than 0 seconds", "write e.g. 60")
        del kwargs["inspector_timeout"]
    return cls(**kwargs)


def parse_execution(problems: Problems, value: object) -> ExecutionSettings:
    if not is_table(problems, "execution", value):
        return ExecutionSettings()
    assert isinstance(value, dict)
    check_keys(problems, "execution", value, EXECUTION_KEYS)
    executor = string(problems, "execution", "executor", value.get("executor", "local"))
    if executor not in (None, "local", "dask"):
        problems.add(
            "execution", "executor", f"{executor!r} is not an executor", 'use "local" or "dask"'
        )
        executor = None
    jobs = value.get("jobs")
    if jobs is not None:
        jobs = integer(problems, "execution", "jobs", jobs, 1, 1)
    scheduler = string(problems, "execution", "scheduler", value.get("scheduler"))
    if executor == "dask" and scheduler is None:
        problems.add(
            "execution",
            "scheduler",
            "the dask executor needs a scheduler address",
            'add scheduler = "tcp://host:8786"',
        )
    grace = value.get("kill_grace_seconds", 10.0)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
        problems.add(
            "execution",
            "kill_grace_seconds",
            f"must be a number >= 0, got {grace!r}",
            "write e.g. 10",
        )
        grace = 10.0
    code_timeout = positive(problems, "execution", "code_timeout", value.get("code_timeout"))
    log_limit = value.get("log_limit_bytes", ExecutionSettings.log_limit_bytes)
    if isinstance(log_limit, bool) or not isinstance(log_limit, int) or log_limit < 1024:
        problems.add(
            "execution",
            "log_limit_bytes",
            f"must be a whole number of bytes >= 1024, got {log_limit!r}",
            "write e.g. 10485760 (10 MiB)",
        )
        log_limit = ExecutionSettings.log_limit_bytes
    return ExecutionSettings(
        executor or "local", jobs, scheduler, float(grace), code_timeout, log_limit
    )
