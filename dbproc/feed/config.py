"""The feed's settings as frozen values: ``[retention] events_days`` and ``[[notify]]``.

Stored in ``mission.settings["feed"]`` by ``config apply`` and read back by passes and
``watch``. Parsing and validation of the mission file is in :mod:`dbproc.mission.feed_tables`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_EVENTS_DAYS = 365.0
DEFAULT_NOTIFY_TIMEOUT = 10.0


@dataclass(frozen=True)
class NotifierConfig:
    """One ``[[notify]]`` table: which kinds, and a command (argv, no shell) or a URL."""

    name: str
    on: tuple[str, ...]
    command: tuple[str, ...] | None = None
    url: str | None = None
    timeout: float = DEFAULT_NOTIFY_TIMEOUT

    def wants(self, kind: str) -> bool:
        """Does this notifier take events of ``kind`` (``"*"`` or ``"run.*"`` match too)?"""
        for pattern in self.on:
            if pattern in ("*", kind):
                return True
            if pattern.endswith(".*") and kind.startswith(pattern[:-1]):
                return True
        return False

    def as_json(self) -> dict[str, Any]:
        """As stored and exported."""
        data: dict[str, Any] = {"name": self.name, "on": list(self.on), "timeout": self.timeout}
        if self.command is not None:
            data["command"] = list(self.command)
        if self.url is not None:
            data["url"] = self.url
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NotifierConfig:
        """From :meth:`as_json`."""
        command = data.get("command")
        return cls(
            str(data["name"]),
            tuple(data.get("on", ())),
            tuple(command) if command is not None else None,
            data.get("url"),
            float(data.get("timeout", DEFAULT_NOTIFY_TIMEOUT)),
        )


@dataclass(frozen=True)
class FeedSettings:
    """Event retention and the notifiers."""

    events_days: float = DEFAULT_EVENTS_DAYS
    notifiers: tuple[NotifierConfig, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """As stored in ``mission.settings["feed"]``."""
        return {"events_days": self.events_days, "notifiers": [n.as_json() for n in self.notifiers]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> FeedSettings:
        """From :meth:`as_json` (defaults when the mission predates the feed)."""
        if not data:
            return cls()
        return cls(
            float(data.get("events_days", DEFAULT_EVENTS_DAYS)),
            tuple(NotifierConfig.from_json(n) for n in data.get("notifiers", ())),
        )

    def notifier(self, name: str) -> NotifierConfig | None:
        """The notifier called ``name``."""
        return next((n for n in self.notifiers if n.name == name), None)


def add_feed_tables(doc: dict[str, Any], settings: Mapping[str, Any]) -> None:
    """Add ``[retention] events_days`` and ``[[notify]]`` to an exported mission document."""
    feed = FeedSettings.from_json(settings.get("feed"))
    doc.setdefault("retention", {})["events_days"] = feed.events_days
    if feed.notifiers:
        doc["notify"] = [n.as_json() for n in feed.notifiers]
