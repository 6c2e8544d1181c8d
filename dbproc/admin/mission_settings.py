"""The mission's extension tables (``[ingest]``, ``[lock]``, ``[execution]``,
``[retention]``, ``[feed]``) as stored in the ``mission.settings`` JSON column, and
:func:`stored_settings`, the registered folders and settings a pass works with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from dbproc.db import queries
from dbproc.db.file_paths import MissionPaths
from dbproc.mission import (
    ExecutionSettings,
    IngestSettings,
    LockSettings,
    MissionConfig,
    RetentionSettings,
)


def settings_json(config: MissionConfig) -> dict[str, Any]:
    """The JSON stored in ``mission.settings`` for the file's extension tables."""
    return {
        "ingest": vars(config.ingest).copy(),
        "lock": vars(config.lock).copy(),
        "execution": vars(config.execution).copy(),
        "retention": vars(config.retention).copy(),
        "feed": config.feed.as_json(),
    }


def settings_from_json(
    data: Mapping[str, Any],
) -> tuple[IngestSettings, LockSettings, ExecutionSettings]:
    """The extension tables as stored in ``mission.settings``."""
    return (
        IngestSettings(**data.get("ingest", {})),
        LockSettings(**data.get("lock", {})),
        ExecutionSettings(**data.get("execution", {})),
    )


def retention_from_json(data: Mapping[str, Any]) -> RetentionSettings:
    """The ``[retention]`` table as stored in ``mission.settings``."""
    return RetentionSettings(**data.get("retention", {}))


@dataclass(frozen=True)
class StoredSettings:
    """The registered mission's folders and extension tables, as a pass uses them."""

    paths: MissionPaths
    ingest: IngestSettings
    lock: LockSettings
    execution: ExecutionSettings
    retention: RetentionSettings = RetentionSettings()


def stored_settings(session: Session) -> StoredSettings:
    """Read the registered mission's folders and settings (raises if none is applied)."""
    mission = queries.get_mission(session)
    data = mission.settings or {}
    return StoredSettings(
        MissionPaths.of(mission), *settings_from_json(data), retention=retention_from_json(data)
    )
