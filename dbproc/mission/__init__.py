"""The mission file (TOML): read it, validate all of it, and describe it as frozen values.

Validation is all or nothing: every problem found is collected, each naming the table,
the key and the fix, and :func:`load_mission_file` raises one
:class:`~dbproc.errors.ConfigError` listing them all. Nothing here touches a database.
"""

from dbproc.mission.loader import load_mission_file, parse_mission
from dbproc.mission.model import (
    DEFAULT_INSPECTOR_FUNCTION,
    NAME_RE,
    TIMEBASES,
    CodeConfig,
    ExecutionSettings,
    IngestSettings,
    InputConfig,
    LockSettings,
    MissionConfig,
    MissionSettings,
    ProcessConfig,
    ProductConfig,
    RetentionSettings,
    resolve_code_path,
    split_inspector_spec,
)

__all__ = [
    "DEFAULT_INSPECTOR_FUNCTION",
    "NAME_RE",
    "TIMEBASES",
    "CodeConfig",
    "ExecutionSettings",
    "IngestSettings",
    "InputConfig",
    "LockSettings",
    "MissionConfig",
    "MissionSettings",
    "ProcessConfig",
    "ProductConfig",
    "RetentionSettings",
    "load_mission_file",
    "parse_mission",
    "resolve_code_path",
    "split_inspector_spec",
]
