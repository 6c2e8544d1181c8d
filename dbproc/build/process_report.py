"""What the process half of a pass did: its runs, the keys it found blocked, its time.

:class:`ProcessReport` is what :class:`~dbproc.build.processing.Processor` returns and
``dbproc run`` prints (:meth:`ProcessReport.summary`) or writes as JSON.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dbproc.build.run_start import RunOutcome
from dbproc.db.models import RunStatus

#: how a run may end without failing (``unchanged``: early cutoff reproduced the newest)
OK_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.UNCHANGED})


@dataclass
class ProcessReport:
    """What the process half of a pass did."""

    runs: list[RunOutcome] = field(default_factory=list)
    blocked: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[RunOutcome]:
        """Runs that did not succeed."""
        return [r for r in self.runs if r.status not in OK_STATUSES]

    @property
    def exit_code(self) -> int:
        """3 when a run failed."""
        return 3 if self.failed else 0

    def counts(self) -> dict[str, int]:
        """Runs by status."""
        counts = Counter(r.status.value for r in self.runs)
        return {"runs": len(self.runs), **counts}

    def as_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "runs": [r.as_json() for r in self.runs],
            "counts": self.counts(),
            "seconds": round(self.seconds, 3),
        }

    def summary(self, limit: int = 8) -> str:
        """One screen for a person."""
        ok = sum(1 for r in self.runs if r.status in OK_STATUSES)
        lines = [
            f"process: {len(self.runs)} runs, {ok} succeeded, {len(self.failed)} failed "
            f"({self.seconds:.2f} s)"
        ]
        by_process = Counter((r.process, r.status.value) for r in self.runs)
        for (process, status), n in sorted(by_process.items()):
            lines.append(f"  {process}: {n} {status}")
        for r in self.failed[:limit]:
            lines.append(
                f"  failed run {r.run_id} {r.process} {r.date}: {r.error} "
                f"(dbproc runs show {r.run_id})"
            )
        if len(self.failed) > limit:
            lines.append(f"  ... and {len(self.failed) - limit} more (dbproc runs --failed)")
        return "\n".join(lines)
