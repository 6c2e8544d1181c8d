"""Releases (interface.md §17): a named, immutable set of the newest version of every
(product, date), with a manifest that ``sha256sum -c`` verifies.

Tables: ``release(id, name unique, note, created_at, created_by, products)`` and
``release_file(release_id, file_id)``. Services take a session and never commit.
"""

from __future__ import annotations

import datetime as dt
import getpass
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Integer, func, insert, literal, select
from sqlalchemy.orm import Session

from dbproc.clock import utcnow
from dbproc.db import queries
from dbproc.db.models import File, Product, Release, ReleaseFile
from dbproc.errors import NotFound, UsageError
from dbproc.records import Record, fields_of

RELEASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,254}$")


def get_release(session: Session, name: str) -> Release:
    """The release called ``name``; NotFound lists the known ones."""
    release = session.scalars(select(Release).where(Release.name == name)).first()
    if release is None:
        known = ", ".join(session.scalars(select(Release.name).order_by(Release.id))) or "none"
        raise NotFound(f"no release is called {name!r}; known releases: {known}")
    return release


def create_release(
    session: Session,
    name: str,
    products: Sequence[str] = (),
    note: str | None = None,
    by: str | None = None,
) -> ReleaseSummary:
    """Freeze the newest on-disk version of every (product, date) of ``products`` (all
    products when empty) as release ``name``. A name is used once: releases are immutable."""
    if not RELEASE_NAME.match(name):
        raise UsageError(
            f"release name {name!r} is not usable: use letters, digits and "
            "'_', '.', '+', '-' (at most 255), starting with a letter or digit"
        )
    if session.scalars(select(Release.id).where(Release.name == name)).first() is not None:
        raise UsageError(
            f"release {name!r} already exists and releases are immutable; "
            "choose a new name (e.g. with a higher number)"
        )
    product_ids = [queries.get_product(session, p).id for p in products]
    release = Release(
        name=name,
        note=note,
        created_at=utcnow(),
        created_by=by or _login(),
        products=sorted(products),
    )
    session.add(release)
    session.flush()
    chosen = select(literal(release.id, Integer), File.id).where(
        File.is_newest.is_(True), File.on_disk.is_(True)
    )
    if product_ids:
        chosen = chosen.where(File.product_id.in_(product_ids))
    session.execute(insert(ReleaseFile).from_select(["release_id", "file_id"], chosen))
    return summary(session, release)


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@dataclass(frozen=True)
class ReleaseSummary(Record):
    """A release's facts and its file count (``release list``)."""

    name: str
    note: str | None
    created_at: dt.datetime = field(metadata={"seconds": True})
    created_by: str | None = None
    products: list[str] = field(default_factory=list)
    files: int = 0


@dataclass(frozen=True, kw_only=True)
class ReleaseCreated(ReleaseSummary):
    """A release just made, and where its ``sha256sum`` manifest is."""

    manifest: Path
    root: Path

    @classmethod
    def of(cls, made: ReleaseSummary, manifest: Path, root: Path) -> ReleaseCreated:
        """``made`` with where its manifest was written."""
        return cls(**fields_of(made), manifest=manifest, root=root)


@dataclass(frozen=True)
class ReleasedFile(Record):
    """A file of a release (``release show``)."""

    filename: str
    product: str
    date: dt.date
    version: str
    sha256: str | None
    size: int | None
    path: str
    #: relative to the data root when it is under it (the manifest's path)
    relative_path: str


@dataclass(frozen=True)
class VersionChange(Record):
    """One (product, date, slot) released in another version."""

    old: str = field(metadata={"key": "from"})
    new: str = field(metadata={"key": "to"})


@dataclass(frozen=True)
class ReleaseDiff(Record):
    """What changed from one release to another."""

    old: str = field(metadata={"key": "from"})
    new: str = field(metadata={"key": "to"})
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[VersionChange] = field(default_factory=list)
    unchanged: int = 0


def summary(session: Session, release: Release) -> ReleaseSummary:
    """A release's facts and its file count."""
    count = session.scalar(
        select(func.count()).select_from(ReleaseFile).where(ReleaseFile.release_id == release.id)
    )
    return ReleaseSummary(
        release.name,
        release.note,
        release.created_at,
        release.created_by,
        list(release.products or []),
        int(count or 0),
    )


def list_releases(session: Session) -> list[ReleaseSummary]:
    """Every release, oldest first."""
    return [summary(session, r) for r in session.scalars(select(Release).order_by(Release.id))]


def release_files(session: Session, name: str) -> list[ReleasedFile]:
    """The files of a release: filename, product, date, version, sha256, path."""
    release = get_release(session, name)
    root = Path(queries.get_mission(session).root_dir)
    rows = session.execute(
        select(
            File.filename,
            File.date,
            File.interface,
            File.quality,
            File.revision,
            File.sha256,
            File.size,
            File.path,
            Product.name.label("product"),
        )
        .join(ReleaseFile, ReleaseFile.file_id == File.id)
        .join(Product, Product.id == File.product_id)
        .where(ReleaseFile.release_id == release.id)
        .order_by(Product.name, File.date, File.filename)
    )
    prefix = f"{root}/"
    return [
        ReleasedFile(
            f.filename,
            f.product,
            f.date,
            f"{f.interface}.{f.quality}.{f.revision}",
            f.sha256,
            f.size,
            f.path if f.path.startswith("/") else prefix + f.path,
            f.path,
        )
        for f in rows
    ]


def manifest(files: Sequence[ReleasedFile]) -> str:
    """``sha256sum`` text: one ``HASH  PATH`` line a file, paths relative to the data root
    (``cd ROOT && sha256sum -c MANIFEST``); a file outside the root keeps its absolute path."""
    return "".join(f"{f.sha256}  {f.relative_path}\n" for f in files)


def diff_releases(session: Session, old: str, new: str) -> ReleaseDiff:
    """What changed from release ``old`` to ``new``: files added, removed, and replaced by
    another version of the same (product, date, slot)."""
    a = _by_identity(session, old)
    b = _by_identity(session, new)
    return ReleaseDiff(
        old,
        new,
        added=sorted(b[k] for k in b.keys() - a.keys()),
        removed=sorted(a[k] for k in a.keys() - b.keys()),
        changed=sorted(
            (VersionChange(a[k], b[k]) for k in a.keys() & b.keys() if a[k] != b[k]),
            key=lambda c: c.old,
        ),
        unchanged=sum(1 for k in a.keys() & b.keys() if a[k] == b[k]),
    )


def _by_identity(session: Session, name: str) -> dict[tuple[str, dt.date, str], str]:
    """(product, date, slot) -> the filename release ``name`` holds for it."""
    release = get_release(session, name)
    rows = session.execute(
        select(File.filename, File.date, File.slot, Product.name)
        .join(ReleaseFile, ReleaseFile.file_id == File.id)
        .join(Product, Product.id == File.product_id)
        .where(ReleaseFile.release_id == release.id)
    ).all()
    return {(r.name, r.date, r.slot): r.filename for r in rows}


def released_file_ids(session: Session) -> set[int]:
    """Ids of every file in some release (retention keeps them)."""
    return set(session.scalars(select(ReleaseFile.file_id).distinct()))
