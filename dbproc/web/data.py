"""Every read the dashboard makes but coverage (:mod:`dbproc.web.coverage_data`), each a
bounded query or an existing service (status, inventory, lineage). Pages never scan
``file``: runs come from the newest N ids, lineage from a walk of N hops."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from dbproc.admin import status as status_module
from dbproc.control.pass_holders import running_holders
from dbproc.db import queries
from dbproc.db.file_paths import MissionPaths
from dbproc.db.files import list_versions
from dbproc.db.models import (
    FAILED_RUN_STATUSES,
    Code,
    CoverageDay,
    CoverageMonth,
    File,
    PassRecord,
    Process,
    Product,
    Reject,
    Run,
)
from dbproc.errors import NotFound
from dbproc.provenance import inventory, lineage
from dbproc.web.feed import iso_z

#: how many of the newest runs the plots and lists look at
RECENT_RUNS = 2000
FAILED = [s.value for s in FAILED_RUN_STATUSES]


def _run_rows(session: Session, *, failed: bool, limit: int) -> list[dict[str, Any]]:
    return [
        r.as_dict()
        for r in inventory.list_runs(session, inventory.RunQuery(failed=failed, limit=limit))
    ]


def overview(
    engine: Engine, session: Session, pending_reviews: list[dict[str, Any]]
) -> dict[str, Any]:
    """The front page: mission, lock, last passes, counts, failures, pending reviews."""
    mission = queries.get_mission(session)
    lock = lock_state(engine, session)
    passes = session.scalars(select(PassRecord).order_by(PassRecord.id.desc()).limit(8)).all()
    products = _product_totals(session)
    rejects = (
        session.scalar(select(func.count()).select_from(Reject).where(Reject.retried_at.is_(None)))
        or 0
    )
    data = {
        "mission": mission.name,
        "lock": lock,
        "activity": lock.get("activity") or _activity(lock),
        "passes": [_pass_json(p) for p in passes],
        "products": products,
        "failures": _run_rows(session, failed=True, limit=10),
        "rejects": int(rejects),
        "pending_reviews": pending_reviews,
        "recent_runs": recent_runs(session),
    }
    return data


def _product_totals(session: Session) -> list[dict[str, Any]]:
    """Per product, by level: files, newest slots, days and first/last day. Totals come
    from the month summary (hundreds of rows); first/last day: index look-ups."""
    first_day = (
        select(func.min(CoverageDay.date))
        .where(CoverageDay.product_id == Product.id)
        .scalar_subquery()
    )
    last_day = (
        select(func.max(CoverageDay.date))
        .where(CoverageDay.product_id == Product.id)
        .scalar_subquery()
    )
    totals = (
        select(
            CoverageMonth.product_id,
            func.sum(CoverageMonth.files).label("files"),
            func.sum(CoverageMonth.slots).label("slots"),
            func.sum(CoverageMonth.days).label("days"),
        )
        .group_by(CoverageMonth.product_id)
        .subquery()
    )
    counts = session.execute(
        select(
            Product.name,
            func.coalesce(totals.c.files, 0),
            func.coalesce(totals.c.slots, 0),
            func.coalesce(totals.c.days, 0),
            first_day,
            last_day,
        )
        .join(totals, totals.c.product_id == Product.id, isouter=True)
        .order_by(Product.level, Product.name)
    ).all()
    return [
        {
            "name": n,
            "files": int(f),
            "newest": int(s),
            "days": int(d),
            "first": a.isoformat() if a else None,
            "last": b.isoformat() if b else None,
        }
        for n, f, s, d, a, b in counts
    ]


def _activity(lock: dict[str, Any]) -> str:
    running = lock.get("passes_marked_running") or []
    if not running:
        return "idle"
    first = running[0]
    return (
        f"pass {first['pass_id']} ({first['command']}) running on {first['host']}, "
        f"heartbeat {first['heartbeat_age_seconds']} s ago"
    )


def _pass_json(p: PassRecord) -> dict[str, Any]:
    return {
        "id": p.id,
        "command": p.command,
        "host": p.host,
        "state": p.state,
        "outcome": p.outcome,
        "started_at": iso_z(p.started_at),
        "ended_at": iso_z(p.ended_at),
        "summary": p.summary,
    }


def recent_runs(session: Session) -> list[dict[str, Any]]:
    """The newest runs (an index walk on the run id): day, status, duration, code
    version; processes and codes come from their own (small) tables, not a join."""
    processes = dict(session.execute(select(Process.id, Process.name)).all())
    codes = {
        i: f"{a}.{b}.{c}"
        for i, a, b, c in session.execute(
            select(Code.id, Code.interface, Code.quality, Code.revision)
        )
    }
    rows = session.execute(
        select(Run.id, Run.status, Run.queued_at, Run.duration, Run.process_id, Run.code_id)
        .order_by(Run.id.desc())
        .limit(RECENT_RUNS)
    ).all()
    return [
        {
            "id": r.id,
            "status": r.status,
            "day": r.queued_at.date().isoformat(),
            "duration": r.duration,
            "process": processes.get(r.process_id, "?"),
            "code_version": codes.get(r.code_id, "?"),
        }
        for r in rows
    ]


def lock_state(engine: Engine, session: Session) -> dict[str, Any]:
    """``status``'s lock object. On PostgreSQL the advisory lock is looked up in
    ``pg_locks`` through this session instead of a probe on a new connection."""
    if engine.dialect.name != "postgresql":
        return status_module.lock_state(engine, session).as_dict()
    where = session.execute(
        text("SELECT current_database() || ':' || coalesce(current_schema(), '')")
    ).scalar_one()
    digest = hashlib.sha256(f"dbproc:{where}".encode()).digest()  # as locking.OsLock
    key = int.from_bytes(digest[:8], "big")
    held = bool(
        session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1)"
            ),
            {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
        ).scalar()
    )
    holders = running_holders(session)
    return {
        "held": held,
        "passes_marked_running": [
            {
                "pass_id": h.pass_id,
                "host": h.host,
                "pid": h.pid,
                "command": h.command,
                "heartbeat_age_seconds": round(h.heartbeat_age, 1),
            }
            for h in holders
        ],
        "stale": not held and bool(holders),
    }


def file_page(session: Session, filename: str, hops: int) -> dict[str, Any]:
    """A file: its record, the other versions of its identity, its lineage N hops out."""
    record = queries.get_file(session, filename)
    (found,) = inventory.list_files(
        session, inventory.FileQuery(names=[record.filename], all_versions=True)
    )
    item = found.as_dict()
    versions = list_versions(session, record.product_id, record.date, record.slot)
    graph = lineage.lineage(session, record.filename, depth=hops)
    run = None
    if record.run_id is not None:
        run = session.scalar(select(Run).where(Run.id == record.run_id))
    return {
        "file": item,
        "versions": sorted(
            (
                {"filename": v.filename, "version": str(v.version), "newest": v.is_newest}
                for v in versions
            ),
            key=lambda v: v["filename"],
        ),
        "lineage": graph.as_dict(),
        "run": None
        if run is None
        else {
            "id": run.id,
            "status": run.status,
            "host": run.host,
            "ended_at": iso_z(run.ended_at),
        },
    }


#: how much of a run's log file the run page shows (its end)
LOG_TAIL_BYTES = 64 * 1024


def run_page(session: Session, run_id: int) -> dict[str, Any]:
    """A run: what it ran, how it ended, the tails of its output."""
    rows = inventory.list_runs(session, inventory.RunQuery(limit=None, ids=(run_id,)))
    if not rows:
        raise NotFound(f"no run {run_id}; `dbproc runs` lists them")
    data = rows[0].as_dict()
    data["outputs"] = list(session.scalars(select(File.filename).where(File.run_id == run_id)))
    ids = [i for i in data["inputs"] or [] if isinstance(i, int)]
    names = dict(session.execute(select(File.id, File.filename).where(File.id.in_(ids))).all())
    data["input_names"] = [
        names.get(i, str(i)) if isinstance(i, int) else str(i) for i in data["inputs"] or []
    ]
    data["log_tail"] = _tail(data.get("log"))
    return data


def _tail(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(log {path} unreadable: {exc})"
    return text if size <= LOG_TAIL_BYTES else f"[... {size - LOG_TAIL_BYTES} bytes before]\n{text}"


def failures(session: Session, limit: int = 200) -> dict[str, Any]:
    """Failed runs and refused incoming files, newest first, at most ``limit`` of each."""
    runs = _run_rows(session, failed=True, limit=limit)
    mission_paths = MissionPaths.of(queries.get_mission(session))
    rejects = [
        inventory.reject_record(r, mission_paths).as_dict()
        for r in session.scalars(
            select(Reject)
            .where(Reject.retried_at.is_(None))
            .order_by(Reject.id.desc())
            .limit(limit)
        )
    ]
    return {"runs": runs, "rejects": rejects}


def runs_per_day(runs: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """(day, runs, failed runs) for the plot, oldest day first."""
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for run in runs:
        per[run["day"]][0] += 1
        per[run["day"]][1] += run["status"] in FAILED
    return sorted((d, n, f) for d, (n, f) in per.items())


def durations_by_code(runs: list[dict[str, Any]]) -> list[tuple[str, list[float]]]:
    """Durations of finished runs per ``process code-version``."""
    per: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        if run["duration"] is not None:
            per[f"{run['process']} {run['code_version']}"].append(float(run["duration"]))
    return sorted(per.items())
