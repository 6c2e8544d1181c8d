"""Retention of run logs (contract section 10, ``[retention] run_logs_days``).

A successful run's log (``<root>/.dbproc/logs/…/<run id>.log``) is removed when the run
ended more than ``run_logs_days`` ago, at the end of every pass. A failed run keeps its
folder under ``<errors>/runs/<run id>/`` (log and partial output) until an operator asks
with ``dbproc runs prune --failed``. The run record stays; its ``log_path`` is cleared.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db.file_paths import MissionPaths
from dbproc.db.models import ACTIVE_RUN_STATUSES, Run, RunStatus
from dbproc.db.queries import chunked
from dbproc.records import Record

logger = logging.getLogger("dbproc.retention")


@dataclass
class PruneReport(Record):
    """What a prune removed."""

    succeeded: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "succeeded_runs": len(self.succeeded),
            "failed_runs": len(self.failed),
            "bytes": self.bytes,
        }

    def summary(self) -> str:
        return (
            f"pruned the logs of {len(self.succeeded)} successful and "
            f"{len(self.failed)} failed run(s), {self.bytes / 1e6:.1f} MB"
        )


def prune_run_logs(
    session: Session,
    paths: MissionPaths,
    days: float,
    *,
    failed: bool = False,
    now: dt.datetime | None = None,
) -> PruneReport:
    """Remove logs of runs that ended more than ``days`` ago: successful runs' always,
    failed runs' only with ``failed``. The caller commits."""
    report = PruneReport()
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    condition = [Run.log_path.is_not(None), Run.ended_at.is_not(None), Run.ended_at < cutoff]
    if not failed:
        condition.append(Run.status == RunStatus.SUCCEEDED)
    else:
        condition.append(Run.status.not_in([s.value for s in ACTIVE_RUN_STATUSES]))
    rows = session.execute(select(Run.id, Run.status, Run.log_path).where(*condition)).all()
    for run_id, status, log_path in rows:
        removed = _remove(Path(str(log_path)), run_id, paths, status == RunStatus.SUCCEEDED)
        if removed is None:
            continue
        report.bytes += removed
        (report.succeeded if status == RunStatus.SUCCEEDED else report.failed).append(run_id)
    for batch in chunked(report.succeeded + report.failed):
        session.execute(update(Run).where(Run.id.in_(batch)).values(log_path=None))
    return report


def _remove(log: Path, run_id: int, paths: MissionPaths, succeeded: bool) -> int | None:
    """Remove one run's kept log (a failed run: its whole folder); its size, or None
    when it could not be removed (it is tried again next time)."""
    target = log
    if not succeeded and log.parent.name == str(run_id) and _inside(log.parent, paths.failed_runs):
        target = log.parent
    try:
        size = _size(target)
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("could not remove the log of run %s (%s): %s", run_id, target, exc)
        return None
    return size


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except (OSError, ValueError):
        return False
    return True


def _size(path: Path) -> int:
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
