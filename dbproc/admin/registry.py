"""``config apply`` and ``config export``: the mission file ⇄ the registered mission.

Apply is idempotent and never deletes: products and processes missing from the file are
retired (kept, inactive), a changed ``code.version`` adds a code row and deactivates the
old one, and anything that changes what a process would build queues it for replanning.

Here: the entry points, the mission row and the products; processes and their inputs are
process_apply.py, codes code_versions.py and code_sets.py, the change records
apply_changes.py, the stored settings mission_settings.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import select
from sqlalchemy.orm import Session

# ApplyResult is re-exported: the documented result of Archive.apply_config (python-api.md)
from dbproc.admin.apply_changes import ApplyResult as ApplyResult
from dbproc.admin.apply_changes import Change, diff_fields
from dbproc.admin.code_sets import active_codes
from dbproc.admin.mission_settings import retention_from_json, settings_from_json, settings_json
from dbproc.admin.process_apply import apply_processes
from dbproc.admin.product_drift import drift_warning
from dbproc.clock import utcnow
from dbproc.db import queries
from dbproc.db.models import Code, Mission, Process, Product
from dbproc.errors import ConfigError
from dbproc.feed.config import add_feed_tables
from dbproc.mission import MissionConfig, ProductConfig


def apply_mission(session: Session, config: MissionConfig) -> ApplyResult:
    """Register or update the mission from ``config``. The caller commits (or rolls back)."""
    result = ApplyResult()
    now = utcnow()
    _apply_mission_row(session, config, now, result)
    products = _apply_products(session, config.products, result, config.mission.root)
    apply_processes(session, config, products, now, result)
    session.flush()
    return result


def _apply_mission_row(
    session: Session, config: MissionConfig, now: Any, result: ApplyResult
) -> None:
    m = config.mission
    wanted = {
        "root_dir": str(m.root),
        "incoming_dir": str(m.incoming),
        "errors_dir": str(m.errors),
        "codes_dir": str(m.codes),
        "settings": settings_json(config),
    }
    row = queries.find_mission(session)
    if row is None:
        session.add(Mission(name=m.name, updated_at=now, **wanted))
        result.changes.append(Change("add", "mission", m.name))
        return
    if row.name != m.name:
        raise ConfigError(
            f"this database holds mission {row.name!r}, but the file describes "
            f"mission {m.name!r}; use another database or fix [mission] name"
        )
    details = diff_fields(row, wanted)
    if details:
        row.updated_at = now
        result.changes.append(Change("update", "mission", m.name, tuple(details)))


def _product_fields(p: ProductConfig) -> dict[str, Any]:
    return {
        "level": p.level,
        "dir": p.dir,
        "format": p.format,
        "inspector": p.inspector,
        "inspector_args": dict(p.inspector_args),
        "instrument": p.instrument,
        "satellite": p.satellite,
        "description": p.description,
        "inspector_timeout": p.inspector_timeout,
        "review": p.review,
        "cadence": p.cadence,
    }


def _apply_products(
    session: Session,
    configs: Mapping[str, ProductConfig],
    result: ApplyResult,
    root: Path | None = None,
) -> dict[str, Product]:
    existing = {p.name: p for p in session.scalars(select(Product))}
    folded = {n.casefold(): n for n in existing}
    for name, cfg in configs.items():
        row = existing.get(name)
        if row is None and name.casefold() in folded:
            raise ConfigError(
                f"product {name!r} differs from the registered product "
                f"{folded[name.casefold()]!r} only by case; product names must differ by "
                "more than case: use the registered name, or another name"
            )
        if row is None:
            row = Product(name=name, active=True, max_span_seconds=86400.0, **_product_fields(cfg))
            session.add(row)
            existing[name] = row
            result.changes.append(Change("add", "product", name))
            continue
        before = (row.dir, row.format)
        details = diff_fields(row, _product_fields(cfg))
        drift = (
            None
            if root is None
            else drift_warning(
                session,
                row,
                root,
                dir_changed=before[0] != row.dir,
                format_changed=before[1] != row.format,
            )
        )
        if not row.active:
            row.active = True
            result.changes.append(Change("revive", "product", name, tuple(details)))
        elif details:
            result.changes.append(Change("update", "product", name, tuple(details)))
        if drift is not None:
            result.changes.append(Change("warning", "product", name, (drift,)))
    for name, row in existing.items():
        if name not in configs and row.active:
            row.active = False
            result.changes.append(
                Change(
                    "retire",
                    "product",
                    name,
                    ("no longer in the mission file; its files are kept",),
                )
            )
    session.flush()
    return existing


def _plain_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None and v != {} and v != []}


def code_table(code: Code) -> dict[str, Any]:
    """A code row as a ``[processes.NAME.code]`` table."""
    table = _drop_none(
        {
            "path": code.path,
            "version": str(code.version),
            "output_interface": code.output_interface,
            "args": list(code.args or []),
            "valid_from": code.valid_from,
            "valid_until": code.valid_until,
            "timeout": code.timeout,
            "description": code.description,
        }
    )
    table.setdefault("args", [])
    return table


def export_mission(session: Session) -> str:
    """The registered mission as a mission file (TOML) that applies as a no-op."""
    mission = queries.get_mission(session)
    ingest, lock, execution = settings_from_json(mission.settings or {})
    doc: dict[str, Any] = {
        "mission": {
            "name": mission.name,
            "root": mission.root_dir,
            "incoming": mission.incoming_dir,
            "errors": mission.errors_dir,
            "codes": mission.codes_dir,
        },
        "ingest": vars(ingest).copy(),
        "lock": vars(lock).copy(),
        "execution": _drop_none(vars(execution).copy()),
        "retention": vars(retention_from_json(mission.settings or {})).copy(),
        "products": {},
        "processes": {},
    }
    products = {p.id: p for p in session.scalars(select(Product))}
    for p in sorted(products.values(), key=lambda p: p.name):
        if not p.active:
            continue
        doc["products"][p.name] = _product_table(p)
    for proc in queries.list_processes(session):
        doc["processes"][proc.name] = _process_table(session, proc, products)
    add_feed_tables(doc, mission.settings or {})
    header = (
        f"# Mission {mission.name!r} as registered; `dbproc config apply` of this "
        "file changes nothing.\n"
    )
    return header + tomli_w.dumps(doc)


def _product_table(p: Product) -> dict[str, Any]:
    """A product row as a ``[products.NAME]`` table."""
    return _drop_none(
        {
            "level": _plain_number(p.level),
            "dir": p.dir,
            "format": p.format,
            "inspector": p.inspector,
            "inspector_args": dict(p.inspector_args or {}),
            "instrument": p.instrument,
            "satellite": p.satellite,
            "description": p.description,
            "inspector_timeout": p.inspector_timeout,
            "review": p.review or None,
            "cadence": p.cadence,
        }
    )


def _process_table(
    session: Session, proc: Process, products: Mapping[int, Product]
) -> dict[str, Any]:
    """A process row with its inputs and active codes as a ``[processes.NAME]`` table."""
    active = active_codes(session, proc.id)
    code = active[0] if active else None
    body: dict[str, Any] = {}
    if proc.output_product_id is not None:
        body["output"] = products[proc.output_product_id].name
    body["timebase"] = proc.timebase
    if proc.description:
        body["description"] = proc.description
    if proc.early_cutoff:
        body["early_cutoff"] = True
    body["inputs"] = [
        {
            "product": products[i.product_id].name,
            "before": i.before,
            "after": i.after,
            "optional": i.optional,
        }
        for i in queries.list_inputs(session, proc.id)
    ]
    if len(active) > 1:
        body["code"] = [code_table(c) for c in active]
    elif code is not None:
        body["code"] = code_table(code)
    return body
