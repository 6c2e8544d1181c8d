"""``dbproc check [--repair]``: compare the disk with the database.

It finds files whose record is missing (orphans in product folders), records whose file
is missing or no longer matches its sha256, leftover staging, rejects without their file
and runs left unfinished. ``--repair`` fixes what is safe (registers orphans it can
identify, marks missing files, clears staging, closes dangling reject records, runs
recovery) under the pass lock, and reports the rest; exit 3 when something needs a person.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.control.recovery import recover
from dbproc.db import queries
from dbproc.db.dependents import queue_dependents
from dbproc.db.file_paths import MissionPaths, absolute_path, destination, stored_path
from dbproc.db.files import list_versions, product_rules, register_file
from dbproc.db.models import ACTIVE_RUN_STATUSES, File, Reject, Run
from dbproc.db.unit import commit, release
from dbproc.ingest.inspection import InspectorSet
from dbproc.ingest.placement import hash_file

logger = logging.getLogger("dbproc.check")

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
class CheckReport:
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

    def as_json(self) -> dict[str, Any]:
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
    _orphans(session, paths, registered, report, repair=repair)
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
            report.problems.append(
                Problem("back_on_disk", str(path), "marked missing but present again")
            )
            if repair:
                session.execute(update(File).where(File.id == row.id).values(on_disk=True))
                queue_dependents(
                    session,
                    row.product_id,
                    row.date,
                    [(row.start, row.stop)],
                    f"file {row.filename} is back on disk",
                )
                commit(session)
                report.problems[-1].repaired = True
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
            session.execute(update(File).where(File.id == row.id).values(on_disk=False))
            queue_dependents(
                session,
                row.product_id,
                row.date,
                [(row.start, row.stop)],
                f"file {row.filename} went missing",
            )
            commit(session)
            problem.repaired = True
    return registered


def _product_roots(paths: MissionPaths, dirs: list[str]) -> list[Path]:
    """The folders under which product files can be: each template's fixed leading part."""
    roots: set[Path] = set()
    for template in dirs:
        fixed: list[str] = []
        for part in template.split("/"):
            if "{" in part:
                break
            fixed.append(part)
        roots.add(paths.root.joinpath(*fixed) if fixed else paths.root)
    out: list[Path] = []
    for root in sorted(roots, key=lambda p: len(p.parts)):
        if not any(root == o or o in root.parents for o in out):
            out.append(root)
    return out


def _orphans(
    session: Session,
    paths: MissionPaths,
    registered: set[str],
    report: CheckReport,
    *,
    repair: bool,
) -> None:
    rules = product_rules(session)
    release(session)
    skip = {
        paths.incoming.resolve(),
        paths.errors.resolve(),
        paths.staging.resolve(),
        (paths.root / ".dbproc").resolve(),
    }
    inspectors = InspectorSet(rules, paths.codes)
    for top in _product_roots(paths, [r.dir for r in rules]):
        if not top.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            dirnames[:] = sorted(
                d for d in dirnames if (here / d).resolve() not in skip and not d.startswith(".")
            )
            for name in sorted(filenames):
                path = here / name
                if str(path) in registered or name.startswith("."):
                    continue
                if not any(r.format.match(name) for r in rules):
                    continue
                _orphan(session, paths, inspectors, path, report, repair=repair)


def _orphan(
    session: Session,
    paths: MissionPaths,
    inspectors: InspectorSet,
    path: Path,
    report: CheckReport,
    *,
    repair: bool,
) -> None:
    verdict = inspectors.identify(path)
    facts = verdict.facts
    if facts is None:
        report.problems.append(
            Problem(
                "orphan_unidentified",
                str(path),
                f"not registered and not identifiable: {verdict.message}",
            )
        )
        return
    if destination(paths.root, facts.product.dir, facts.date, path.name) != path:
        report.problems.append(
            Problem(
                "orphan_unidentified",
                str(path),
                f"looks like {facts.product.name} {facts.date} but is not "
                "in that product's folder; move it to incoming",
            )
        )
        return
    problem = Problem(
        "orphan",
        str(path),
        f"a {facts.product.name} file with no record"
        + ("; registered" if repair else "; --repair registers it"),
    )
    report.problems.append(problem)
    if not repair:
        return
    known = queries.find_file(session, path.name)
    existing = list_versions(session, facts.product.id, facts.date, facts.slot)
    if known is not None or any(e.version == facts.version for e in existing):
        release(session)
        problem.kind = "orphan_unidentified"
        problem.detail = (
            f"a {facts.product.name} file with no record, but its name or "
            "identity is registered for another file; look at it"
        )
        return
    digest = hash_file(path)
    register_file(
        session,
        facts,
        filename=path.name,
        path=stored_path(paths.root, path),
        sha256=digest.sha256,
        size=digest.size,
        existing=existing,
        cause=f"check registered orphan {path.name}",
    )
    commit(session)
    problem.repaired = True


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
    from dbproc.admin.registry import stored_settings
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
    from dbproc.control.locking import OsLock

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
