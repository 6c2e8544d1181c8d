"""What every pass does first, under the lock: finish or undo what a dead pass left.

Runs left ``queued`` or ``running`` are marked ``abandoned`` and their staging removed
(their keys are still pending, so they are planned again); runs left ``promoting`` are
rolled forward (placed and recorded), not recomputed; processes that codes of a dead
pass started and that outlived it are killed; leftover staging is removed.
Idempotent: running it twice changes nothing the second time.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.build.catalogue import load_catalogue
from dbproc.build.recording import Recorder
from dbproc.clock import utcnow
from dbproc.db.file_paths import MissionPaths
from dbproc.db.files import product_rules
from dbproc.db.models import Pending, Process, Run, RunStatus
from dbproc.db.unit import commit, release
from dbproc.executors.strays import kill_strays

if TYPE_CHECKING:
    from dbproc.build.run_start import RunOutcome

logger = logging.getLogger("dbproc.recovery")


@dataclass
class RecoveryReport:
    """What recovery did."""

    abandoned: list[int] = field(default_factory=list)
    rolled_forward: list[int] = field(default_factory=list)
    staging_removed: list[str] = field(default_factory=list)
    strays_killed: list[int] = field(default_factory=list)
    #: runs whose output could not be placed again (disk full?): kept for the next pass
    still_promoting: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "abandoned": self.abandoned,
            "rolled_forward": self.rolled_forward,
            "staging_removed": self.staging_removed,
            "strays_killed": self.strays_killed,
            "still_promoting": self.still_promoting,
        }

    def summary(self) -> str | None:
        """A line for people, or None when there was nothing to do."""
        if not (
            self.abandoned
            or self.rolled_forward
            or self.staging_removed
            or self.strays_killed
            or self.still_promoting
        ):
            return None
        return (
            f"recovery: {len(self.rolled_forward)} finished run(s) recorded, "
            f"{len(self.abandoned)} abandoned run(s) to redo, "
            f"{len(self.staging_removed)} staging folder(s) removed"
            + (
                f", {len(self.strays_killed)} stray code process(es) killed"
                if self.strays_killed
                else ""
            )
            + (
                f", {len(self.still_promoting)} finished run(s) still not placed (write "
                "errors; the next pass tries again)"
                if self.still_promoting
                else ""
            )
        )


def recover(session: Session, paths: MissionPaths, current_pass: int | None) -> RecoveryReport:
    """Repair what earlier passes left (see module docstring)."""
    report = RecoveryReport()
    keep: set[Path] = set()
    leftovers = _leftover_runs(session, current_pass)
    names = {p.id: p.name for p in session.scalars(select(Process))}
    release(session)
    recorder: Recorder | None = None
    for run in leftovers:
        if run.status == RunStatus.PROMOTING and run.promoting:
            if recorder is None:
                recorder = _recorder(session, paths)
            outcome = recorder.finish_promotion(
                run.id, names[run.process_id], run.date, run.slot, run.promoting
            )
            if _rolled_forward(run, outcome, report, keep):
                continue
        _abandon(session, run, names, report)
    _kill_strays(paths, report)
    report.staging_removed = _clean_staging(paths, keep)
    return report


def _leftover_runs(session: Session, current_pass: int | None) -> list[Run]:
    """Runs left queued, running or promoting by other passes than ``current_pass``."""
    stmt = select(Run).where(
        Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PROMOTING])
    )
    if current_pass is not None:
        stmt = stmt.where((Run.pass_id != current_pass) | Run.pass_id.is_(None))
    return list(session.scalars(stmt.order_by(Run.id)))


def _recorder(session: Session, paths: MissionPaths) -> Recorder:
    """The recorder that rolls promoting runs forward (made for the first such run)."""
    catalogue = load_catalogue(session)
    rules = {r.name: r for r in product_rules(session)}
    recorder = Recorder(
        session,
        paths,
        rules,
        catalogue.process_ids,
        {n: p.output for n, p in catalogue.processes.items()},
    )
    release(session)
    return recorder


def _rolled_forward(run: Run, outcome: RunOutcome, report: RecoveryReport, keep: set[Path]) -> bool:
    """Note a promoting run's roll-forward; False when it is to be abandoned instead."""
    if outcome.status is RunStatus.SUCCEEDED:
        report.rolled_forward.append(run.id)
        logger.warning("recovered run %s: its output %s was recorded", run.id, outcome.output)
        return True
    if outcome.status is RunStatus.PROMOTING:  # a write error: try again next pass
        report.still_promoting.append(run.id)
        if run.run_root:
            keep.add(Path(run.run_root))
        return True
    return False


def _abandon(session: Session, run: Run, names: dict[int, str], report: RecoveryReport) -> None:
    """Mark a leftover run abandoned (unless it ended meanwhile), queue its key again and
    remove its staging."""
    fresh = session.get(Run, run.id)
    assert fresh is not None
    if fresh.status in (RunStatus.SUCCEEDED, RunStatus.ABANDONED):
        release(session)
        return
    fresh.status = RunStatus.ABANDONED
    fresh.error = "abandoned: the pass running it ended before it was recorded"
    fresh.ended_at = fresh.ended_at or utcnow()
    session.add(
        Pending(
            process_id=fresh.process_id,
            date=fresh.date,
            cause=f"run {fresh.id} was abandoned by a dead pass",
        )
    )
    commit(session)
    if fresh.run_root:
        shutil.rmtree(fresh.run_root, ignore_errors=True)
    report.abandoned.append(run.id)
    logger.warning(
        "run %s (%s %s) was abandoned by a dead pass; it will be planned again",
        run.id,
        names.get(run.process_id),
        run.date,
    )


def _kill_strays(paths: MissionPaths, report: RecoveryReport) -> None:
    """Kill the processes that codes of a dead pass started and that outlived it."""
    report.strays_killed = kill_strays(paths.staging)
    if report.strays_killed:
        logger.warning(
            "killed %d process(es) that codes of a dead pass had started (pids %s)",
            len(report.strays_killed),
            ", ".join(map(str, report.strays_killed)),
        )


def _clean_staging(paths: MissionPaths, keep: set[Path]) -> list[str]:
    """Empty the staging folder but for the runs still ``promoting`` (in ``keep``): after
    recovery no other run or ingest uses it."""
    removed = []
    if paths.staging.is_dir():
        for entry in sorted(paths.staging.iterdir()):
            if entry in keep:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(str(entry))
    return removed
