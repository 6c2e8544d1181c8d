"""The ``[mission]`` table, the optional settings tables and the keys every table allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbproc.mission.fields import (
    Problems,
    check_keys,
    integer,
    is_table,
    positive,
    resolve_dir,
    string,
)
from dbproc.mission.model import NAME_RE, ExecutionSettings, MissionSettings

MISSION_KEYS = {"name", "root", "incoming", "errors", "codes"}
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
    _check_mission_folders(problems, root, incoming, errors)
    return MissionSettings(name, root, incoming, errors, codes)


def _check_mission_folders(problems: Problems, root: Path, incoming: Path, errors: Path) -> None:
    """The data root exists; incoming and errors are folders of their own, made only inside it."""
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
