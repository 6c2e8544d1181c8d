"""``dbproc import-dbprocessing``: the whole import, in resumable steps.

1. read the old database (reflection) and translate its mission; write the mission file
   and the inspector adapter beside it; validate it as ``config apply`` would;
2. apply it (products, processes, the active codes) and register the other code versions
   inactive, for provenance;
3. register every file in place (batches, committed as they go; a rerun skips what is
   there), then newest flags, spans, file→file links, releases;
4. translate the old process queue into pending (process, date) rows, once.

``--dry-run`` stops after step 1 (in a temporary folder) and writes nothing.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.orm import Session

from dbproc.admin import registry
from dbproc.admin.code_versions import file_sha256
from dbproc.clock import utcnow
from dbproc.control.locking import PassLock
from dbproc.db import schema
from dbproc.db.dependents import queue_dependents
from dbproc.db.models import (
    Code,
    DbprocessingImport,
    File,
    Pending,
    Process,
    Product,
    Release,
    ReleaseFile,
    table_of,
)
from dbproc.db.unit import commit
from dbproc.errors import UsageError
from dbproc.importing.files import (
    FileContext,
    import_files,
    import_links,
    legacy_dir,
    mark_newest,
    widen_spans,
)
from dbproc.importing.legacy import LegacyDatabase
from dbproc.importing.legacy_inspector import ADAPTER_SOURCE
from dbproc.importing.report import ImportReport
from dbproc.importing.translate import ADAPTER_NAME, Translation, translate
from dbproc.mission import load_mission_file
from dbproc.naming import FilenameFormat, FormatError
from dbproc.version import Version


@dataclass(frozen=True)
class ImportOptions:
    source: str
    mission_file: Path
    config: Path | None = None
    old_root: Path | None = None
    dry_run: bool = False
    batch: int = 1000


def _translate(
    legacy: LegacyDatabase, options: ImportOptions, adapter: Path, report: ImportReport
) -> tuple[Translation, str]:
    mission = legacy.mission()
    root = options.old_root or Path(mission.rootdir).expanduser()
    root = root.resolve()
    if not root.is_dir():
        raise UsageError(
            f"the dbprocessing rootdir {str(root)!r} is not a folder; dbprocessing "
            "resolves a relative rootdir against the current folder: run from "
            "there, or give --old-root DIR"
        )
    translation = translate(
        mission,
        root,
        legacy.products(),
        legacy.inspectors(),
        legacy.processes(),
        legacy.codes(),
        adapter,
        report,
    )
    header = (
        f"# Mission {mission.name!r} translated by `dbproc import-dbprocessing` from "
        f"{options.source}.\n# Folders are dbprocessing's own; nothing was moved.\n"
    )
    return translation, header + tomli_w.dumps(translation.doc)


def _write_mission(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ADAPTER_NAME).write_text(ADAPTER_SOURCE)
    path = folder / name
    path.write_text(text)
    return path


def run_import(
    engine: Callable[[], Engine],
    options: ImportOptions,
    progress: Callable[[int, int], Callable[[int], None] | None] | None = None,
) -> ImportReport:
    """Import ``options.source`` into the dbproc database ``engine()`` opens (only called
    when not a dry run: a dry run opens no database, creates no file)."""
    began = time.monotonic()
    report = ImportReport(options.source, str(options.mission_file), dry_run=options.dry_run)
    legacy = LegacyDatabase(options.source)
    try:
        if options.config is not None:
            from dbproc.importing.ini import compare_ini

            compare_ini(options.config, legacy, report)
        out_dir = options.mission_file.resolve().parent
        with tempfile.TemporaryDirectory(prefix="dbproc-import-") as scratch:
            folder = Path(scratch) if options.dry_run else out_dir
            translation, text = _translate(legacy, options, folder / ADAPTER_NAME, report)
            written = _write_mission(folder, options.mission_file.name, text)
            config = load_mission_file(written)  # refused as a whole, like config apply
            if options.dry_run:
                translation, report.mission_text = _translate(
                    legacy, options, out_dir / ADAPTER_NAME, ImportReport("", "")
                )
                _dry_counts(legacy, translation, config.mission.root, report)
                return report
        report.mission_text = text
        _import(engine(), legacy, translation, config, options, report, progress)
    finally:
        legacy.close()
        report.seconds = time.monotonic() - began
    return report


def _dry_counts(legacy: LegacyDatabase, tr: Translation, root: Path, report: ImportReport) -> None:
    for chunk in legacy.iter_files():
        for f in chunk:
            template = tr.legacy_dirs.get(f.product_id)
            report.count("files to import")
            if template is None:
                continue
            if not f.exists_on_disk or not (root / legacy_dir(template, f) / f.filename).is_file():
                report.missing_files.append(f.filename)
    report.counts["products"] = len(tr.products)
    report.counts["processes"] = len(tr.processes)
    report.counts["code versions"] = len(set(tr.codes.values()))


def _open_schema(engine: Engine) -> None:
    with engine.begin() as conn:
        if schema.current_revision(conn) is None and not schema.has_tables(conn):
            schema.create(conn)
        else:
            schema.ensure_current(conn)


def _import(
    engine: Engine,
    legacy: LegacyDatabase,
    tr: Translation,
    config: Any,
    options: ImportOptions,
    report: ImportReport,
    progress: Callable[[int, int], Callable[[int], None] | None] | None,
) -> None:
    _open_schema(engine)
    with (
        PassLock(engine, config.lock, "import") as _lock,
        Session(engine, expire_on_commit=False) as session,
    ):
        record = _begin(session, options.source)
        result = registry.apply_mission(session, config)
        # dbprocessing built these processes already: only its queue says what is left
        session.execute(delete(Pending).where(Pending.date.is_(None)))
        commit(session)
        report.counts["mission changes applied"] = len(result.changes)
        ctx = _context(session, tr, config.mission.root, config.mission.codes, report)
        total = legacy.count_files()
        tick = progress(total, 0) if progress is not None else None
        import_files(session, legacy, ctx, report, tick, options.batch)
        mark_newest(session, sorted({p[0] for p in ctx.products.values()}))
        widen_spans(session, ctx.spans)
        import_links(session, legacy, ctx, report)
        _releases(session, legacy, ctx, options.source, report)
        if not record.queue_done:
            _queue(session, legacy, ctx, tr, report)
            record.queue_done = True
        record.finished_at = utcnow()
        record.report = {
            "counts": dict(report.counts),
            "untranslated": [u.as_json() for u in report.untranslated],
            "missing_files": report.missing_files[:1000],
        }
        commit(session)


def _begin(session: Session, source: str) -> DbprocessingImport:
    record = session.scalars(
        select(DbprocessingImport).order_by(DbprocessingImport.id.desc())
    ).first()
    if record is None:
        if session.scalar(select(File.id).limit(1)) is not None:
            raise UsageError(
                "this dbproc database already holds files; import a dbprocessing "
                "database into a new one (a rerun of an import resumes it)"
            )
        record = DbprocessingImport(source=source, started_at=utcnow(), queue_done=False)
        session.add(record)
        session.flush()
    return record


def _context(
    session: Session, tr: Translation, root: Path, codes_dir: Path, report: ImportReport
) -> FileContext:
    names = dict(session.execute(select(Product.name, Product.id)).all())
    products = {}
    for old, name in tr.products.items():
        fmt_text = tr.doc["products"][name]["format"]
        try:
            fmt: FilenameFormat | None = FilenameFormat.parse(fmt_text)
        except FormatError:
            fmt = None
        products[old] = (names[name], tr.legacy_dirs[old], fmt)
    processes = dict(session.execute(select(Process.name, Process.id)).all())
    codes: dict[int, int] = {}
    for old, (pname, version) in tr.codes.items():
        v = Version.parse(version)
        row = session.scalars(
            select(Code).where(
                Code.process_id == processes[pname],
                Code.interface == v.interface,
                Code.quality == v.quality,
                Code.revision == v.revision,
            )
        ).first()
        if row is None:
            table = tr.inactive[old]
            row = Code(
                process_id=processes[pname],
                interface=v.interface,
                quality=v.quality,
                revision=v.revision,
                output_interface=table["output_interface"],
                path=table["path"],
                args=table["args"],
                valid_from=table.get("valid_from"),
                valid_until=table.get("valid_until"),
                description=table.get("description"),
                active=False,
                sha256=file_sha256(codes_dir / table["path"]),
                registered_at=utcnow(),
            )
            session.add(row)
            session.flush()
            report.count("inactive code versions registered")
        codes[old] = row.id
    commit(session)
    report.counts["code versions"] = len(set(codes.values()))
    return FileContext(root, products, codes)


def _releases(
    session: Session, legacy: LegacyDatabase, ctx: FileContext, source: str, report: ImportReport
) -> None:
    """dbprocessing's ``release`` rows become dbproc releases (``dbproc release list``),
    one per ``release_num``. A rerun adds what an interrupted import left out of its own
    releases, and never touches a release somebody made by hand."""
    note = f"imported from dbprocessing {source}"
    by_name: dict[str, set[int]] = {}
    for old, name in legacy.releases():
        new = ctx.map_id(old)
        if new:
            by_name.setdefault(name, set()).add(new)
    for name, ids in sorted(by_name.items()):
        release = session.scalars(select(Release).where(Release.name == name)).first()
        if release is None:
            release = Release(
                name=name,
                note=note,
                created_at=utcnow(),
                created_by="import-dbprocessing",
                products=[],
            )
            session.add(release)
            session.flush()
        elif release.note != note:
            report.note(
                "release",
                name,
                "a dbproc release of that name exists already",
                f"compare it with the old release: `dbproc release show {name}`",
                "its dbprocessing files were not added",
            )
            continue
        have = set(
            session.scalars(select(ReleaseFile.file_id).where(ReleaseFile.release_id == release.id))
        )
        rows = [{"release_id": release.id, "file_id": i} for i in sorted(ids - have)]
        if rows:
            session.execute(insert(table_of(ReleaseFile)), rows)
        report.count("releases", 1)
        report.count("release files", len(ids))
    commit(session)


def _queue(
    session: Session,
    legacy: LegacyDatabase,
    ctx: FileContext,
    tr: Translation,
    report: ImportReport,
) -> None:
    """Each queued file queues what a newly registered file would: its consumers' dates."""
    for old, bump in legacy.queue():
        new = ctx.map_id(old)
        record = session.get(File, new) if new else None
        if record is None:
            report.note(
                "queue",
                f"file #{old}",
                "queued in dbprocessing but not imported",
                "nothing",
                "dropped",
            )
            continue
        queue_dependents(
            session,
            record.product_id,
            record.date,
            [(record.start, record.stop)],
            f"dbprocessing queue: {record.filename}",
        )
        report.count("queued files translated")
        if bump is not None:
            part = {0: "interface", 1: "quality", 2: "revision"}.get(int(bump), str(bump))
            report.note(
                "queue",
                record.filename,
                f"queued with version_bump {bump} ({part})",
                f"run `dbproc reprocess --since {record.date} --until {record.date} "
                f"--bump {part if part != 'interface' else 'quality'}` for its "
                "consumers",
                "queued without the forced bump",
            )
    commit(session)
