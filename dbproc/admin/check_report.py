"""What ``dbproc check`` reports: one :class:`Problem` per inconsistency between the disk and
the database, gathered in a :class:`CheckReport` (its JSON shape, summary and exit code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dbproc.records import Record

#: problem kinds that a repair cannot fix and a person must look at
NEEDS_PERSON = ("checksum_mismatch", "orphan_unidentified")


@dataclass
class Problem:
    """One inconsistency between the disk and the database."""

    kind: str
    path: str
    detail: str
    repaired: bool = False

    def as_json(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "kind": self.kind,
            "path": self.path,
            "detail": self.detail,
            "repaired": self.repaired,
        }


@dataclass
class CheckReport(Record):
    """Everything ``check`` found (and, with ``--repair``, fixed)."""

    problems: list[Problem] = field(default_factory=list)
    files_checked: int = 0
    repair: bool = False
    #: a pass was at work during the check: what it had in flight was not reported
    pass_running: bool = False

    @property
    def needs_attention(self) -> list[Problem]:
        """Problems still open after the repair (all of them without one)."""
        return [p for p in self.problems if not p.repaired]

    @property
    def exit_code(self) -> int:
        """3 when something is left for a person, else 0."""
        return 3 if self.needs_attention else 0

    def as_dict(self) -> dict[str, Any]:
        """JSON shape."""
        counts: dict[str, int] = {}
        for p in self.problems:
            counts[p.kind] = counts.get(p.kind, 0) + 1
        return {
            "files_checked": self.files_checked,
            "repair": self.repair,
            "pass_running": self.pass_running,
            "problems": [p.as_json() for p in self.problems],
            "counts": counts,
            "needs_attention": len(self.needs_attention),
            "exit_code": self.exit_code,
        }

    def summary(self) -> str:
        """One screen for a person."""
        running = (
            ["a pass is at work: its runs, staging and the files it is placing were not checked"]
            if self.pass_running
            else []
        )
        if not self.problems:
            return "\n".join(
                [*running, f"check: {self.files_checked} files checked, everything is consistent"]
            )
        lines = [
            *running,
            f"check: {self.files_checked} files checked, {len(self.problems)} problem(s), "
            f"{len(self.needs_attention)} need attention",
        ]
        for p in self.problems[:40]:
            mark = "repaired" if p.repaired else "OPEN"
            lines.append(f"  [{mark}] {p.kind}: {p.path}: {p.detail}")
        if len(self.problems) > 40:
            lines.append(f"  ... and {len(self.problems) - 40} more (--json for all)")
        return "\n".join(lines)
