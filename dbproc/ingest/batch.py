"""A batch of plain new files: place each in its product folder (one fsync per folder),
record them all in one transaction, then take them out of incoming.

The order of reliability.md section 2.2 holds for every file of the batch: each is linked
and fsynced before the transaction that records them all, and unlinked from incoming only
after that commits. A batch that meets a registration made meanwhile is settled one file
at a time (:meth:`IngestDesk.record`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dbproc.db.dependents import insert_pending
from dbproc.db.file_paths import stored_path
from dbproc.db.files import ExistingVersion, IdentityTaken, list_versions_of, register_file
from dbproc.db.prepared import together
from dbproc.db.unit import commit, discard, open_unit, release
from dbproc.faults import crash_point
from dbproc.feed.events import record_events
from dbproc.ingest.candidates import Candidate
from dbproc.ingest.desk import IngestDesk
from dbproc.ingest.facts import FileFacts
from dbproc.ingest.placement import Digest, Occupied, fsync_dir, place
from dbproc.version import Version

logger = logging.getLogger("dbproc.ingest")

_Versions = dict[tuple[int, dt.date, str], list[ExistingVersion]]


@dataclass(frozen=True)
class Ready:
    """A plain new file, identified and hashed, waiting for its batch."""

    candidate: Candidate
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


def ingest_batch(desk: IngestDesk, ready: list[Ready]) -> None:
    """Place a batch, record it in one transaction, then take it out of incoming."""
    existing = _existing_versions(desk.session, ready)
    placed: list[Ready] = []
    batch_names: dict[tuple[int, dt.date, str, Version], str] = {}
    new_links: dict[Path, list[Ready]] = {}
    for r in ready:
        versions = existing.setdefault(r.key, [])
        clash = next((e.filename for e in versions if e.version == r.facts.version), None)
        if clash is None:
            clash = batch_names.get(r.identity)
        if clash is not None:
            desk.reject(
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
                desk.paths.staging / "ingest",
                sync_folder=False,
            )
        except Occupied as exc:
            desk.reject(
                r.candidate,
                "conflict",
                f"{exc}, which is not registered (a registered file is never "
                "overwritten): move that file away (`dbproc check` lists such files), "
                f"then `dbproc rejects retry {r.candidate.name}`",
            )
            continue
        except OSError as exc:
            desk.failed(r.candidate, exc)
            continue
        if linked_now:
            new_links.setdefault(r.dst.parent, []).append(r)
        placed.append(r)
        batch_names[r.identity] = r.filename
        crash_point("ingest.linked")
    placed = _sync_folders(desk, placed, new_links)
    if placed:
        _record_batch(desk, placed, existing)


def _sync_folders(
    desk: IngestDesk, placed: list[Ready], new_links: dict[Path, list[Ready]]
) -> list[Ready]:
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
                desk.failed(r.candidate, exc)
    return [r for r in placed if r.candidate.name not in lost]


def _existing_versions(session: Session, ready: list[Ready]) -> _Versions:
    """The registered versions of every identity in the batch, in one query."""
    keys = {r.key for r in ready}
    found: _Versions = {k: [] for k in keys}
    for key, version in list_versions_of(
        session, {r.facts.product.id for r in ready}, {r.facts.date for r in ready}
    ):
        if key in found:
            found[key].append(version)
    release(session)
    return found


def _record_batch(desk: IngestDesk, placed: list[Ready], existing: _Versions) -> None:
    """Record the placed files in one transaction (one by one if it meets a registration
    made meanwhile), then take them out of incoming."""
    session = desk.session
    pending: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    widest = dict(desk.widest)  # the spans the database holds before this batch
    open_unit(session, "ingest batch")
    try:
        # PostgreSQL: a file's writes after its id go with the next file's insert
        with together(session.connection()):
            for r in placed:
                versions = existing[r.key]
                file_id = register_file(
                    session,
                    r.facts,
                    filename=r.candidate.name,
                    path=stored_path(desk.paths.root, r.dst),
                    sha256=r.digest.sha256,
                    size=r.digest.size,
                    existing=versions,
                    consumers=desk.consumers,
                    widest=desk.widest,
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
            insert_pending(session, pending)
            record_events(session, events)  # last: see dbproc.feed.events
        commit(session)
    except (IdentityTaken, IntegrityError):
        # something else registered one of these meanwhile: settle them one by one
        discard(session)
        desk.widest.clear()  # the rolled-back batch's wider spans are not in the database
        desk.widest.update(widest)
        for r in placed:
            desk.record(r.candidate, r.facts, r.dst, r.digest, None)
        return
    _out_of_incoming(desk, placed)


def _out_of_incoming(desk: IngestDesk, placed: list[Ready]) -> None:
    """Unlink each recorded file from incoming, then fsync incoming once."""
    incoming = desk.paths.incoming
    removed = False
    for r in placed:
        crash_point("ingest.committed")  # this file recorded, not yet out of incoming
        try:
            os.unlink(r.candidate.path)
            removed = True
        except FileNotFoundError:
            pass
        except OSError as exc:  # registered: the next pass absorbs the copy
            desk.not_removed(r.candidate, exc)
        crash_point("ingest.unlinked")
        desk.ingested(r.candidate, r.facts, r.dst)
    if removed:
        try:
            fsync_dir(incoming)
        except OSError as exc:  # registered and placed: a copy that comes back is absorbed
            message = (
                f"could not fsync {incoming} after removing ingested files: "
                f"{exc}; they are registered, and any that reappear after a crash are "
                "absorbed by the next pass"
            )
            logger.error("%s", message)
            desk.report.errors.append({"filename": incoming.name, "error": message})
