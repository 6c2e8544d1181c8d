"""Refused incoming files: moved to ``<errors>/rejected/`` under a printable name, with a
``.reason`` sidecar and a record that ``dbproc rejects`` lists and ``rejects retry`` undoes."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db.file_paths import MissionPaths
from dbproc.db.models import Reject
from dbproc.db.queries import chunked
from dbproc.db.unit import commit, open_unit, release
from dbproc.faults import crash_point
from dbproc.feed.events import record_event
from dbproc.ingest.incoming import IngestReport, printable, usable_name
from dbproc.ingest.placement import REASON_SUFFIX, move_aside

logger = logging.getLogger("dbproc.ingest")


class RejectDesk:
    """Refuses files for one ingest pass; each refusal commits its own record."""

    def __init__(
        self, session: Session, paths: MissionPaths, pass_id: int | None, report: IngestReport
    ) -> None:
        self.session = session
        self.paths = paths
        self.pass_id = pass_id
        self.report = report

    def reject(
        self,
        name_in_incoming: str,
        path: Path,
        reason: str,
        message: str,
        detail: str | None = None,
        answers: dict[str, Any] | None = None,
    ) -> None:
        """Move a refused file to ``<errors>/rejected/`` (under its printable name), then
        write its ``.reason`` sidecar and its record. A crash between the move and the
        record is repaired by the next pass (:meth:`adopt_unrecorded`)."""
        name = printable(name_in_incoming)
        try:
            size = path.lstat().st_size
            stored = move_aside(path, self.paths.rejected, name, reserve=len(REASON_SUFFIX))
        except OSError as exc:
            logger.error("could not move rejected %s aside: %s (left in incoming)", name, exc)
            self.report.errors.append(
                {
                    "filename": name,
                    "error": f"{message}; and moving it to {self.paths.rejected} failed: {exc}",
                }
            )
            return
        crash_point("reject.moved")
        if answers:
            detail = (detail + "\n" if detail else "") + f"inspector answers: {answers!r}"
        self._note(
            name,
            stored,
            reason,
            message,
            detail,
            size,
            incoming_name=None if name == name_in_incoming else name_in_incoming,
        )

    def _note(
        self,
        name: str,
        stored: Path,
        reason: str,
        message: str,
        detail: str | None,
        size: int | None,
        incoming_name: str | None = None,
    ) -> None:
        now = utcnow()
        sidecar = stored.with_name(stored.name + REASON_SUFFIX)
        try:
            sidecar.write_text(
                f"file: {name}\nrejected: {now.isoformat()}Z\nreason: {reason}\n"
                f"message: {message}\n" + (f"detail:\n{detail}\n" if detail else ""),
                encoding="utf-8",
            )
        except OSError as exc:
            logger.warning("could not write %s: %s", sidecar, exc)
        open_unit(self.session, "reject")
        self.session.add(
            Reject(
                filename=name,
                stored_name=stored.name,
                reason=reason,
                message=message,
                detail=detail,
                size=size,
                rejected_at=now,
                pass_id=self.pass_id,
                incoming_name=None if incoming_name is None else os.fsencode(incoming_name),
            )
        )
        record_event(
            self.session,
            "file.rejected",
            filename=name,
            detail={"reason": reason, "message": message, "stored": str(stored)},
        )
        commit(self.session)
        logger.warning("rejected %s: %s", name, message)
        self.report.rejected.append(
            {"filename": name, "reason": reason, "message": message, "stored": str(stored)}
        )

    def adopt_unrecorded(self) -> None:
        """Record files in ``rejected/`` that have no pending record (a pass died between
        moving them there and recording them), so ``dbproc rejects`` shows every one."""
        folder = self.paths.rejected
        try:
            with os.scandir(folder) as entries:
                names = sorted(
                    e.name
                    for e in entries
                    if not e.is_dir(follow_symlinks=False)
                    and not e.name.endswith(REASON_SUFFIX)
                    and usable_name(e.name) is None
                )
        except FileNotFoundError:
            return
        recorded: set[str] = set()
        for batch in chunked(names):
            recorded.update(
                self.session.scalars(
                    select(Reject.stored_name).where(
                        Reject.stored_name.in_(batch), Reject.retried_at.is_(None)
                    )
                )
            )
        release(self.session)
        for name in names:
            if name in recorded:
                continue
            stored = folder / name
            try:
                size: int | None = stored.lstat().st_size
            except FileNotFoundError:
                continue
            self._note(
                name,
                stored,
                "unrecorded",
                f"found in {folder} without a record: a pass stopped after moving it "
                "there, before recording why; `dbproc rejects retry "
                f"{name}` puts it back in incoming",
                None,
                size,
            )
