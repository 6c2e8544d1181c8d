"""Several codes per process (``[[processes.NAME.code]]``, contract §12).

Each code of the array is a registered code version that stays *active* together with the
others; the planner picks, per output date, the one whose ``valid_from..valid_until``
contains the date (their ranges are disjoint: the mission file parser refuses overlaps).
Versions that left the array are deactivated, never deleted (provenance).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.admin.apply_changes import ApplyResult, Change, diff_fields
from dbproc.admin.code_versions import add_code, code_fields
from dbproc.db import queries
from dbproc.db.models import Code, Process

if TYPE_CHECKING:
    from dbproc.mission import MissionConfig, ProcessConfig

#: code fields whose change alters what gets built (the others are bookkeeping)
REBUILD_FIELDS = ("valid_from", "valid_until", "output_interface", "path", "args")


def active_codes(session: Session, process_id: int) -> list[Code]:
    """A process's active codes by ``valid_from`` (one, or several with disjoint ranges)."""
    rows = session.scalars(
        select(Code).where(Code.process_id == process_id, Code.active.is_(True))
    ).all()
    return sorted(
        rows, key=lambda c: (c.valid_from or dt.date.min, c.interface, c.quality, c.revision)
    )


def apply_code_set(
    session: Session,
    process: Process,
    cfg: ProcessConfig,
    config: MissionConfig,
    now: Any,
    result: ApplyResult,
) -> list[str]:
    """Make the process's active codes exactly ``cfg.all_codes``; return what changed that
    makes its outputs worth replanning."""
    rows = {c.version: c for c in queries.list_codes(session, process.id)}
    wanted = {c.version: c for c in cfg.all_codes}
    rebuild: list[str] = []
    for version, code in wanted.items():
        row = rows.get(version)
        if row is None:
            add_code(session, process, code, config, now)
            result.changes.append(
                Change(
                    "new-code-version",
                    "code",
                    process.name,
                    (f"{version} for {code.valid_from or '-inf'}..{code.valid_until or '+inf'}",),
                )
            )
            rebuild.append(f"code {version} added")
            continue
        if not row.active:
            row.active = True
            result.changes.append(
                Change("update", "code", f"{process.name} {version}", ("active again",))
            )
            rebuild.append(f"code {version} active again")
        details = diff_fields(row, code_fields(code))
        if details:
            result.changes.append(
                Change("update", "code", f"{process.name} {version}", tuple(details))
            )
            if any(d.split(":")[0] in REBUILD_FIELDS for d in details):
                rebuild.append(f"code {version} changed")
    for version, row in rows.items():
        if row.active and version not in wanted:
            row.active = False
            result.changes.append(
                Change(
                    "update",
                    "code",
                    f"{process.name} {version}",
                    ("no longer among the codes of the process; kept for provenance",),
                )
            )
            rebuild.append(f"code {version} retired")
    session.flush()
    return rebuild
