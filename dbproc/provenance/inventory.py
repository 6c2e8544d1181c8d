"""Read-only listings: registered files, rejects; and moving rejects back for a retry."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db import queries
from dbproc.db.file_paths import MissionPaths, absolute_path
from dbproc.db.models import FAILED_RUN_STATUSES, Code, File, Process, Product, Reject, Run
from dbproc.db.unit import commit
from dbproc.errors import NotFound, UsageError
from dbproc.ingest.incoming import printable
from dbproc.ingest.placement import NAME_MAX, REASON_SUFFIX, move_file, unlink_durably
from dbproc.records import (
    FileRecord,
    MadeBy,
    RejectRecord,
    RetryResult,
    RunDetail,
    RunRecord,
)
from dbproc.version import Version

logger = logging.getLogger("dbproc.inventory")


_OPERATOR = re.compile(r">=|<=|!=|=|>|<")


@dataclass(frozen=True)
class MetadataFilter:
    """``KEY=VALUE`` (also ``KEY>VALUE``, ``KEY<VALUE``, ``KEY>=``, ``KEY<=``, ``KEY!=``).

    Numbers compare as numbers, anything else as text; ``true``/``false`` match booleans.
    A file whose metadata lacks ``KEY`` matches no filter on ``KEY`` (not even ``!=``).
    """

    key: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> MetadataFilter:
        """Parse ``temperature_K<0.02`` and friends: the first operator splits the text."""
        match = _OPERATOR.search(text)
        if match is not None and text[: match.start()].strip():
            return cls(text[: match.start()].strip(), match[0], text[match.end() :].strip())
        raise UsageError(f"--where {text!r}: write KEY=VALUE (or KEY<VALUE, KEY>VALUE, ...)")

    def matches(self, metadata: dict[str, Any] | None) -> bool:
        """Does a file's metadata satisfy this filter? Never when it lacks the key."""
        if not metadata or self.key not in metadata:
            return False
        actual = metadata[self.key]
        if self.op in ("=", "!="):
            equal = _same(actual, self.value)
            return equal if self.op == "=" else not equal
        try:
            left, right = float(actual), float(self.value)
        except (TypeError, ValueError):
            left_s, right_s = str(actual), self.value
            return {
                "<": left_s < right_s,
                ">": left_s > right_s,
                "<=": left_s <= right_s,
                ">=": left_s >= right_s,
            }[self.op]
        return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[
            self.op
        ]


def _same(actual: Any, text: str) -> bool:
    if isinstance(actual, bool):
        return text.lower() in (("true", "1", "yes") if actual else ("false", "0", "no"))
    if isinstance(actual, (int, float)):
        try:
            return float(text) == float(actual)
        except ValueError:
            return False
    return str(actual) == text


@dataclass(frozen=True)
class FileQuery:
    """Filters of ``dbproc files``."""

    products: Sequence[str] = ()
    all_versions: bool = False
    since: dt.date | None = None
    until: dt.date | None = None
    version: Version | None = None
    where: Sequence[MetadataFilter] = ()
    names: Sequence[str] = ()


def file_record(
    record: File, product: str, root: Path, code: tuple[str, str] | None = None
) -> FileRecord:
    """A registered file as the API returns it (its JSON is the contract's, section 7)."""
    return FileRecord(
        filename=record.filename,
        product=product,
        date=record.date,
        version=str(record.version),
        path=absolute_path(root, record.path),
        newest=bool(record.is_newest),
        start=record.start,
        stop=record.stop,
        size=record.size,
        sha256=record.sha256,
        keywords=dict(record.keywords or {}),
        metadata=dict(record.meta or {}),
        on_disk=bool(record.on_disk),
        state=(
            "purged" if record.purged_at is not None else "present" if record.on_disk else "missing"
        ),
        registered_at=record.registered_at,
        made_by=None if code is None else MadeBy(code[0], code[1]),
        run_id=record.run_id,
        review=record.review,
    )


def _file_select(session: Session, query: FileQuery) -> Select[File, str]:
    stmt = select(File, Product.name).join(Product, Product.id == File.product_id)
    if query.products:
        ids = [queries.get_product(session, name).id for name in query.products]
        stmt = stmt.where(File.product_id.in_(ids))
    if not query.all_versions:
        stmt = stmt.where(File.is_newest.is_(True))
    if query.since is not None:
        stmt = stmt.where(File.date >= query.since)
    if query.until is not None:
        stmt = stmt.where(File.date <= query.until)
    if query.version is not None:
        stmt = stmt.where(
            File.interface == query.version.interface,
            File.quality == query.version.quality,
            File.revision == query.version.revision,
        )
    if query.names:
        stmt = stmt.where(File.filename.in_(list(query.names)))
    return stmt.order_by(
        Product.level,
        Product.name,
        File.date,
        File.slot,
        File.interface,
        File.quality,
        File.revision,
    )


def list_files(session: Session, query: FileQuery) -> list[FileRecord]:
    """Registered files matching ``query``, in the JSON shape of the contract."""
    mission = queries.get_mission(session)
    root = Path(mission.root_dir)
    codes = {
        c.id: (p, str(c.version))
        for c, p in session.execute(
            select(Code, Process.name).join(Process, Process.id == Code.process_id)
        ).all()
    }
    out = []
    for record, product in session.execute(_file_select(session, query)):
        if query.where and not all(f.matches(record.meta) for f in query.where):
            continue
        out.append(
            file_record(
                record, product, root, codes.get(record.code_id) if record.code_id else None
            )
        )
    return out


def reject_record(row: Reject, paths: MissionPaths) -> RejectRecord:
    """A reject as the API returns it."""
    return RejectRecord(
        id=row.id,
        filename=row.filename,
        reason=row.reason,
        message=row.message,
        detail=row.detail,
        size=row.size,
        rejected_at=row.rejected_at,
        stored=paths.rejected / row.stored_name,
        present=os.path.lexists(paths.rejected / row.stored_name),
        retried_at=row.retried_at,
    )


def list_rejects(session: Session, *, include_retried: bool = False) -> list[RejectRecord]:
    """Refused incoming files, oldest first."""
    paths = MissionPaths.of(queries.get_mission(session))
    stmt = select(Reject).order_by(Reject.id)
    if not include_retried:
        stmt = stmt.where(Reject.retried_at.is_(None))
    return [reject_record(r, paths) for r in session.scalars(stmt)]


def retry_rejects(session: Session, names: Sequence[str] = ()) -> RetryResult:
    """Move rejected files (all, or those named) back to incoming for another pass."""
    paths = MissionPaths.of(queries.get_mission(session))
    stmt = select(Reject).where(Reject.retried_at.is_(None)).order_by(Reject.id)
    rows = list(session.scalars(stmt))
    if names:
        wanted = set(names)
        rows = [r for r in rows if r.filename in wanted or r.stored_name in wanted]
        missing = wanted - {r.filename for r in rows} - {r.stored_name for r in rows}
        if missing:
            raise NotFound(
                f"no pending reject called {', '.join(sorted(missing))}; "
                "`dbproc rejects` lists them"
            )
    moved: list[str] = []
    skipped: list[str] = []
    for row in rows:
        stored = paths.rejected / row.stored_name
        name = _retry_name(row)
        target = paths.incoming / name
        if not os.path.lexists(stored):
            skipped.append(f"{row.filename}: {stored} is gone")
            continue
        try:
            move_file(stored, target)
        except FileExistsError:
            skipped.append(f"{row.filename}: {target} already exists")
            continue
        except OSError as exc:
            skipped.append(f"{row.filename}: could not move it to {target}: {exc}")
            continue
        unlink_durably(stored.with_name(stored.name + REASON_SUFFIX))
        row.retried_at = utcnow()
        commit(session)
        moved.append(printable(name))
        logger.info("moved %s back to incoming", printable(name))
    return RetryResult(moved, skipped)


def _retry_name(row: Reject) -> str:
    """The name a retried file gets in incoming: the one it had there (``filename``
    may be an escaped, printable form of it), else ``filename``, else the stored name."""
    if row.incoming_name is not None:
        return os.fsdecode(row.incoming_name)
    return row.filename if len(row.filename.encode("utf-8")) <= NAME_MAX else row.stored_name


def run_fields(run: Run, process: str, code_version: str | None) -> dict[str, Any]:
    """The fields of a :class:`RunRecord` (and of a :class:`RunDetail`) for ``run``."""
    return {
        "id": run.id,
        "process": process,
        "date": run.date,
        "slot": run.slot,
        "code_version": code_version,
        "status": run.status,
        "reason": run.reason,
        "output": run.output_filename,
        "version": run.output_version,
        "inputs": run.inputs,
        "argv": run.argv,
        "exit_code": run.exit_code,
        "signal": run.signal,
        "error": run.error,
        "host": run.host,
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration": run.duration,
        "peak_memory_kb": run.peak_memory_kb,
        "pass_id": run.pass_id,
        "log": run.log_path,
        "stdout_tail": run.stdout_tail,
        "stderr_tail": run.stderr_tail,
    }


def run_record(run: Run, process: str, code_version: str | None) -> RunRecord:
    """A run as the API returns it."""
    return RunRecord(**run_fields(run, process, code_version))


@dataclass(frozen=True)
class RunQuery:
    """Filters of ``dbproc runs``."""

    failed: bool = False
    processes: Sequence[str] = ()
    status: Sequence[str] = ()
    since: dt.date | None = None
    until: dt.date | None = None
    limit: int | None = 100
    ids: Sequence[int] = ()


def list_runs(session: Session, query: RunQuery) -> list[RunRecord]:
    """Runs, newest first."""
    stmt = (
        select(Run, Process.name, Code.interface, Code.quality, Code.revision)
        .join(Process, Process.id == Run.process_id)
        .join(Code, Code.id == Run.code_id)
    )
    if query.failed:
        stmt = stmt.where(Run.status.in_([s.value for s in FAILED_RUN_STATUSES]))
    if query.status:
        stmt = stmt.where(Run.status.in_(list(query.status)))
    if query.processes:
        ids = [queries.get_process(session, p).id for p in query.processes]
        stmt = stmt.where(Run.process_id.in_(ids))
    if query.ids:
        stmt = stmt.where(Run.id.in_(list(query.ids)))
    if query.since:
        stmt = stmt.where(Run.date >= query.since)
    if query.until:
        stmt = stmt.where(Run.date <= query.until)
    stmt = stmt.order_by(Run.id.desc())
    if query.limit:
        stmt = stmt.limit(query.limit)
    return [run_record(run, name, f"{i}.{q}.{r}") for run, name, i, q, r in session.execute(stmt)]


def show_run(session: Session, run_id: int) -> RunDetail:
    """One run with its full log."""
    row = session.execute(
        select(Run, Process.name, Code.interface, Code.quality, Code.revision)
        .join(Process, Process.id == Run.process_id)
        .join(Code, Code.id == Run.code_id)
        .where(Run.id == run_id)
    ).first()
    if row is None:
        raise NotFound(f"no run {run_id}; `dbproc runs` lists them")
    run, name, i, q, r = row
    log_text = None
    if run.log_path:
        try:
            log_text = Path(run.log_path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            log_text = f"(log {run.log_path} unreadable: {exc})"
    outputs = session.scalars(select(File.filename).where(File.run_id == run_id)).all()
    return RunDetail(
        **run_fields(run, name, f"{i}.{q}.{r}"), log_text=log_text, outputs=list(outputs)
    )
