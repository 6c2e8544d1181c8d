"""What a ``config apply`` changed: :class:`Change` records gathered in an
:class:`ApplyResult`, and :func:`diff_fields`, which brings a row in line with the file
and words each difference.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dbproc.records import Record


@dataclass(frozen=True)
class Change:
    """One thing an apply changed (or, in a dry run, would change)."""

    action: str  # add | update | retire | revive | new-code-version | warning
    kind: str  # mission | product | process | code
    name: str
    details: tuple[str, ...] = ()

    def describe(self) -> str:
        """One human line."""
        symbol = {
            "add": "+",
            "update": "~",
            "retire": "-",
            "revive": "+",
            "new-code-version": "^",
            "warning": "!",
        }.get(self.action, "*")
        text = f"{symbol} {self.kind} {self.name}"
        return f"{text}: {'; '.join(self.details)}" if self.details else text

    def as_json(self) -> dict[str, Any]:
        """The JSON shape of a change."""
        return {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "details": list(self.details),
        }


@dataclass
class ApplyResult(Record):
    """What an apply did (or, ``dry_run``, would do)."""

    changes: list[Change] = field(default_factory=list)
    created_schema: bool = False
    replan_processes: list[str] = field(default_factory=list)
    #: dry runs: the builds the change would cause, per process (see dbproc.build.preview)
    builds: dict[str, dict[str, Any]] | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The object of ``config apply --json``."""
        return {
            "changes": [c.as_json() for c in self.changes],
            "created_schema": self.created_schema,
            "dry_run": self.dry_run,
            "replan": self.replan_processes,
            "builds": self.builds,
        }


def diff_fields(obj: object, wanted: Mapping[str, Any]) -> list[str]:
    """Set each attribute of ``obj`` to its wanted value; one ``key: old -> new`` per change."""
    details = []
    for key, value in wanted.items():
        current = getattr(obj, key)
        if _normal(current) != _normal(value):
            details.append(f"{key}: {_show(current)} -> {_show(value)}")
            setattr(obj, key, value)
    return details


def _normal(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _show(value: Any) -> str:
    return json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
