"""The ingest pass's desk for single files: refuse one (through the ``RejectDesk``), record
one in its own transaction and take it out of incoming, and the log and report lines of a
file ingested, failed or not removed. The batch and re-delivery code settle files here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dbproc.db.dependents import Consumer
from dbproc.db.file_paths import MissionPaths, stored_path
from dbproc.db.files import ExistingVersion, IdentityTaken, register_file
from dbproc.db.unit import commit, discard, open_unit
from dbproc.faults import crash_point
from dbproc.ingest.candidates import Candidate
from dbproc.ingest.facts import FileFacts
from dbproc.ingest.incoming import IngestReport, printable
from dbproc.ingest.inspection import Verdict
from dbproc.ingest.placement import Digest, unlink_durably
from dbproc.ingest.rejection import RejectDesk

logger = logging.getLogger("dbproc.ingest")


class IngestDesk:
    """What one ingest pass shares while it settles files: its session, paths, report,
    refusals, and the consumer caches ``register_file`` fills."""

    def __init__(
        self, session: Session, paths: MissionPaths, pass_id: int | None, report: IngestReport
    ) -> None:
        self.session = session
        self.paths = paths
        self.report = report
        self.rejects = RejectDesk(session, paths, pass_id, report)
        self.consumers: dict[int, list[Consumer]] = {}
        self.widest: dict[int, float] = {}

    def reject(
        self,
        c: Candidate,
        reason: str,
        message: str,
        detail: str | None = None,
        answers: dict[str, Any] | None = None,
    ) -> None:
        """Refuse ``c``: moved to ``<errors>/rejected/`` with its record."""
        self.rejects.reject(c.name, c.path, reason, message, detail, answers)

    def refuse(self, c: Candidate, verdict: Verdict) -> None:
        """Reject a file no single product claims, with the inspectors' answers."""
        self.reject(
            c,
            verdict.reason or "no_product",
            verdict.message or "",
            verdict.detail,
            verdict.answers,
        )

    def failed(self, c: Candidate, exc: OSError) -> None:
        """Leave ``c`` in incoming after an OS error (nothing of it is pending)."""
        discard(self.session)
        logger.error("could not ingest %s: %s (left in incoming)", printable(c.name), exc)
        self.report.errors.append({"filename": printable(c.name), "error": str(exc)})

    def not_removed(self, c: Candidate, exc: OSError) -> None:
        """Note a registered file that could not be removed from incoming."""
        message = (
            f"registered, but could not remove it from incoming: {exc}; "
            "the next pass absorbs the copy"
        )
        logger.error("ingested %s %s", printable(c.name), message)
        self.report.errors.append({"filename": printable(c.name), "error": message})

    def ingested(self, c: Candidate, facts: FileFacts, dst: Path) -> None:
        """Log and report ``c`` as ingested at ``dst``."""
        logger.info(
            "ingested %s as %s %s %s", c.name, facts.product.name, facts.date, facts.version
        )
        self.report.add_ingested(
            {
                "filename": c.name,
                "product": facts.product.name,
                "date": facts.date.isoformat(),
                "version": str(facts.version),
                "path": str(dst),
            }
        )

    def record(
        self,
        c: Candidate,
        facts: FileFacts,
        dst: Path,
        digest: Digest,
        existing: list[ExistingVersion] | None,
    ) -> None:
        """Record one placed file in its own transaction, then unlink it from incoming."""
        open_unit(self.session, "ingest file")
        try:
            register_file(
                self.session,
                facts,
                filename=c.name,
                path=stored_path(self.paths.root, dst),
                sha256=digest.sha256,
                size=digest.size,
                existing=existing,
                consumers=self.consumers,
                widest=self.widest,
            )
            commit(self.session)
        except (IdentityTaken, IntegrityError) as exc:
            discard(self.session)
            self.reject(c, "conflict", f"same identity as a registered file ({exc})")
            return
        crash_point("ingest.committed")
        try:
            if not c.is_link or c.path.is_symlink():
                unlink_durably(c.path)
        except OSError as exc:  # registered: the next pass absorbs the copy
            self.not_removed(c, exc)
        crash_point("ingest.unlinked")
        self.ingested(c, facts, dst)
