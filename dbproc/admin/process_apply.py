"""``config apply`` for the ``[processes.*]`` tables: add, update, revive and retire process
rows, keep their inputs in line, bring their codes in line (code_versions.py for one code,
code_sets.py for several), and queue every date of a changed process for replanning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dbproc.admin.apply_changes import ApplyResult, Change, diff_fields
from dbproc.admin.code_sets import apply_code_set
from dbproc.admin.code_versions import add_code, apply_code
from dbproc.db import queries
from dbproc.db.models import Pending, Process, ProcessInput, Product
from dbproc.mission import MissionConfig, ProcessConfig


def _queue_all_dates(session: Session, process: Process, cause: str, result: ApplyResult) -> None:
    session.add(Pending(process_id=process.id, date=None, cause=cause))
    if process.name not in result.replan_processes:
        result.replan_processes.append(process.name)


def apply_processes(
    session: Session,
    config: MissionConfig,
    products: Mapping[str, Product],
    now: Any,
    result: ApplyResult,
) -> None:
    """Make the process rows match ``config.processes`` (those missing are retired)."""
    existing = {p.name: p for p in session.scalars(select(Process))}
    for name, cfg in config.processes.items():
        output_id = products[cfg.output].id if cfg.output else None
        row = existing.get(name)
        if row is None:
            _add_process(session, name, cfg, output_id, config, products, now, result)
        else:
            _update_process(session, row, cfg, output_id, config, products, now, result)
    for name, row in existing.items():
        if name not in config.processes and row.active:
            row.active = False
            result.changes.append(
                Change(
                    "retire",
                    "process",
                    name,
                    ("no longer in the mission file; its outputs are kept",),
                )
            )


def _add_process(
    session: Session,
    name: str,
    cfg: ProcessConfig,
    output_id: int | None,
    config: MissionConfig,
    products: Mapping[str, Product],
    now: Any,
    result: ApplyResult,
) -> None:
    row = Process(
        name=name,
        output_product_id=output_id,
        timebase=cfg.timebase,
        description=cfg.description,
        active=True,
        early_cutoff=cfg.early_cutoff,
    )
    session.add(row)
    session.flush()
    _set_inputs(session, row, cfg, products)
    for code in cfg.all_codes:
        add_code(session, row, code, config, now)
    versions = ", ".join(str(c.version) for c in cfg.all_codes)
    result.changes.append(Change("add", "process", name, (f"code {versions}",)))
    _queue_all_dates(session, row, "process added", result)


def _update_process(
    session: Session,
    row: Process,
    cfg: ProcessConfig,
    output_id: int | None,
    config: MissionConfig,
    products: Mapping[str, Product],
    now: Any,
    result: ApplyResult,
) -> None:
    details = diff_fields(
        row,
        {
            "output_product_id": output_id,
            "timebase": cfg.timebase,
            "description": cfg.description,
            "early_cutoff": cfg.early_cutoff,
        },
    )
    details = [d.replace("output_product_id", "output") for d in details]
    if not row.active:
        row.active = True
        details.append("revived")
    if _inputs_changed(session, row, cfg, products):
        _set_inputs(session, row, cfg, products)
        details.append("inputs changed")
    code_details = (
        apply_code(session, row, cfg, config, now, result)
        if not cfg.codes
        else apply_code_set(session, row, cfg, config, now, result)
    )
    rebuild_worthy = [d for d in details if not d.startswith(("description", "early_cutoff"))]
    if details:
        result.changes.append(Change("update", "process", row.name, tuple(details)))
    if rebuild_worthy or code_details:
        _queue_all_dates(session, row, "process or code changed", result)


def _inputs_changed(
    session: Session, process: Process, cfg: ProcessConfig, products: Mapping[str, Product]
) -> bool:
    current = [
        (i.product_id, i.before, i.after, i.optional)
        for i in queries.list_inputs(session, process.id)
    ]
    wanted = [(products[i.product].id, i.before, i.after, i.optional) for i in cfg.inputs]
    return current != wanted


def _set_inputs(
    session: Session, process: Process, cfg: ProcessConfig, products: Mapping[str, Product]
) -> None:
    session.execute(delete(ProcessInput).where(ProcessInput.process_id == process.id))
    for position, item in enumerate(cfg.inputs):
        session.add(
            ProcessInput(
                process_id=process.id,
                product_id=products[item.product].id,
                position=position,
                before=item.before,
                after=item.after,
                optional=item.optional,
            )
        )
    session.flush()
