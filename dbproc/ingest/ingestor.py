"""The incoming pass: identify, checksum, place, register, then remove from incoming.

Order per file (reliability.md B3): link (or copy via staging) into the product folder
and fsync → one transaction for the record → unlink from incoming. A crash at any point
leaves the file registered and placed, or still in incoming; the next pass repairs.
Refused files move to ``<errors>/rejected/`` with a record and a ``.reason`` sidecar.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dbproc.control import activity
from dbproc.db.dependents import Consumer, insert_pending
from dbproc.db.file_paths import MissionPaths, absolute_path, destination, stored_path
from dbproc.db.files import (
    ExistingVersion,
    IdentityTaken,
    list_versions,
    list_versions_of,
    product_rules,
    register_file,
)
from dbproc.db.models import File
from dbproc.db.queries import chunked
from dbproc.db.unit import commit, discard, open_unit, release
from dbproc.faults import crash_point
from dbproc.feed.events import record_events
from dbproc.ingest.incoming import IngestReport, printable, usable_name
from dbproc.ingest.inspection import FileFacts, InspectorSet, Verdict
from dbproc.ingest.placement import (
    Digest,
    Occupied,
    fsync_dir,
    hash_file,
    place,
    unlink_durably,
)
from dbproc.ingest.rejection import RejectDesk
from dbproc.mission import IngestSettings
from dbproc.version import Version

logger = logging.getLogger("dbproc.ingest")

ARRIVING_SUFFIXES = (".part", ".tmp")
#: Plain new files recorded per transaction (one fsync per folder, one commit per batch).
BATCH_FILES = 200
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class _Known:
    filename: str
    sha256: str
    size: int
    path: str


@dataclass(frozen=True, slots=True)
class _Candidate:
    name: str
    where: str  # the path as text: a Path per file would weigh on a 10^5-file incoming
    is_link: bool
    size: int = 0
    mtime_ns: int = 0

    @property
    def path(self) -> Path:
        return Path(self.where)


@dataclass(frozen=True)
class _Ready:
    """A plain new file, identified and hashed, waiting for its batch."""

    candidate: _Candidate
    facts: FileFacts
    digest: Digest
    dst: Path

    @property
    def key(self) -> tuple[int, dt.date, str]:
        return (self.facts.product.id, self.facts.date, self.facts.slot)

    @property
    def identity(self) -> tuple[int, dt.date, str, Version]:
        return (*self.key, self.facts.version)

    @property
    def filename(self) -> str:
        return self.candidate.name


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
        self.consumers: dict[int, list[Consumer]] = {}
        self.widest: dict[int, float] = {}
        self.rejects = RejectDesk(session, paths, pass_id, self.report)
        release(session)  # nothing of ours may be pending while we work

    def run(self) -> IngestReport:
        """Ingest everything settled in incoming; return the report."""
        started = time.monotonic()
        try:
            self.rejects.adopt_unrecorded()
            activity.report("scanning incoming")
            candidates = self._settled(self._scan())
            known = self._known([c.name for c in candidates])
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
                        self._ingest_batch(ready)
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

    def _identify(self, batch: list[_Candidate], known: dict[str, _Known]) -> dict[str, Verdict]:
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

    # -- scanning -------------------------------------------------------------------------

    def _scan(self) -> list[_Candidate]:
        incoming = self.paths.incoming
        if not incoming.is_dir():
            message = (
                f"the incoming folder {incoming} does not exist (an unmounted share? a "
                "moved folder?); nothing was ingested: mount or create it, or fix "
                "[mission].incoming and `dbproc config apply`"
            )
            logger.error("%s", message)
            self.report.errors.append({"filename": str(incoming), "error": message})
            return []
        found: list[_Candidate] = []
        with os.scandir(incoming) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                name = entry.name
                if name.startswith("."):
                    self._skip(name, "hidden name (still arriving)")
                elif name.endswith(ARRIVING_SUFFIXES):
                    self._skip(name, "still arriving (.part/.tmp)")
                elif entry.is_symlink():
                    found.append(_Candidate(name, entry.path, True))
                elif entry.is_dir():
                    self._not_a_file(name, Path(entry.path), "a folder")
                elif entry.is_file():
                    try:
                        st = entry.stat()
                    except FileNotFoundError:  # taken away while we looked
                        continue
                    found.append(_Candidate(name, entry.path, False, st.st_size, st.st_mtime_ns))
                else:
                    self._not_a_file(
                        name, Path(entry.path), "not a regular file (a FIFO, socket or device)"
                    )
        return found

    def _not_a_file(self, name: str, path: Path, what: str) -> None:
        """Refuse a folder or special file once (moved aside), instead of meeting it on
        every pass; a FIFO is never opened (reading it would block the pass)."""
        self.rejects.reject(
            name,
            path,
            "not_a_file",
            f"{what}: dbproc ingests regular files only; put the files themselves in incoming",
        )

    def _settled(self, candidates: list[_Candidate]) -> list[_Candidate]:
        now_ns = time.time_ns()
        young = [
            c
            for c in candidates
            if not c.is_link and now_ns - c.mtime_ns < self.settings.settle_seconds * 1e9
        ]
        if not young:
            return candidates
        self.sleep(min(self.settings.settle_check_seconds, self.settings.settle_seconds))
        changed: set[str] = set()
        for c in young:
            try:
                st = c.path.stat()
            except FileNotFoundError:
                changed.add(c.name)
                continue
            if st.st_size != c.size or st.st_mtime_ns != c.mtime_ns:
                changed.add(c.name)
                self._skip(c.name, "still being written (size or mtime changed)")
        return [c for c in candidates if c.name not in changed]

    def _skip(self, name: str, why: str) -> None:
        self.report.skipped.append({"filename": printable(name), "why": why})

    def _known(self, names: list[str]) -> dict[str, _Known]:
        """The registered files among ``names``: one query per 500 names, not one per file."""
        known: dict[str, _Known] = {}
        usable = [n for n in names if usable_name(n) is None]
        for batch in chunked(usable):
            rows = self.session.execute(
                select(File.filename, File.sha256, File.size, File.path).where(
                    File.filename.in_(batch)
                )
            )
            for row in rows:
                known[row.filename] = _Known(row.filename, row.sha256, row.size, row.path)
        release(self.session)
        return known

    # -- one file -------------------------------------------------------------------------

    def _prepare(
        self, c: _Candidate, known: _Known | None, verdict: Verdict | None
    ) -> _Ready | None:
        """Identify and hash a plain new file for the batch; settle everything else
        (bad names, symlinks, re-deliveries, refusals, errors) on its own now."""
        problem = usable_name(c.name)
        if problem is not None:
            self._reject(c, "bad_name", f"cannot register it: {problem}")
            return None
        if c.is_link:
            self._one_link(c, known)
            return None
        try:
            if known is not None:
                self._redelivery(c, known)
                return None
            if c.size == 0 and not self.settings.allow_empty:
                self._reject(
                    c,
                    "empty",
                    "a zero-byte file (a failed transfer?); deliver it "
                    "again with its content, or set [ingest] allow_empty = true",
                )
                return None
            if verdict is None:
                verdict = self.inspectors.identify(c.path, c.name)
            if verdict.facts is None:
                self._refuse(c, verdict)
                return None
            facts = verdict.facts
            digest = hash_file(c.path)
            crash_point("ingest.hashed")
            dst = destination(self.paths.root, facts.product.dir, facts.date, c.name)
            return _Ready(c, facts, digest, dst)
        except OSError as exc:
            self._failed(c, exc)
            return None

    def _failed(self, c: _Candidate, exc: OSError) -> None:
        discard(self.session)
        logger.error("could not ingest %s: %s (left in incoming)", printable(c.name), exc)
        self.report.errors.append({"filename": printable(c.name), "error": str(exc)})

    def _ingest_batch(self, ready: list[_Ready]) -> None:
        """Place a batch, record it in one transaction, then take it out of incoming.

        The order of reliability.md B3 holds for every file of the batch: each is linked
        and fsynced (one fsync per folder) before the transaction that records them all,
        and unlinked from incoming only after that commits.
        """
        existing = self._existing_versions(ready)
        placed: list[_Ready] = []
        batch_names: dict[tuple[int, dt.date, str, Version], str] = {}
        new_links: dict[Path, list[_Ready]] = {}
        for r in ready:
            versions = existing.setdefault(r.key, [])
            clash = next((e.filename for e in versions if e.version == r.facts.version), None)
            if clash is None:
                clash = batch_names.get(r.identity)
            if clash is not None:
                self._reject(
                    r.candidate,
                    "conflict",
                    f"same product ({r.facts.product.name}), date, keywords and version "
                    f"({r.facts.version}) as registered file {clash}",
                )
                continue
            try:
                linked_now = place(
                    r.candidate.path,
                    r.dst,
                    r.digest,
                    self.paths.staging / "ingest",
                    sync_folder=False,
                )
            except Occupied as exc:
                self._reject(
                    r.candidate,
                    "conflict",
                    f"{exc}, which is not registered (a registered file is never "
                    "overwritten): move that file away (`dbproc check` lists such files), "
                    f"then `dbproc rejects retry {r.candidate.name}`",
                )
                continue
            except OSError as exc:
                self._failed(r.candidate, exc)
                continue
            if linked_now:
                new_links.setdefault(r.dst.parent, []).append(r)
            placed.append(r)
            batch_names[r.identity] = r.filename
            crash_point("ingest.linked")
        placed = self._sync_folders(placed, new_links)
        if placed:
            self._record_batch(placed, existing)

    def _sync_folders(
        self, placed: list[_Ready], new_links: dict[Path, list[_Ready]]
    ) -> list[_Ready]:
        """fsync each product folder that got new links; a folder that cannot be synced
        loses its new links again (nothing records them yet) and its files stay in
        incoming."""
        lost: set[str] = set()
        for folder, items in new_links.items():
            try:
                fsync_dir(folder)
            except OSError as exc:
                for r in items:
                    try:
                        os.unlink(r.dst)
                    except OSError:
                        pass
                    lost.add(r.candidate.name)
                    self._failed(r.candidate, exc)
        return [r for r in placed if r.candidate.name not in lost]

    def _existing_versions(
        self, ready: list[_Ready]
    ) -> dict[tuple[int, dt.date, str], list[ExistingVersion]]:
        """The registered versions of every identity in the batch, in one query."""
        keys = {r.key for r in ready}
        found: dict[tuple[int, dt.date, str], list[ExistingVersion]] = {k: [] for k in keys}
        for key, version in list_versions_of(
            self.session, {r.facts.product.id for r in ready}, {r.facts.date for r in ready}
        ):
            if key in found:
                found[key].append(version)
        release(self.session)
        return found

    def _record_batch(
        self,
        placed: list[_Ready],
        existing: dict[tuple[int, dt.date, str], list[ExistingVersion]],
    ) -> None:
        pending: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        open_unit(self.session, "ingest batch")
        try:
            for r in placed:
                versions = existing[r.key]
                file_id = register_file(
                    self.session,
                    r.facts,
                    filename=r.candidate.name,
                    path=stored_path(self.paths.root, r.dst),
                    sha256=r.digest.sha256,
                    size=r.digest.size,
                    existing=versions,
                    consumers=self.consumers,
                    widest=self.widest,
                    pending=pending,
                    events=events,
                )
                versions.append(
                    ExistingVersion(
                        file_id,
                        r.candidate.name,
                        r.facts.version,
                        True,
                        r.facts.start,
                        r.facts.stop,
                    )
                )
            insert_pending(self.session, pending)
            record_events(self.session, events)  # last: see dbproc.feed.events
            commit(self.session)
        except (IdentityTaken, IntegrityError):
            # something else registered one of these meanwhile: settle them one by one
            discard(self.session)
            for r in placed:
                self._record(r.candidate, r.facts, r.dst, r.digest, None)
            return
        removed = False
        for r in placed:
            crash_point("ingest.committed")  # this file recorded, not yet out of incoming
            try:
                os.unlink(r.candidate.path)
                removed = True
            except FileNotFoundError:
                pass
            except OSError as exc:  # registered: the next pass absorbs the copy
                self._not_removed(r.candidate, exc)
            crash_point("ingest.unlinked")
            self._ingested(r.candidate, r.facts, r.dst)
        if removed:
            try:
                fsync_dir(self.paths.incoming)
            except OSError as exc:  # registered and placed: a copy that comes back is absorbed
                message = (
                    f"could not fsync {self.paths.incoming} after removing ingested files: "
                    f"{exc}; they are registered, and any that reappear after a crash are "
                    "absorbed by the next pass"
                )
                logger.error("%s", message)
                self.report.errors.append({"filename": self.paths.incoming.name, "error": message})

    def _not_removed(self, c: _Candidate, exc: OSError) -> None:
        message = (
            f"registered, but could not remove it from incoming: {exc}; "
            "the next pass absorbs the copy"
        )
        logger.error("ingested %s %s", printable(c.name), message)
        self.report.errors.append({"filename": printable(c.name), "error": message})

    def _ingested(self, c: _Candidate, facts: FileFacts, dst: Path) -> None:
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

    def _record(
        self,
        c: _Candidate,
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
            self._reject(c, "conflict", f"same identity as a registered file ({exc})")
            return
        crash_point("ingest.committed")
        try:
            if not c.is_link or c.path.is_symlink():
                unlink_durably(c.path)
        except OSError as exc:  # registered: the next pass absorbs the copy
            self._not_removed(c, exc)
        crash_point("ingest.unlinked")
        self._ingested(c, facts, dst)

    def _redelivery(self, c: _Candidate, known: _Known) -> None:
        digest = hash_file(c.path)
        if digest.sha256 != known.sha256 or digest.size != known.size:
            self._reject(
                c,
                "conflict",
                f"a different file called {c.name} is registered "
                f"(sha256 {known.sha256[:12]}…, this one {digest.sha256[:12]}…); "
                "a registered file is never overwritten: deliver it under a new "
                "name or version",
            )
            return
        registered = absolute_path(self.paths.root, known.path)
        if not registered.exists():
            place(c.path, registered, digest, self.paths.staging / "ingest")
            logger.warning("restored missing registered file %s from incoming", registered)
        unlink_durably(c.path)
        crash_point("ingest.unlinked")
        logger.info("absorbed %s: identical to the registered file", c.name)
        self.report.absorbed.append(c.name)

    def _one_link(self, c: _Candidate, known: _Known | None) -> None:
        target = Path(os.path.realpath(c.path))
        if not target.is_file():
            self._reject(c, "bad_symlink", f"symlink to {target}, which is not a file")
            return
        if target.name != c.name:
            self._reject(
                c,
                "bad_symlink",
                f"symlink to {target}, whose name differs from "
                "the link's; link under the file's own name",
            )
            return
        verdict = self.inspectors.identify(target, c.name)
        if verdict.facts is None:
            self._refuse(c, verdict)
            return
        facts = verdict.facts
        dst = destination(self.paths.root, facts.product.dir, facts.date, c.name)
        if os.path.realpath(dst.parent) != str(target.parent):
            self._reject(
                c,
                "bad_symlink",
                f"symlink to {target}, which is not in the "
                f"product folder {dst.parent}; put the file itself in incoming",
            )
            return
        digest = hash_file(target)
        if known is not None:
            if known.sha256 == digest.sha256 and absolute_path(self.paths.root, known.path) == dst:
                unlink_durably(c.path)
                self.report.absorbed.append(c.name)
                return
            self._reject(c, "conflict", f"a different file called {c.name} is registered")
            return
        existing = list_versions(self.session, facts.product.id, facts.date, facts.slot)
        if any(e.version == facts.version for e in existing):
            release(self.session)
            self._reject(
                c, "conflict", "same product, date, keywords and version as a registered file"
            )
            return
        self._record(c, facts, dst, digest, existing)

    def _reject(
        self,
        c: _Candidate,
        reason: str,
        message: str,
        detail: str | None = None,
        answers: dict[str, Any] | None = None,
    ) -> None:
        self.rejects.reject(c.name, c.path, reason, message, detail, answers)

    def _refuse(self, c: _Candidate, verdict: Verdict) -> None:
        """Reject a file no single product claims, with the inspectors' answers."""
        self._reject(
            c,
            verdict.reason or "no_product",
            verdict.message or "",
            verdict.detail,
            verdict.answers,
        )
