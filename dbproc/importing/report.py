"""The import report: what was imported, and everything that could not be translated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dbproc.records import Record


@dataclass(frozen=True)
class Untranslated:
    """One thing of the old mission that dbproc cannot express as it was, and what to do."""

    kind: str  # format | dir | inspector | process | code | file | queue | mission | name
    what: str  # the product, process, code or file concerned
    problem: str
    todo: str
    #: what the import did instead (the translated value), when it did something
    done: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "what": self.what,
            "problem": self.problem,
            "todo": self.todo,
            "done": self.done,
        }

    def describe(self) -> str:
        text = f"[{self.kind}] {self.what}: {self.problem}"
        if self.done:
            text += f"; done: {self.done}"
        return f"{text}; to do: {self.todo}"


@dataclass
class ImportReport(Record):
    """What an import did (or, with ``--dry-run``, would do)."""

    source: str
    mission_file: str
    dry_run: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    untranslated: list[Untranslated] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    checksum_mismatches: list[str] = field(default_factory=list)
    mission_text: str = ""
    seconds: float = 0.0

    def note(self, kind: str, what: str, problem: str, todo: str, done: str | None = None) -> None:
        self.untranslated.append(Untranslated(kind, what, problem, todo, done))

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "mission_file": self.mission_file,
            "dry_run": self.dry_run,
            "counts": dict(sorted(self.counts.items())),
            "untranslated": [u.as_json() for u in self.untranslated],
            "missing_files": list(self.missing_files),
            "checksum_mismatches": list(self.checksum_mismatches),
            "mission": self.mission_text,
            "seconds": round(self.seconds, 3),
        }

    def text(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        lines = [f"dbprocessing {self.source} -> mission file {self.mission_file} ({verb})"]
        for key, value in sorted(self.counts.items()):
            lines.append(f"  {key}: {value}")
        if self.missing_files:
            lines.append(f"files missing on disk (imported as missing): {len(self.missing_files)}")
            lines += [f"  {name}" for name in self.missing_files[:50]]
            if len(self.missing_files) > 50:
                lines.append(f"  ... and {len(self.missing_files) - 50} more (--json for all)")
        if self.checksum_mismatches:
            lines.append(
                "files whose bytes differ from dbprocessing's SHA-1 (imported with their "
                f"current sha256): {len(self.checksum_mismatches)}"
            )
            lines += [f"  {name}" for name in self.checksum_mismatches[:50]]
        if self.untranslated:
            lines.append(f"not translated as it was ({len(self.untranslated)}):")
            lines += [f"  - {u.describe()}" for u in self.untranslated]
        else:
            lines.append("everything was translated")
        if self.dry_run:
            lines += ["", f"# the mission file that would be written to {self.mission_file}:"]
            lines.append(self.mission_text)
        return "\n".join(lines)
