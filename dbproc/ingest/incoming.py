"""Files offered in the incoming folder: which names can be registered, how a name is
shown safely, and the report of one ingest pass."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from dbproc.ingest.placement import NAME_MAX

#: ingested files listed one by one in a report (the counts are always complete)
DETAIL_LIMIT = 10_000


@dataclass
class IngestReport:
    """What one ingest pass did. ``exit_code`` is 3 when anything was refused or failed."""

    ingested: list[dict[str, Any]] = field(default_factory=list)
    absorbed: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: files ingested; ``ingested`` lists the first DETAIL_LIMIT of them (flat memory for
    #: an incoming folder of 10^5 files)
    ingested_count: int = 0

    def add_ingested(self, entry: dict[str, Any]) -> None:
        """Count an ingested file (and list it, up to :data:`DETAIL_LIMIT`)."""
        self.ingested_count += 1
        if len(self.ingested) < DETAIL_LIMIT:
            self.ingested.append(entry)

    @property
    def exit_code(self) -> int:
        """0 when everything offered was taken, 3 when something was refused or failed."""
        return 3 if self.rejected or self.errors else 0

    def as_json(self) -> dict[str, Any]:
        """The report as a JSON document."""
        return {
            "ingested": self.ingested,
            "absorbed": self.absorbed,
            "rejected": self.rejected,
            "skipped": self.skipped,
            "errors": self.errors,
            "counts": self.counts(),
            "seconds": round(self.seconds, 3),
        }

    def counts(self) -> dict[str, int]:
        """How many of each outcome."""
        return {
            "ingested": max(self.ingested_count, len(self.ingested)),
            "absorbed": len(self.absorbed),
            "rejected": len(self.rejected),
            "skipped": len(self.skipped),
            "errors": len(self.errors),
        }

    def summary(self, limit: int = 5) -> str:
        """A one-screen human summary."""
        c = self.counts()
        lines = [
            f"ingest: {c['ingested']} ingested, {c['absorbed']} absorbed (already "
            f"registered), {c['rejected']} rejected, {c['skipped']} left for later, "
            f"{c['errors']} failed ({self.seconds:.2f} s)"
        ]
        for item in self.rejected[:limit]:
            lines.append(f"  rejected {item['filename']}: {item['message']}")
        if len(self.rejected) > limit:
            lines.append(f"  ... and {len(self.rejected) - limit} more (dbproc rejects)")
        for item in self.errors[:limit]:
            lines.append(f"  failed {item['filename']}: {item['error']} (left in incoming)")
        if len(self.errors) > limit:
            lines.append(f"  ... and {len(self.errors) - limit} more failed (see the log)")
        for item in self.skipped[:limit]:
            lines.append(f"  left {item['filename']}: {item['why']}")
        if len(self.skipped) > limit:
            lines.append(f"  ... and {len(self.skipped) - limit} more left for later")
        return "\n".join(lines)


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def usable_name(name: str) -> str | None:
    """Why a file name cannot be registered, or None when it can."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    if any(_is_control(ch) for ch in name):
        return "its name contains control characters (newline, tab, ...)"
    if len(name.encode("utf-8")) > NAME_MAX:
        return f"its name is longer than {NAME_MAX} bytes"
    return None


def printable(name: str) -> str:
    """The name as printable text, safe to store, log and use as a file name.

    Bytes that are not UTF-8 and control characters (newline, tab, ...) become ``\\xNN``
    escapes (code points above U+00FF: ``\\uNNNN``); every other name is returned as is.
    """
    out: list[str] = []
    for ch in name:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode gives it
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF or _is_control(ch):
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
