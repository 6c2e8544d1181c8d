"""``config apply`` and ``config export``: the mission file ⇄ the registered mission.

Apply is idempotent and never deletes: products and processes missing from the file are
retired (kept, inactive), a changed ``code.version`` adds a code row and deactivates the
old one, and anything that changes what a process would build queues it for replanning.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dbproc.admin.code_sets import active_codes, apply_code_set
from dbproc.admin.product_drift import drift_warning
from dbproc.clock import utcnow
from dbproc.db import queries
from dbproc.db.file_paths import MissionPaths
from dbproc.db.models import Code, Mission, Pending, Process, ProcessInput, Product
from dbproc.errors import ConfigError
from dbproc.feed.config import add_feed_tables
from dbproc.mission import (
    CodeConfig,
    ExecutionSettings,
    IngestSettings,
    LockSettings,
    MissionConfig,
    ProcessConfig,
    ProductConfig,
    RetentionSettings,
    resolve_code_path,
)


@dataclass(frozen=True)
class Change:
    """One thing an apply changed (or, in a dry run, would change)."""

    action: str  # add | update | retire | revive | new-code-version | warning
    kind: str  # mission | product | process | code
    name: str
    details: tuple[str, ...] = ()

    def describe(self) -> str:
        """One human line."""
        symbol = {
            "add": "+",
            "update": "~",
            "retire": "-",
            "revive": "+",
            "new-code-version": "^",
            "warning": "!",
        }.get(self.action, "*")
        text = f"{symbol} {self.kind} {self.name}"
        return f"{text}: {'; '.join(self.details)}" if self.details else text

    def as_json(self) -> dict[str, Any]:
        """The JSON shape of a change."""
        return {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "details": list(self.details),
        }


@dataclass
class ApplyResult:
    """What an apply did."""

    changes: list[Change] = field(default_factory=list)
    created_schema: bool = False
    replan_processes: list[str] = field(default_factory=list)
    #: dry runs: the builds the change would cause, per process (see dbproc.build.preview)
    builds: dict[str, dict[str, Any]] | None = None


def file_sha256(path: Path) -> str | None:
    """sha256 of a file, or None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _settings_json(config: MissionConfig) -> dict[str, Any]:
    return {
        "ingest": vars(config.ingest).copy(),
        "lock": vars(config.lock).copy(),
        "execution": vars(config.execution).copy(),
        "retention": vars(config.retention).copy(),
        "feed": config.feed.as_json(),
    }


def settings_from_json(
    data: Mapping[str, Any],
) -> tuple[IngestSettings, LockSettings, ExecutionSettings]:
    """The extension tables as stored in ``mission.settings``."""
    return (
        IngestSettings(**data.get("ingest", {})),
        LockSettings(**data.get("lock", {})),
        ExecutionSettings(**data.get("execution", {})),
    )


def retention_from_json(data: Mapping[str, Any]) -> RetentionSettings:
    """The ``[retention]`` table as stored in ``mission.settings``."""
    return RetentionSettings(**data.get("retention", {}))


@dataclass(frozen=True)
class StoredSettings:
    """The registered mission's folders and extension tables, as a pass uses them."""

    paths: MissionPaths
    ingest: IngestSettings
    lock: LockSettings
    execution: ExecutionSettings
    retention: RetentionSettings = RetentionSettings()


def stored_settings(session: Session) -> StoredSettings:
    """Read the registered mission's folders and settings (raises if none is applied)."""
    mission = queries.get_mission(session)
    data = mission.settings or {}
    return StoredSettings(
        MissionPaths.of(mission), *settings_from_json(data), retention=retention_from_json(data)
    )


def _diff(obj: object, wanted: Mapping[str, Any]) -> list[str]:
    details = []
    for key, value in wanted.items():
        current = getattr(obj, key)
        if _normal(current) != _normal(value):
            details.append(f"{key}: {_show(current)} -> {_show(value)}")
            setattr(obj, key, value)
    return details


def _normal(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _show(value: Any) -> str:
    return json.dumps(value, default=str) if not isinstance(value, str) else repr(value)


def apply_mission(session: Session, config: MissionConfig) -> ApplyResult:
    """Register or update the mission from ``config``. The caller commits (or rolls back)."""
    result = ApplyResult()
    now = utcnow()
    _apply_mission_row(session, config, now, result)
    products = _apply_products(session, config.products, result, config.mission.root)
    _apply_processes(session, config, products, now, result)
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
        "settings": _settings_json(config),
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
    details = _diff(row, wanted)
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
        details = _diff(row, _product_fields(cfg))
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


def _code_fields(code: CodeConfig) -> dict[str, Any]:
    return {
        "output_interface": code.output_interface,
        "path": code.path,
        "args": list(code.args),
        "valid_from": code.valid_from,
        "valid_until": code.valid_until,
        "timeout": code.timeout,
        "description": code.description,
    }


def _queue_all_dates(session: Session, process: Process, cause: str, result: ApplyResult) -> None:
    session.add(Pending(process_id=process.id, date=None, cause=cause))
    if process.name not in result.replan_processes:
        result.replan_processes.append(process.name)


def _apply_processes(
    session: Session,
    config: MissionConfig,
    products: Mapping[str, Product],
    now: Any,
    result: ApplyResult,
) -> None:
    existing = {p.name: p for p in session.scalars(select(Process))}
    for name, cfg in config.processes.items():
        output_id = products[cfg.output].id if cfg.output else None
        row = existing.get(name)
        if row is None:
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
                _add_code(session, row, code, config, now)
            versions = ", ".join(str(c.version) for c in cfg.all_codes)
            result.changes.append(Change("add", "process", name, (f"code {versions}",)))
            _queue_all_dates(session, row, "process added", result)
            continue
        details = _diff(
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
            _apply_code(session, row, cfg, config, now, result)
            if not cfg.codes
            else apply_code_set(session, row, cfg, config, now, result)
        )
        rebuild_worthy = [d for d in details if not d.startswith(("description", "early_cutoff"))]
        if details:
            result.changes.append(Change("update", "process", name, tuple(details)))
        if rebuild_worthy or code_details:
            _queue_all_dates(session, row, "process or code changed", result)
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


def _add_code(
    session: Session, process: Process, code: CodeConfig, config: MissionConfig, now: Any
) -> Code:
    sha = file_sha256(resolve_code_path(config.mission.codes, code.path))
    row = Code(
        process_id=process.id,
        interface=code.version.interface,
        quality=code.version.quality,
        revision=code.version.revision,
        sha256=sha,
        active=True,
        registered_at=now,
        **_code_fields(code),
    )
    session.add(row)
    session.flush()
    return row


def _apply_code(
    session: Session,
    process: Process,
    cfg: ProcessConfig,
    config: MissionConfig,
    now: Any,
    result: ApplyResult,
) -> list[str]:
    """Bring the process's code in line; return details that change what gets built."""
    codes = queries.list_codes(session, process.id)
    active = next((c for c in codes if c.active), None)
    wanted = cfg.code.version
    same = next((c for c in codes if c.version == wanted), None)
    rebuild: list[str] = []
    if same is None:
        for c in codes:
            c.active = False
        _add_code(session, process, cfg.code, config, now)
        was = str(active.version) if active else "none"
        result.changes.append(
            Change(
                "new-code-version",
                "code",
                process.name,
                (f"{was} -> {wanted}", f"{was} kept for provenance"),
            )
        )
        return [f"code {was} -> {wanted}"]
    if active is not same or any(c.active and c is not same for c in codes):
        was = ", ".join(str(c.version) for c in codes if c.active) or "none"
        for c in codes:
            c.active = c is same
        result.changes.append(
            Change(
                "update",
                "code",
                process.name,
                (f"active version {was} -> {wanted} (registered before)",),
            )
        )
        rebuild.append("active code changed")
    details = _diff(same, _code_fields(cfg.code))
    if details:
        result.changes.append(Change("update", "code", f"{process.name} {wanted}", tuple(details)))
        if any(
            d.split(":")[0] in ("valid_from", "valid_until", "output_interface") for d in details
        ):
            rebuild.append("code validity or interface changed")
    sha = file_sha256(resolve_code_path(config.mission.codes, cfg.code.path))
    if sha is not None and same.sha256 is not None and sha != same.sha256:
        result.changes.append(
            Change(
                "warning",
                "code",
                f"{process.name} {wanted}",
                (
                    "the code file changed but its version did not; outputs it made are not "
                    "rebuilt. Raise code.version to rebuild them",
                ),
            )
        )
        same.sha256 = sha
    return rebuild


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
        doc["products"][p.name] = _drop_none(
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
    for proc in queries.list_processes(session):
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
        doc["processes"][proc.name] = body
    add_feed_tables(doc, mission.settings or {})
    header = (
        f"# Mission {mission.name!r} as registered; `dbproc config apply` of this "
        "file changes nothing.\n"
    )
    return header + tomli_w.dumps(doc)
