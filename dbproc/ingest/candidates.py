"""Listing incoming for one ingest pass: the candidate files (hidden and still-arriving
names skipped, folders and special files refused), the wait for files still being
written, and which candidate names are registered already."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.db.models import File
from dbproc.db.queries import chunked
from dbproc.db.unit import release
from dbproc.ingest.incoming import IngestReport, printable, usable_name
from dbproc.ingest.rejection import RejectDesk
from dbproc.mission import IngestSettings

logger = logging.getLogger("dbproc.ingest")

ARRIVING_SUFFIXES = (".part", ".tmp")


@dataclass(frozen=True)
class Known:
    """A registered file whose name is among the candidates."""

    filename: str
    sha256: str
    size: int
    path: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """A name in incoming that the pass looks at."""

    name: str
    where: str  # the path as text: a Path per file would weigh on a 10^5-file incoming
    is_link: bool
    size: int = 0
    mtime_ns: int = 0

    @property
    def path(self) -> Path:
        return Path(self.where)


def scan_incoming(incoming: Path, report: IngestReport, rejects: RejectDesk) -> list[Candidate]:
    """The files and symlinks in ``incoming``, sorted by name; other entries are
    skipped or refused (noted in ``report``)."""
    if not incoming.is_dir():
        message = (
            f"the incoming folder {incoming} does not exist (an unmounted share? a "
            "moved folder?); nothing was ingested: mount or create it, or fix "
            "[mission].incoming and `dbproc config apply`"
        )
        logger.error("%s", message)
        report.errors.append({"filename": str(incoming), "error": message})
        return []
    found: list[Candidate] = []
    with os.scandir(incoming) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            name = entry.name
            if name.startswith("."):
                skip(report, name, "hidden name (still arriving)")
            elif name.endswith(ARRIVING_SUFFIXES):
                skip(report, name, "still arriving (.part/.tmp)")
            elif entry.is_symlink():
                found.append(Candidate(name, entry.path, True))
            elif entry.is_dir():
                _not_a_file(rejects, name, Path(entry.path), "a folder")
            elif entry.is_file():
                try:
                    st = entry.stat()
                except FileNotFoundError:  # taken away while we looked
                    continue
                found.append(Candidate(name, entry.path, False, st.st_size, st.st_mtime_ns))
            else:
                _not_a_file(
                    rejects, name, Path(entry.path), "not a regular file (a FIFO, socket or device)"
                )
    return found


def _not_a_file(rejects: RejectDesk, name: str, path: Path, what: str) -> None:
    """Refuse a folder or special file once (moved aside), instead of meeting it on
    every pass; a FIFO is never opened (reading it would block the pass)."""
    rejects.reject(
        name,
        path,
        "not_a_file",
        f"{what}: dbproc ingests regular files only; put the files themselves in incoming",
    )


def settled(
    candidates: list[Candidate],
    settings: IngestSettings,
    report: IngestReport,
    sleep: Callable[[float], None],
) -> list[Candidate]:
    """``candidates`` without the files still being written: a file changed within
    ``settle_seconds`` is looked at again after a short sleep, and left if it changed."""
    now_ns = time.time_ns()
    young = [
        c
        for c in candidates
        if not c.is_link and now_ns - c.mtime_ns < settings.settle_seconds * 1e9
    ]
    if not young:
        return candidates
    sleep(min(settings.settle_check_seconds, settings.settle_seconds))
    changed: set[str] = set()
    for c in young:
        try:
            st = c.path.stat()
        except FileNotFoundError:
            changed.add(c.name)
            continue
        if st.st_size != c.size or st.st_mtime_ns != c.mtime_ns:
            changed.add(c.name)
            skip(report, c.name, "still being written (size or mtime changed)")
    return [c for c in candidates if c.name not in changed]


def skip(report: IngestReport, name: str, why: str) -> None:
    """Note a name left in incoming for this pass."""
    report.skipped.append({"filename": printable(name), "why": why})


def known_files(session: Session, names: list[str]) -> dict[str, Known]:
    """The registered files among ``names``: one query per 500 names, not one per file."""
    known: dict[str, Known] = {}
    usable = [n for n in names if usable_name(n) is None]
    for batch in chunked(usable):
        rows = session.execute(
            select(File.filename, File.sha256, File.size, File.path).where(File.filename.in_(batch))
        )
        for row in rows:
            known[row.filename] = Known(row.filename, row.sha256, row.size, row.path)
    release(session)
    return known
