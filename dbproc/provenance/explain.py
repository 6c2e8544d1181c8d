"""``dbproc explain`` (why a file or a product-date is, or is not, up to date) and
``dbproc files --missing`` (the coverage question): both are the planner's own decision
for the key, with its reason code and evidence, so they can never disagree with ``plan``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dbproc.build.plan_types import ProcessSpec
from dbproc.build.planner import Decision, Status, decide
from dbproc.build.snapshot import SnapshotLoader
from dbproc.db import queries
from dbproc.db.models import File
from dbproc.errors import UsageError
from dbproc.feed.review import review_notes
from dbproc.records import OMIT, Omitted, Record, jsonable

#: longest range ``files --missing`` accepts in one call
MAX_MISSING_DAYS = 366 * 50


@dataclass(frozen=True)
class Explanation(Record):
    """Why a file, or a product (or process) on a date, is or is not up to date: the
    planner's own decision for the key, with its reason code and evidence.

    Its keys depend on what is explained (a file adds ``filename``, ``version``,
    ``newest``, ``on_disk`` and, when superseded, ``superseded_by``; an ingested product
    has no ``next``; a key with several slots has ``decisions``), so the record keeps
    the contract's object as ``data`` and offers the keys every answer has as attributes.
    """

    data: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The object of ``explain --json``."""
        return dict(jsonable(self.data))

    @property
    def up_to_date(self) -> bool:
        """Is the newest output current (for several slots: all of them)?"""
        return bool(self.data["up_to_date"])

    @property
    def status(self) -> str | None:
        """``up_to_date``, ``out_of_date``, ``superseded``, ``ingested``, ``not_expected``..."""
        return self.data.get("status")

    @property
    def reason(self) -> str | None:
        """The reason code (``code_changed``, ``input_newer``, ``blocked_on_review``...)."""
        return self.data.get("reason")

    @property
    def evidence(self) -> list[str]:
        """The facts behind the verdict, one sentence each."""
        return list(self.data.get("evidence", []))

    @property
    def decisions(self) -> list[Explanation]:
        """One answer per slot (a single answer is its own only decision)."""
        if "decisions" in self.data:
            return [Explanation(d) for d in self.data["decisions"]]
        return [self]

    @classmethod
    def of(cls, decisions: list[dict[str, Any]], what: dict[str, Any]) -> Explanation:
        """One answer, or ``what`` (the key) with every slot's answer under ``decisions``."""
        if len(decisions) == 1:
            return cls(decisions[0])
        up = all(d["up_to_date"] for d in decisions)
        return cls({**what, "decisions": decisions, "up_to_date": up})


@dataclass(frozen=True)
class MissingDate(Record):
    """A date (or slot) where an expected file of a product does not exist, and why."""

    product: str
    date: dt.date
    #: FILE outputs: the slot (absent for an ingested product)
    slot: str | Omitted
    #: the process that makes it (None: the product is ingested)
    process: str | None
    reason: str | None
    evidence: list[str]
    #: the last run for the key, if any (absent for an ingested product)
    last_run: int | None | Omitted = OMIT


def _decision_json(decision: Decision, held: list[str] | None = None) -> dict[str, Any]:
    action = decision.action
    data: dict[str, Any] = {
        "process": decision.process,
        "date": decision.date.isoformat(),
        "slot": decision.slot,
        "up_to_date": decision.status is Status.UP_TO_DATE,
        "status": "out_of_date" if action else decision.status.value if decision.status else None,
        "reason": decision.reason,
        "reasons": [r.value for r in action.reasons] if action else [decision.reason],
        "evidence": [*decision.evidence, *(held or [])],
        "review_hold": held or [],
        "output": (
            {"filename": decision.output.filename, "version": str(decision.output.version)}
            if decision.output
            else None
        ),
        "inputs": [f.filename for f in decision.inputs],
        "next": (
            {
                "filename": action.output_filename,
                "version": str(action.output_version) if action.output_version else None,
                "code_version": str(action.code.version),
            }
            if action
            else None
        ),
        "last_run": (
            {
                "id": decision.last_run.id,
                "status": decision.last_run.status,
                "error": decision.last_run.error,
            }
            if decision.last_run
            else None
        ),
    }
    return data


def explain_key(
    session: Session, product: str, day: dt.date, slot: str | None = None
) -> list[dict[str, Any]]:
    """The planner's decisions for a product and date (one per slot for FILE outputs)."""
    product = queries.get_product(session, product).name
    loader = SnapshotLoader(session)
    process = next((p for p in loader.catalogue.processes.values() if p.output == product), None)
    if process is None:
        return [
            {
                "product": product,
                "date": day.isoformat(),
                "process": None,
                "up_to_date": True,
                "status": "ingested",
                "reason": "ingested",
                "reasons": ["ingested"],
                "evidence": [f"{product} is not made by any process: its files are ingested"],
            }
        ]
    snapshot = loader.load([(process.name, day)])
    decisions = [d for d in decide(snapshot, process, day) if slot is None or d.slot == slot]
    held = review_notes(session, process.inputs, day)  # §13: what review holds back
    if not decisions:
        return [
            {
                "product": product,
                "date": day.isoformat(),
                "process": process.name,
                "up_to_date": True,
                "status": Status.NOT_EXPECTED.value,
                "reason": Status.NOT_EXPECTED.value,
                "reasons": [Status.NOT_EXPECTED.value],
                "evidence": [f"no file of {process.required[0].product} is dated {day}", *held],
                "review_hold": held,
            }
        ]
    return [
        {"product": product, **_decision_json(d, held), "code": _code_json(process, d.date)}
        for d in decisions
    ]


def _code_json(process: ProcessSpec, day: dt.date) -> dict[str, Any] | None:
    """The code that builds ``day`` (several codes per process: the one whose range holds
    it) and why."""
    code = process.code_for(day)
    why = process.code_choice(day)
    if code is None:
        return {"path": None, "version": None, "why": why}
    return {
        "path": code.path,
        "version": str(code.version),
        "valid_from": code.valid_from.isoformat() if code.valid_from else None,
        "valid_until": code.valid_until.isoformat() if code.valid_until else None,
        "why": why,
    }


def explain_process(session: Session, name: str, day: dt.date) -> list[dict[str, Any]]:
    """The planner's decisions for a process and date; RUN processes (no output) too."""
    loader = SnapshotLoader(session)
    process = loader.catalogue.processes.get(name)
    if process is None:
        known = ", ".join(sorted(loader.catalogue.processes)) or "none"
        raise UsageError(f"no active process {name!r} (known: {known})")
    snapshot = loader.load([(process.name, day)])
    decisions = decide(snapshot, process, day)
    if not decisions:
        return [
            {
                "product": process.output,
                "date": day.isoformat(),
                "process": process.name,
                "up_to_date": True,
                "status": Status.NOT_EXPECTED.value,
                "reason": Status.NOT_EXPECTED.value,
                "reasons": [Status.NOT_EXPECTED.value],
                "evidence": [f"no file of {process.required[0].product} is dated {day}"],
            }
        ]
    return [{"product": process.output, **_decision_json(d)} for d in decisions]


def explain_file(session: Session, filename: str) -> dict[str, Any]:
    """Why ``filename`` is (or is not) up to date."""
    record = queries.get_file(session, filename)
    product = next(
        p for p in queries.list_products(session, active_only=False) if p.id == record.product_id
    )
    data: dict[str, Any] = {
        "filename": record.filename,
        "version": str(record.version),
        "newest": record.is_newest,
        "on_disk": record.on_disk,
    }
    if not record.is_newest:
        newest = session.scalars(
            select(File).where(
                File.product_id == record.product_id,
                File.date == record.date,
                File.slot == record.slot,
                File.is_newest.is_(True),
            )
        ).first()
        data["superseded_by"] = (
            {"filename": newest.filename, "version": str(newest.version)} if newest else None
        )
    decisions = explain_key(session, product.name, record.date, record.slot)
    data.update(decisions[0])
    data["filename"] = record.filename
    data["version"] = str(record.version)
    if not record.is_newest:
        newest_line = (
            f"superseded by {data['superseded_by']['filename']} "
            f"({data['superseded_by']['version']}); about the newest: "
            if data.get("superseded_by")
            else "superseded; about the newest: "
        )
        data["up_to_date"] = False
        data["status"] = data["reason"] = "superseded"
        data["reasons"] = ["superseded", *data.get("reasons", [])]
        data["evidence"] = [newest_line + "; ".join(data["evidence"])]
    return data


def missing(
    session: Session, product: str, since: dt.date | None, until: dt.date | None
) -> list[MissingDate]:
    """Dates in [since, until] where an expected output of ``product`` does not exist."""
    record = queries.get_product(session, product)
    product = record.name
    loader = SnapshotLoader(session)
    process = next((p for p in loader.catalogue.processes.values() if p.output == product), None)
    first, last = _range(session, record.id, process, loader, since, until)
    if first is None or last is None:
        return []
    if (last - first).days > MAX_MISSING_DAYS:
        raise UsageError(
            f"--since/--until span {(last - first).days} days; at most {MAX_MISSING_DAYS} at a time"
        )
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    out: list[MissingDate] = []
    if process is None:
        present = set(
            session.scalars(
                select(File.date)
                .distinct()
                .where(File.product_id == record.id, File.date >= first, File.date <= last)
            )
        )
        return [
            MissingDate(
                product, d, OMIT, None, "no_file", [f"no {product} file is dated {d}"], OMIT
            )
            for d in days
            if d not in present
        ]
    snapshot = loader.load([(process.name, d) for d in days])
    for day in days:
        for decision in decide(snapshot, process, day):
            if decision.output is not None or decision.status is Status.NOT_EXPECTED:
                continue
            out.append(
                MissingDate(
                    product,
                    day,
                    decision.slot,
                    process.name,
                    decision.reason,
                    list(decision.evidence),
                    decision.last_run.id if decision.last_run else None,
                )
            )
    return out


def _range(
    session: Session,
    product_id: int,
    process: Any,
    loader: SnapshotLoader,
    since: dt.date | None,
    until: dt.date | None,
) -> tuple[dt.date | None, dt.date | None]:
    if since is not None and until is not None:
        if since > until:
            raise UsageError(f"--since {since} is after --until {until}")
        return since, until
    products = [product_id]
    if process is not None:
        products = [loader.catalogue.product_ids[s.product] for s in process.required]
    lo, hi = session.execute(
        select(func.min(File.date), func.max(File.date)).where(File.product_id.in_(products))
    ).one()
    return since or lo, until or hi
