"""``config apply`` for a process with one ``[processes.NAME.code]`` table: register a
new code version (the old one stays, inactive, for provenance), switch back to a version
registered before, update a code row's fields, and warn when a code file changed but its
version did not. Several codes per process are code_sets.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from dbproc.admin.apply_changes import ApplyResult, Change, diff_fields
from dbproc.db import queries
from dbproc.db.models import Code, Process
from dbproc.mission import CodeConfig, MissionConfig, ProcessConfig, resolve_code_path


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


def code_fields(code: CodeConfig) -> dict[str, Any]:
    """The code row's columns that the file's code table sets directly."""
    return {
        "output_interface": code.output_interface,
        "path": code.path,
        "args": list(code.args),
        "valid_from": code.valid_from,
        "valid_until": code.valid_until,
        "timeout": code.timeout,
        "description": code.description,
    }


def add_code(
    session: Session, process: Process, code: CodeConfig, config: MissionConfig, now: Any
) -> Code:
    """Register ``code`` as a new active code row of ``process``."""
    sha = file_sha256(resolve_code_path(config.mission.codes, code.path))
    row = Code(
        process_id=process.id,
        interface=code.version.interface,
        quality=code.version.quality,
        revision=code.version.revision,
        sha256=sha,
        active=True,
        registered_at=now,
        **code_fields(code),
    )
    session.add(row)
    session.flush()
    return row


def apply_code(
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
        add_code(session, process, cfg.code, config, now)
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
    details = diff_fields(same, code_fields(cfg.code))
    if details:
        result.changes.append(Change("update", "code", f"{process.name} {wanted}", tuple(details)))
        if any(
            d.split(":")[0] in ("valid_from", "valid_until", "output_interface") for d in details
        ):
            rebuild.append("code validity or interface changed")
    _note_changed_file(process, same, cfg, config, result)
    return rebuild


def _note_changed_file(
    process: Process, same: Code, cfg: ProcessConfig, config: MissionConfig, result: ApplyResult
) -> None:
    """Warn when the code file's bytes changed but its version did not (and record them)."""
    wanted = cfg.code.version
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
