"""The incoming pass: identify, checksum, place, register, then remove from incoming.

Order per file (reliability.md section 2.2): link (or copy via staging) into the product
folder and fsync → one transaction for the record → unlink from incoming. A crash at any
point leaves the file registered and placed, or still in incoming; the next pass repairs.
Refused files move to ``<errors>/rejected/`` with a record and a ``.reason`` sidecar.

This module holds the pass loop and what is decided per file; the listing of incoming is
:mod:`dbproc.ingest.candidates`, the batches :mod:`dbproc.ingest.batch`, re-deliveries and
symlinks :mod:`dbproc.ingest.redelivery`, and single files :mod:`dbproc.ingest.desk`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from dbproc.control import activity
from dbproc.db.file_paths import MissionPaths, destination
from dbproc.db.files import (
    product_rules,
)
from dbproc.db.queries import chunked
from dbproc.db.unit import discard, release
from dbproc.faults import crash_point
from dbproc.ingest.batch import Ready, ingest_batch
from dbproc.ingest.candidates import Candidate, Known, known_files, scan_incoming, settled
from dbproc.ingest.desk import IngestDesk
from dbproc.ingest.incoming import IngestReport, usable_name
from dbproc.ingest.inspection import InspectorSet, Verdict
from dbproc.ingest.placement import hash_file
from dbproc.ingest.redelivery import absorb_redelivery, ingest_link
from dbproc.mission import IngestSettings

#: Plain new files recorded per transaction (one fsync per folder, one commit per batch).
BATCH_FILES = 200
Progress = Callable[[int, int], None]


class Ingestor:
    """One ingest pass over the incoming folder. The pass loop: commits once per batch of
    plain new files, once per file for everything else."""

    def __init__(
        self,
        session: Session,
        paths: MissionPaths,
        settings: IngestSettings,
        *,
        pass_id: int | None = None,
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = session
        self.paths = paths
        self.settings = settings
        self.pass_id = pass_id
        self.progress = progress
        self.sleep = sleep
        self.report = IngestReport()
        self.inspectors = InspectorSet(
            product_rules(session),
            paths.codes,
            timeout=settings.inspector_timeout,
            workers=settings.inspector_workers,
            max_answer_bytes=settings.max_answer_bytes,
        )
        self.desk = IngestDesk(session, paths, pass_id, self.report)
        release(session)  # nothing of ours may be pending while we work

    def run(self) -> IngestReport:
        """Ingest everything settled in incoming; return the report."""
        started = time.monotonic()
        try:
            self.desk.rejects.adopt_unrecorded()
            activity.report("scanning incoming")
            candidates = settled(
                scan_incoming(self.paths.incoming, self.report, self.desk.rejects),
                self.settings,
                self.report,
                self.sleep,
            )
            known = known_files(self.session, [c.name for c in candidates])
            done = 0
            for batch in chunked(candidates, BATCH_FILES):
                try:
                    verdicts = self._identify(batch, known)
                    ready = [
                        r
                        for c in batch
                        if (r := self._prepare(c, known.get(c.name), verdicts.get(c.name)))
                    ]
                    if ready:
                        ingest_batch(self.desk, ready)
                except Exception:
                    discard(self.session)
                    raise
                done += len(batch)
                activity.report(f"ingesting: {done} of {len(candidates)} files looked at")
                if self.progress is not None:
                    self.progress(done, len(candidates))
        finally:
            self.inspectors.close()
        self.report.seconds = time.monotonic() - started
        return self.report

    def _identify(self, batch: list[Candidate], known: dict[str, Known]) -> dict[str, Verdict]:
        """The verdicts of every plain new file of a batch, asked of the inspector
        workers together."""
        wanted = [
            c
            for c in batch
            if not c.is_link
            and c.name not in known
            and usable_name(c.name) is None
            and (c.size > 0 or self.settings.allow_empty)
        ]
        verdicts = self.inspectors.identify_many([(c.path, c.name) for c in wanted])
        return {c.name: v for c, v in zip(wanted, verdicts, strict=True)}

    def _prepare(self, c: Candidate, known: Known | None, verdict: Verdict | None) -> Ready | None:
        """Identify and hash a plain new file for the batch; settle everything else
        (bad names, symlinks, re-deliveries, refusals, errors) on its own now."""
        desk = self.desk
        problem = usable_name(c.name)
        if problem is not None:
            desk.reject(c, "bad_name", f"cannot register it: {problem}")
            return None
        if c.is_link:
            ingest_link(desk, self.inspectors, c, known)
            return None
        try:
            if known is not None:
                absorb_redelivery(desk, c, known)
                return None
            if c.size == 0 and not self.settings.allow_empty:
                desk.reject(
                    c,
                    "empty",
                    "a zero-byte file (a failed transfer?); deliver it "
                    "again with its content, or set [ingest] allow_empty = true",
                )
                return None
            if verdict is None:
                verdict = self.inspectors.identify(c.path, c.name)
            if verdict.facts is None:
                desk.refuse(c, verdict)
                return None
            facts = verdict.facts
            digest = hash_file(c.path)
            crash_point("ingest.hashed")
            dst = destination(self.paths.root, facts.product.dir, facts.date, c.name)
            return Ready(c, facts, digest, dst)
        except OSError as exc:
            desk.failed(c, exc)
            return None
