"""Registering dbprocessing's files in place: one read per file for sha256 (and the SHA-1
dbprocessing kept, to compare), batches committed as they go, resumable by filename."""

from __future__ import annotations

import datetime as dt
import hashlib
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from dbproc.clock import midnight, utcnow
from dbproc.db.coverage import recount_coverage
from dbproc.db.file_paths import stored_path
from dbproc.db.models import File, FileLink, Product, table_of
from dbproc.db.queries import chunked
from dbproc.db.unit import commit
from dbproc.importing.legacy import LegacyDatabase, LegacyFile
from dbproc.importing.legacy_inspector import keywords_of
from dbproc.importing.report import ImportReport
from dbproc.naming import FilenameFormat, is_free_value, make_slot

Progress = Callable[[int], None]
DAY = dt.timedelta(days=1)


@dataclass
class FileContext:
    """What registering needs to know about products and codes."""

    root: Path
    #: old product id -> (new product id, legacy dir template, translated format)
    products: Mapping[int, tuple[int, str, FilenameFormat | None]]
    #: old code id -> new code id
    codes: Mapping[int, int]
    #: old file id -> new file id (0: not imported); an array keeps 10^6 ids in 8 MB
    ids: array[int] = field(default_factory=lambda: array("q"))
    spans: dict[int, float] = field(default_factory=dict)

    def map_id(self, old: int) -> int:
        return self.ids[old] if 0 <= old < len(self.ids) else 0

    def set_id(self, old: int, new: int) -> None:
        if old >= len(self.ids):
            self.ids.extend([0] * (old + 1 - len(self.ids) + 1024))
        self.ids[old] = new


def legacy_dir(template: str, f: LegacyFile) -> str:
    """dbprocessing's ``dirSubs`` of a product's relative_path for one file: date fields
    from its file date, ``{H}{M}{S}`` from its start time."""
    day = f.date or (f.start.date() if f.start else None)
    if day is None or "{" not in template:
        return template
    start = f.start or midnight(day)
    values = {
        "Y": f"{day:%Y}",
        "m": f"{day:%m}",
        "d": f"{day:%d}",
        "y": f"{day:%y}",
        "j": f"{day:%j}",
        "b": f"{day:%b}",
        "H": f"{start:%H}",
        "M": f"{start:%M}",
        "S": f"{start:%S}",
        "DATE": f"{day:%Y%m%d}",
        "VERSION": ".".join(str(v) for v in f.version),
    }
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def digest(path: Path) -> tuple[str, str, int] | None:
    """(sha256, sha1, size) in one read, or None when the file cannot be read."""
    sha256, sha1, size = hashlib.sha256(), hashlib.sha1(), 0  # noqa: S324 - dbprocessing's
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                sha256.update(block)
                sha1.update(block)
                size += len(block)
    except OSError:
        return None
    return sha256.hexdigest(), sha1.hexdigest(), size


def _identity(f: LegacyFile, fmt: FilenameFormat | None) -> tuple[dict[str, str], str]:
    keywords = {k: v for k, v in keywords_of(f.process_keywords).items() if is_free_value(v)}
    time_of_day = None
    if fmt is not None:
        parsed = fmt.match(f.filename)
        if parsed is not None:
            keywords = {**keywords, **parsed.keywords}
            time_of_day = parsed.time_of_day
    return keywords, make_slot(keywords, time_of_day)


def _interval(f: LegacyFile, report: ImportReport) -> tuple[dt.date, dt.datetime, dt.datetime]:
    date = f.date or (f.start.date() if f.start else dt.date(1970, 1, 1))
    start = f.start or midnight(date)
    stop = f.stop or start + DAY
    if stop <= start:
        report.note(
            "file",
            f.filename,
            f"its data interval {start}..{stop} is empty (dbprocessing's intervals are closed)",
            "nothing",
            "stop set 1 microsecond after start",
        )
        stop = start + dt.timedelta(microseconds=1)
    return date, start, stop


def _row(
    f: LegacyFile, ctx: FileContext, code_id: int | None, report: ImportReport
) -> dict[str, Any] | None:
    product = ctx.products.get(f.product_id)
    if product is None:
        report.count("files skipped (product not imported)")
        return None
    product_id, template, fmt = product
    path = ctx.root / legacy_dir(template, f) / f.filename
    found = digest(path) if f.exists_on_disk else None
    if found is None:
        report.missing_files.append(f.filename)
        sha256, size = "", 0
    else:
        sha256, sha1, size = found
        if f.shasum and f.shasum.lower() != sha1:
            report.checksum_mismatches.append(f.filename)
    date, start, stop = _interval(f, report)
    keywords, slot = _identity(f, fmt)
    legacy = {"file_id": f.id, "shasum": f.shasum}
    for key in ("quality_comment", "caveats", "process_keywords"):
        if getattr(f, key):
            legacy[key] = getattr(f, key)
    span = (stop - start).total_seconds()
    ctx.spans[product_id] = max(ctx.spans.get(product_id, 0.0), span)
    return {
        "product_id": product_id,
        "filename": f.filename,
        "date": date,
        "start": start,
        "stop": stop,
        "interface": f.version[0],
        "quality": f.version[1],
        "revision": f.version[2],
        "slot": slot,
        "keywords": keywords,
        "metadata": {"dbprocessing": legacy},
        "size": size,
        "sha256": sha256,
        "path": stored_path(ctx.root, path),
        "registered_at": f.created or utcnow(),
        "code_id": code_id,
        "run_id": None,
        "is_newest": False,
        "on_disk": found is not None,
    }


def import_files(
    session: Session,
    legacy: LegacyDatabase,
    ctx: FileContext,
    report: ImportReport,
    progress: Progress | None = None,
    batch: int = 1000,
) -> None:
    """Register every old file not registered yet; commit after each batch."""
    file_table = table_of(File)
    for chunk in legacy.iter_files(batch):
        names = [f.filename for f in chunk]
        done = dict(
            session.execute(select(File.filename, File.id).where(File.filename.in_(names))).all()
        )
        codes = _code_links(legacy, [f.id for f in chunk if f.filename not in done], ctx, report)
        rows = []
        for f in chunk:
            if f.filename in done:
                ctx.set_id(f.id, done[f.filename])
                report.count("files already imported (skipped)")
                continue
            row = _row(f, ctx, codes.get(f.id), report)
            if row is not None:
                row["_old"] = f.id
                rows.append(row)
        rows = _drop_taken_identities(session, rows, report)
        if rows:
            olds = [r.pop("_old") for r in rows]
            session.execute(insert(file_table), rows)
            new_ids = dict(
                session.execute(
                    select(File.filename, File.id).where(
                        File.filename.in_([r["filename"] for r in rows])
                    )
                ).all()
            )
            for old, r in zip(olds, rows, strict=True):
                ctx.set_id(old, new_ids[r["filename"]])
            report.count("files imported", len(rows))
        commit(session)
        if progress is not None:
            progress(len(chunk))


def _identity_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        row["product_id"],
        row["date"],
        row["slot"],
        row["interface"],
        row["quality"],
        row["revision"],
    )


def _drop_taken_identities(
    session: Session, rows: list[dict[str, Any]], report: ImportReport
) -> list[dict[str, Any]]:
    """dbprocessing's "unique file tuple" is inert, so two files may share product, date and
    version; dbproc keeps one file per identity: the first is imported, the others reported."""
    if not rows:
        return rows
    taken: dict[tuple[Any, ...], str] = {}
    products = sorted({r["product_id"] for r in rows})
    dates = sorted({r["date"] for r in rows})
    for part in chunked(dates):
        for f in session.execute(
            select(
                File.product_id,
                File.date,
                File.slot,
                File.interface,
                File.quality,
                File.revision,
                File.filename,
            ).where(File.product_id.in_(products), File.date.in_(part))
        ):
            taken[tuple(f[:6])] = f[6]
    kept = []
    for row in rows:
        key = _identity_key(row)
        if key in taken:
            report.note(
                "file",
                row["filename"],
                f"same product, date and version as "
                f"{taken[key]} (dbprocessing does not enforce this)",
                "give one of them a new version (or remove it) and import again",
                "not imported",
            )
            continue
        taken[key] = row["filename"]
        kept.append(row)
    return kept


def _code_links(
    legacy: LegacyDatabase, old_ids: list[int], ctx: FileContext, report: ImportReport
) -> dict[int, int]:
    """old file id -> new code id, from filecodelink (the newest code when several)."""
    if not old_ids or "filecodelink" not in legacy.tables:
        return {}
    t = legacy.tables["filecodelink"]
    out: dict[int, int] = {}
    with legacy.engine.connect() as conn:
        for part in chunked(old_ids):
            for file_id, code_id in conn.execute(
                select(t.c.resulting_file, t.c.source_code).where(t.c.resulting_file.in_(part))
            ):
                new = ctx.codes.get(int(code_id))
                if new is None:
                    continue
                if file_id in out and out[file_id] != new:
                    report.count("files with several codes (newest kept)")
                out[file_id] = max(out.get(file_id, 0), new)
    return out


def mark_newest(session: Session, product_ids: Iterable[int]) -> None:
    """``is_newest`` = the highest version of each (product, date, slot), and the coverage
    summary of the product's days counted again (the bulk insert bypasses
    :func:`~dbproc.db.coverage.record_coverage`); one product a transaction."""
    for pid in product_ids:
        rows = session.execute(
            select(
                File.id, File.date, File.slot, File.interface, File.quality, File.revision
            ).where(File.product_id == pid)
        ).all()
        best: dict[tuple[dt.date, str], tuple[tuple[int, int, int], int]] = {}
        for r in rows:
            key, version = (r.date, r.slot), (r.interface, r.quality, r.revision)
            if key not in best or version > best[key][0]:
                best[key] = (version, r.id)
        session.execute(
            update(File)
            .where(File.product_id == pid, File.is_newest.is_(True))
            .values(is_newest=False)
        )
        for part in chunked([b[1] for b in best.values()]):
            session.execute(update(File).where(File.id.in_(part)).values(is_newest=True))
        days: list[dt.date] = sorted({r.date for r in rows})
        for some_days in chunked(days):
            recount_coverage(session.connection(), pid, some_days)
        commit(session)


def widen_spans(session: Session, spans: Mapping[int, float]) -> None:
    """Each product's longest data interval, for the planner's window queries."""
    for pid, span in spans.items():
        product = session.get(Product, pid)
        if product is not None and span > product.max_span_seconds:
            product.max_span_seconds = span
    commit(session)


def import_links(
    session: Session, legacy: LegacyDatabase, ctx: FileContext, report: ImportReport
) -> None:
    """filefilelink → file_link (child = resulting_file, parent = source_file); idempotent."""
    for pairs in legacy.pairs("filefilelink", "resulting_file", "source_file"):
        wanted = set()
        for child, parent in pairs:
            c, p = ctx.map_id(child), ctx.map_id(parent)
            if c and p and c != p:
                wanted.add((c, p))
            else:
                report.count("links skipped (file not imported)")
        children = sorted({c for c, _ in wanted})
        for part in chunked(children):
            members = set(part)
            existing = {
                (int(c), int(p))
                for c, p in session.execute(
                    select(FileLink.child_id, FileLink.parent_id).where(FileLink.child_id.in_(part))
                )
            }
            rows = [
                {"child_id": c, "parent_id": p}
                for c, p in wanted
                if c in members and (c, p) not in existing
            ]
            if rows:
                session.execute(insert(table_of(FileLink)), rows)
                report.count("file links imported", len(rows))
        commit(session)
