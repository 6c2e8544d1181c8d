"""``dbproc check [--repair]``: compare the disk with the database.

It finds files whose record is missing (orphans in product folders), records whose file
is missing or no longer matches its sha256, leftover staging, rejects without their file
and runs left unfinished. ``--repair`` fixes what is safe (registers orphans it can
identify, marks missing files, clears staging, closes dangling reject records, runs
recovery) under the pass lock, and reports the rest; exit 3 when something needs a person.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from dbproc.admin.check_orphans import find_orphans
from dbproc.admin.check_report import CheckReport, Problem
from dbproc.clock import utcnow
from dbproc.control.recovery import recover
from dbproc.db.dependents import queue_dependents
from dbproc.db.file_paths import MissionPaths, absolute_path, stored_path
from dbproc.db.models import ACTIVE_RUN_STATUSES, File, Reject, Run
from dbproc.db.unit import commit, release
from dbproc.ingest.placement import hash_file

logger = logging.getLogger("dbproc.check")


def check(
    session: Session,
    paths: MissionPaths,
    *,
    repair: bool = False,
    checksums: bool = True,
    pass_id: int | None = None,
) -> CheckReport:
    """Compare disk and database; with ``repair`` the caller holds the pass lock."""
    report = CheckReport(repair=repair)
    if repair:
        recovery = recover(session, paths, pass_id)
        for run_id in recovery.rolled_forward:
            report.problems.append(
                Problem("unfinished_run", f"run {run_id}", "finished output recorded", True)
            )
        for run_id in recovery.abandoned:
            report.problems.append(
                Problem(
                    "unfinished_run",
                    f"run {run_id}",
                    "marked abandoned; it will be planned again",
                    True,
                )
            )
        for path in recovery.staging_removed:
            report.problems.append(Problem("leftover_staging", path, "removed", True))
    else:
        _unfinished_runs(session, report)
        _staging(paths, report)
    registered = _check_records(session, paths, report, repair=repair, checksums=checksums)
    find_orphans(session, paths, registered, report, repair=repair)
    _rejects(session, paths, report, repair=repair)
    release(session)
    return report


def _unfinished_runs(session: Session, report: CheckReport) -> None:
    for run in session.scalars(select(Run).where(Run.status.in_(list(ACTIVE_RUN_STATUSES)))):
        report.problems.append(
            Problem(
                "unfinished_run",
                f"run {run.id}",
                f"left {run.status}; the next pass (or check --repair) recovers it",
            )
        )


def _staging(paths: MissionPaths, report: CheckReport) -> None:
    if paths.staging.is_dir():
        for entry in sorted(paths.staging.iterdir()):
            report.problems.append(
                Problem(
                    "leftover_staging",
                    str(entry),
                    "left by an interrupted pass; --repair removes it",
                )
            )


def _check_records(
    session: Session, paths: MissionPaths, report: CheckReport, *, repair: bool, checksums: bool
) -> set[str]:
    """Check every record's file; return the absolute paths of registered files."""
    registered: set[str] = set()
    rows = session.execute(
        select(
            File.id,
            File.filename,
            File.path,
            File.size,
            File.sha256,
            File.on_disk,
            File.product_id,
            File.date,
            File.start,
            File.stop,
            File.purged_at,
        )
    ).all()
    release(session)
    missing: list[Any] = []
    for row in rows:
        path = absolute_path(paths.root, row.path)
        registered.add(str(path))
        if row.purged_at is not None:  # deleted on purpose by `purge`; the record stays
            continue
        report.files_checked += 1
        if not path.is_file():
            if row.on_disk:
                missing.append(row)
            continue
        if not row.on_disk:
            _back_on_disk(session, row, path, report, repair=repair)
            continue
        size = path.stat().st_size
        if size != row.size or (checksums and hash_file(path).sha256 != row.sha256):
            report.problems.append(
                Problem(
                    "checksum_mismatch",
                    str(path),
                    f"its bytes differ from the registered ones (size {size} vs {row.size}); "
                    "restore the file from a copy, or deliver a new version",
                )
            )
    for row in missing:
        _missing_file(session, paths, row, report, repair=repair)
    return registered


def _back_on_disk(
    session: Session, row: Any, path: Path, report: CheckReport, *, repair: bool
) -> None:
    """A record marked missing whose file is there again; ``repair`` marks it on disk."""
    report.problems.append(Problem("back_on_disk", str(path), "marked missing but present again"))
    if repair:
        _mark_on_disk(session, row, True, f"file {row.filename} is back on disk")
        report.problems[-1].repaired = True


def _missing_file(
    session: Session, paths: MissionPaths, row: Any, report: CheckReport, *, repair: bool
) -> None:
    """A record whose file is gone; ``repair`` marks it missing and queues its outputs."""
    path = absolute_path(paths.root, row.path)
    problem = Problem(
        "missing_file",
        str(path),
        f"{row.filename} is registered but its "
        "file is gone"
        + (
            "; marked missing, its outputs will be replanned"
            if repair
            else "; --repair marks it missing"
        ),
    )
    report.problems.append(problem)
    if repair:
        _mark_on_disk(session, row, False, f"file {row.filename} went missing")
        problem.repaired = True


def _mark_on_disk(session: Session, row: Any, on_disk: bool, cause: str) -> None:
    """Record whether a file is on disk, queue what reads it, and commit (a repair)."""
    session.execute(update(File).where(File.id == row.id).values(on_disk=on_disk))
    queue_dependents(session, row.product_id, row.date, [(row.start, row.stop)], cause)
    commit(session)


def _rejects(session: Session, paths: MissionPaths, report: CheckReport, *, repair: bool) -> None:
    rows = list(session.scalars(select(Reject).where(Reject.retried_at.is_(None))))
    stored = set()
    for row in rows:
        path = paths.rejected / row.stored_name
        stored.add(row.stored_name)
        if path.exists() or path.is_symlink():
            continue
        problem = Problem(
            "reject_without_file",
            str(path),
            f"the reject record of {row.filename} has no file"
            + ("; record closed" if repair else "; --repair closes the record"),
        )
        report.problems.append(problem)
        if repair:
            row.retried_at = utcnow()
            commit(session)
            problem.repaired = True
    release(session)
    if paths.rejected.is_dir():
        for entry in sorted(paths.rejected.iterdir()):
            if entry.name.endswith(".reason") or entry.name in stored:
                continue
            retried = session.scalar(select(Reject.id).where(Reject.stored_name == entry.name))
            if retried is None:
                report.problems.append(
                    Problem(
                        "reject_without_record",
                        str(entry),
                        "in the rejected folder without a record (a pass died while rejecting "
                        "it); `dbproc rejects retry` cannot see it: move it to incoming by hand",
                        repaired=False,
                    )
                )
    release(session)


def run_check(
    engine: Engine, session_factory: Callable[[], Session], *, repair: bool, checksums: bool
) -> CheckReport:
    """Check; with ``repair``, under the pass lock (exit 4 while a pass runs)."""
    from dbproc.admin.mission_settings import stored_settings
    from dbproc.control.locking import PassLock

    with session_factory() as session:
        settings = stored_settings(session)
        paths, lock_settings = settings.paths, settings.lock
        release(session)
        if not repair:
            running = _pass_running(engine)
            report = check(session, paths, checksums=checksums)
            if running or _pass_running(engine):
                _drop_in_flight(session, paths, report)
            return report
    with PassLock(engine, lock_settings, "check") as lock, session_factory() as session:
        return check(session, paths, repair=True, checksums=checksums, pass_id=lock.pass_id)


#: what a pass at work has in flight: not a problem while it works
IN_FLIGHT = ("unfinished_run", "leftover_staging", "reject_without_record")


def _pass_running(engine: Engine) -> bool:
    """Is a pass holding the lock right now?"""
    from dbproc.control.os_lock import OsLock

    probe = OsLock(engine)
    if probe.try_acquire():
        probe.release()
        return False
    return True


def _drop_in_flight(session: Session, paths: MissionPaths, report: CheckReport) -> None:
    """A pass worked during the check (without --repair, which takes the lock): forget
    its runs, its staging, a reject it had moved but not yet recorded, and files it was
    placing (still linked from incoming or staging, or recorded since we looked)."""
    report.pass_running = True
    kept = []
    for problem in report.problems:
        if problem.kind in IN_FLIGHT:
            continue
        if problem.kind in ("orphan", "orphan_unidentified"):
            path = Path(problem.path)
            try:
                in_flight = path.stat().st_nlink > 1
            except OSError:
                continue  # gone meanwhile
            stored = stored_path(paths.root, path)
            if in_flight or session.scalar(select(File.id).where(File.path == stored)):
                continue
        kept.append(problem)
    release(session)
    report.problems = kept
