"""The ``[retention]`` events setting and the ``[[notify]]`` tables of a mission file."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from dbproc.feed.config import (
    DEFAULT_EVENTS_DAYS,
    DEFAULT_NOTIFY_TIMEOUT,
    FeedSettings,
    NotifierConfig,
)
from dbproc.mission.fields import Problems, check_keys, is_table
from dbproc.mission.model import NAME_RE

RETENTION_KEYS = {"events_days"}
NOTIFY_KEYS = {"name", "on", "command", "url", "timeout"}


def _number(problems: Problems, table: str, key: str, value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        problems.add(table, key, f"must be a number > 0, got {value!r}", "write e.g. 30")
        return default
    return float(value)


def parse_feed(problems: Problems, data: dict[str, Any]) -> FeedSettings:
    """``[retention] events_days`` and every ``[[notify]]`` table."""
    days = DEFAULT_EVENTS_DAYS
    retention = data.get("retention", {})
    if is_table(problems, "retention", retention):
        # (its other keys are checked with the run-log settings: mission/loader.py)
        days = _number(
            problems, "retention", "events_days", retention.get("events_days"), DEFAULT_EVENTS_DAYS
        )
    tables = data.get("notify", [])
    if isinstance(tables, dict):
        tables = [tables]
    if not isinstance(tables, list):
        problems.add(
            "notify", None, "must be an array of tables", "write [[notify]] before each notifier"
        )
        return FeedSettings(days)
    notifiers: list[NotifierConfig] = []
    for n, body in enumerate(tables, start=1):
        found = _parse_notifier(problems, n, body)
        if found is None:
            continue
        if any(x.name == found.name for x in notifiers):
            problems.add(
                f"notify {found.name}",
                "name",
                "is used twice",
                "give every [[notify]] its own name",
            )
        notifiers.append(found)
    return FeedSettings(days, tuple(notifiers))


def _parse_notifier(problems: Problems, n: int, body: object) -> NotifierConfig | None:
    table = f"notify #{n}"
    if not is_table(problems, table, body):
        return None
    assert isinstance(body, dict)
    check_keys(problems, table, body, NOTIFY_KEYS, required=("on",))
    name = body.get("name", f"notify-{n}")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.add(
            table, "name", f"{name!r} is not a usable name", "use letters, digits, '_', '-', '.'"
        )
        return None
    table = f"notify {name}"
    on = body.get("on", [])
    if isinstance(on, str):
        on = [on]
    if not isinstance(on, list) or not on or not all(isinstance(k, str) and k for k in on):
        problems.add(
            table,
            "on",
            f"must be a list of event kinds, got {on!r}",
            'write e.g. on = ["run.failed", "file.rejected"]',
        )
        return None
    command, url = body.get("command"), body.get("url")
    if (command is None) == (url is None):
        problems.add(
            table,
            None,
            "needs exactly one of command and url",
            'give command = ["/path/to/program", "{kind}"] or url = "https://..."',
        )
        return None
    if command is not None and (
        not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command)
    ):
        problems.add(
            table,
            "command",
            f"must be a list of strings, got {command!r}",
            'write e.g. command = ["/usr/local/bin/page-team", "{kind}"] (no shell)',
        )
        return None
    if url is not None and (
        not isinstance(url, str) or urlparse(url).scheme not in ("http", "https")
    ):
        problems.add(
            table,
            "url",
            f"{url!r} is not an http(s) URL",
            'write e.g. url = "https://hooks.example.org/dbproc"',
        )
        return None
    timeout = _number(problems, table, "timeout", body.get("timeout"), DEFAULT_NOTIFY_TIMEOUT)
    return NotifierConfig(name, tuple(on), tuple(command) if command else None, url, timeout)
