"""Reading the mission file (TOML), validate all of it, and describe it as frozen values.

Validation is all or nothing: every problem found is collected, each naming the table,
the key and the fix, and :func:`load_mission_file` raises one :class:`ConfigError`
listing them all. Nothing here touches a database.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dbproc.errors import ConfigError
from dbproc.mission.feed_tables import RETENTION_KEYS as FEED_RETENTION_KEYS
from dbproc.mission.feed_tables import parse_feed
from dbproc.mission.fields import Problems, check_keys
from dbproc.mission.model import IngestSettings, LockSettings, MissionConfig, RetentionSettings
from dbproc.mission.processes import parse_processes
from dbproc.mission.products import parse_products
from dbproc.mission.tables import (
    INGEST_KEYS,
    LOCK_KEYS,
    RETENTION_KEYS,
    TOP_KEYS,
    parse_execution,
    parse_mission_table,
    parse_settings,
)


def load_mission_file(path: str | Path) -> MissionConfig:
    """Read and validate a mission file; raise :class:`ConfigError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"mission file {path} does not exist; give the path of a .toml file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read mission file {path}: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"mission file {path} is not valid TOML: {exc}") from exc
    return parse_mission(data, base_dir=path.resolve().parent, source=str(path))


def parse_mission(
    data: Mapping[str, Any], base_dir: Path, source: str = "<mission>"
) -> MissionConfig:
    """Validate an already-parsed mission document; folders resolve against ``base_dir``."""
    problems = Problems()
    check_keys(problems, "(top level)", data, TOP_KEYS, required=("mission",))
    mission = parse_mission_table(problems, data.get("mission"), base_dir)
    products = parse_products(problems, data.get("products", {}), mission)
    raw_products = data.get("products", {})
    declared = set(raw_products) if isinstance(raw_products, dict) else set()
    processes = parse_processes(problems, data.get("processes", {}), products, declared, mission)
    ingest = parse_settings(problems, "ingest", data.get("ingest", {}), INGEST_KEYS, IngestSettings)
    lock = parse_settings(problems, "lock", data.get("lock", {}), LOCK_KEYS, LockSettings)
    # [retention] holds the run-log key (here) and events_days (parse_feed)
    raw_retention = data.get("retention", {})
    if isinstance(raw_retention, Mapping):
        raw_retention = {k: v for k, v in raw_retention.items() if k not in FEED_RETENTION_KEYS}
    retention = parse_settings(
        problems, "retention", raw_retention, RETENTION_KEYS, RetentionSettings
    )
    execution = parse_execution(problems, data.get("execution", {}))
    feed = parse_feed(problems, dict(data))
    if problems.items:
        raise ConfigError(
            f"mission file {source} has {len(problems.items)} problem(s); nothing was changed",
            problems.items,
        )
    assert mission is not None
    return MissionConfig(mission, products, processes, ingest, lock, execution, retention, feed)
