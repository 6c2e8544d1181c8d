"""The Python API: one :class:`Archive` per mission database.

Everything the CLI does is a method here; the CLI only parses options and renders. ::

    import dbproc
    archive = dbproc.open("sqlite:///mission.sqlite")
    archive.apply_config("mission.toml")
    archive.run()
    archive.lineage("testDB_20160101_v1.0.0.cat")
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dbproc.db import schema
from dbproc.db.engine import (
    create_db_engine,
    database_url,
    display_url,
    read_only,
)
from dbproc.db.unit import Store
from dbproc.feed.archive import FeedMethods
from dbproc.lazy import lazy_module, lazy_names
from dbproc.lifecycle.api import LifecycleMixin
from dbproc.provenance.archive import ProvenanceMethods

# What only some methods need is imported when first used (each command is a new process).
if TYPE_CHECKING:
    from dbproc.admin import registry
    from dbproc.admin import reprocess as reprocess_module
    from dbproc.admin import status as status_module
    from dbproc.admin.check import run_check
    from dbproc.admin.check_report import CheckReport
    from dbproc.admin.mission_settings import retention_from_json, stored_settings
    from dbproc.admin.plan_view import PlanChain, plan_view
    from dbproc.admin.run_logs import PruneReport, prune_run_logs
    from dbproc.admin.status import ArchiveStatus, PlannedBuild
    from dbproc.build.preview import summarize
    from dbproc.control import locking
    from dbproc.control.passes import PassOptions, PassReport, run_pass
    from dbproc.db.file_paths import MissionPaths
    from dbproc.db.queries import get_mission
    from dbproc.feed.hooks import note_config_applied
    from dbproc.importing.report import ImportReport
    from dbproc.ingest.ingestor import Progress
    from dbproc.mission import load_mission_file
else:
    registry = lazy_module("dbproc.admin.registry")
    reprocess_module = lazy_module("dbproc.admin.reprocess")
    status_module = lazy_module("dbproc.admin.status")
    (run_check,) = lazy_names("dbproc.admin.check", "run_check")
    (plan_view,) = lazy_names("dbproc.admin.plan_view", "plan_view")
    retention_from_json, stored_settings = lazy_names(
        "dbproc.admin.mission_settings", "retention_from_json", "stored_settings"
    )
    (prune_run_logs,) = lazy_names("dbproc.admin.run_logs", "prune_run_logs")
    (summarize,) = lazy_names("dbproc.build.preview", "summarize")
    locking = lazy_module("dbproc.control.locking")
    PassOptions, run_pass = lazy_names("dbproc.control.passes", "PassOptions", "run_pass")
    (MissionPaths,) = lazy_names("dbproc.db.file_paths", "MissionPaths")
    (get_mission,) = lazy_names("dbproc.db.queries", "get_mission")
    (note_config_applied,) = lazy_names("dbproc.feed.hooks", "note_config_applied")
    (load_mission_file,) = lazy_names("dbproc.mission", "load_mission_file")

logger = logging.getLogger(__name__)


class Archive(ProvenanceMethods, FeedMethods, LifecycleMixin):
    """A mission database and the data tree it describes.

    Args:
        db: a SQLAlchemy URL (``postgresql+psycopg2://user@host/db``) or a SQLite path.
    """

    def __init__(self, db: str) -> None:
        self.url = database_url(db)
        self._engine: Engine | None = None
        self._schema_checked = False
        self._store: Store | None = None

    def __repr__(self) -> str:
        return f"Archive({display_url(self.url)!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (connected on first use). A SQLite file that does not
        exist is not created (:class:`~dbproc.errors.SchemaMissing`): only
        :meth:`apply_config` and :meth:`upgrade_schema` create one."""
        return self.open_engine(create=False)

    def open_engine(self, *, create: bool = False) -> Engine:
        """The engine; with ``create``, a SQLite file that does not exist is created (for
        commands that set a database up: ``config apply``, ``db upgrade``, imports)."""
        if self._engine is None:
            self._engine = create_db_engine(self.url, create=create)
        return self._engine

    def close(self) -> None:
        """Release every connection."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._store = None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def require_schema(self) -> None:
        """Raise (exit 5) unless the database schema is this dbproc's newest."""
        if not self._schema_checked:
            schema.ensure_current(read_only(self.engine))
            self._schema_checked = True

    @property
    def store(self) -> Store:
        """The unit-of-work owner on this database (every method's transaction)."""
        if self._store is None:
            self._store = Store(self.engine)
        return self._store

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only unit on a current schema (rolled back at the end)."""
        self.require_schema()
        with self.store.read() as session:
            yield session

    @contextmanager
    def writing(self, *, dry_run: bool = False) -> Iterator[Session]:
        """A write unit on a current schema: committed at the end unless ``dry_run``."""
        self.require_schema()
        with self.store.write(dry_run=dry_run) as session:
            yield session

    # -- schema and configuration -------------------------------------------------------

    def upgrade_schema(self) -> tuple[str | None, str]:
        """Migrate the schema to the newest revision; return (before, after)."""
        result = schema.upgrade(self.open_engine(create=True))
        self._schema_checked = False
        return result

    def schema_revision(self) -> tuple[str | None, str]:
        """(the database's revision, this dbproc's newest)."""
        return schema.current_revision(self.engine), schema.head_revision()

    def apply_config(self, path: str | Path, *, dry_run: bool = False) -> registry.ApplyResult:
        """Validate and register the mission file at ``path`` (see ``dbproc config apply``).

        The file is validated before the database is touched. On an empty database the
        schema is created first. With ``dry_run`` nothing is written.
        """
        config = load_mission_file(path)
        self.open_engine(create=True)  # the one command that may create the database
        with self.store.write(dry_run=dry_run) as session:
            conn = session.connection()
            created = False
            if schema.current_revision(conn) is None and not schema.has_tables(conn):
                schema.create(conn)
                created = True
            else:
                schema.ensure_current(conn)
            result = registry.apply_mission(session, config)
            result.created_schema = created
            result.dry_run = dry_run
            note_config_applied(session, config, result.changes)
            if dry_run:
                session.flush()
                result.builds = summarize(status_module.preview(session))
        for change in result.changes:
            # the log file keeps the record; the terminal shows the result once, on stdout
            logger.info(
                "config apply%s: %s",
                " (dry run)" if dry_run else "",
                change.describe(),
                extra={"dbproc_log_file_only": True},
            )
        if not dry_run:
            for folder in (config.mission.root, config.mission.incoming, config.mission.errors):
                folder.mkdir(parents=True, exist_ok=True)
        self._schema_checked = False
        return result

    def export_config(self) -> str:
        """The registered mission as TOML."""
        with self.reading() as session:
            return registry.export_mission(session)

    # -- passes ---------------------------------------------------------------------------

    def _pass(self, command: str, options: PassOptions) -> PassReport:
        self.require_schema()
        report = run_pass(self.engine, self.store.factory, command, options)
        self._after_pass(report)  # event retention, notifications: after the commit
        return report

    def ingest(self, *, progress: Progress | None = None) -> PassReport:
        """One locked ingest pass over the incoming folder (``dbproc ingest``)."""
        return self._pass(
            "ingest", PassOptions(ingest=True, process=False, ingest_progress=progress)
        )

    def process(self, **options: Any) -> PassReport:
        """Build everything buildable until nothing is left (``dbproc process``).

        Options are those of :class:`~dbproc.control.passes.PassOptions` (``jobs``, ``executor``,
        ``scheduler``, ``retry_failed``, ``process_progress``).
        """
        return self._pass("process", PassOptions(ingest=False, process=True, **options))

    def run(self, **options: Any) -> PassReport:
        """Ingest, then process: what cron calls (``dbproc run``)."""
        return self._pass("run", PassOptions(ingest=True, process=True, **options))

    def plan(self, *, retry_failed: bool = False, everything: bool = False) -> list[PlannedBuild]:
        """What ``process`` would run now, with output names, versions and reasons.

        Changes nothing. ``everything`` plans every date of every process instead of
        only what changed since the last pass.
        """
        with self.reading() as session:
            decisions = status_module.plan_now(
                session, retry_failed=retry_failed, everything=everything
            )
        return [status_module.PlannedBuild.of(d.action) for d in decisions if d.action is not None]

    def plan_chain(
        self, *, next_only: bool = False, everything: bool = False, retry_failed: bool = False
    ) -> PlanChain:
        """What ``dbproc plan`` shows: every build the next pass would make, downstream
        included, each with its ``level`` (1 = can start now) and ``in_flight`` (the run
        of a pass running now that already holds it), and that pass (``running``, or None).
        ``next_only`` keeps level 1. Changes nothing."""
        with self.reading() as session:
            return plan_view(
                self.engine,
                session,
                next_only=next_only,
                everything=everything,
                retry_failed=retry_failed,
            )

    def status(self) -> ArchiveStatus:
        """The lock, recent passes, file counts, failures and pending builds."""
        with self.reading() as session:
            return status_module.status(self.engine, session)

    def unlock(self, *, force: bool = False) -> list[str]:
        """Clear a pass flag whose holder is gone (``dbproc unlock``); refuses if alive."""
        with self.reading() as session:
            lock_settings = stored_settings(session).lock
        result = locking.unlock(self.engine, lock_settings, force=force)
        return [h.describe() for h in result.cleared]

    def prune_runs(
        self, *, failed: bool = False, older_than_days: float | None = None
    ) -> PruneReport:
        """Remove old run logs (``dbproc runs prune``); see :mod:`dbproc.admin.run_logs`."""
        with self.writing() as session:
            mission = get_mission(session)
            days = older_than_days
            if days is None:
                days = retention_from_json(mission.settings or {}).run_logs_days
            return prune_run_logs(session, MissionPaths.of(mission), days, failed=failed)

    def preview(self, *, retry_failed: bool = False) -> list[PlannedBuild]:
        """Every build the next pass would make, downstream included, predicted by
        assuming each build succeeds (``dbproc plan --cascade``). Changes nothing."""
        with self.reading() as session:
            return [
                status_module.PlannedBuild.of(a)
                for a in status_module.preview(session, retry_failed=retry_failed)
            ]

    def reprocess(
        self, *, dry_run: bool = False, **filters: Any
    ) -> reprocess_module.ReprocessResult:
        """Force rebuilds of matching outputs (``dbproc reprocess``).

        Filters (see :class:`~dbproc.admin.reprocess.ReprocessFilter`): ``products``,
        ``processes``, ``instruments``, ``files``, ``since``, ``until``, ``bump``
        (``"revision"`` or ``"quality"``). The forced rebuilds are stored durably; the
        next ``run``/``process`` makes them. The result includes a per-process preview
        of every build that will follow. With ``dry_run`` nothing is written.
        """
        flt = reprocess_module.ReprocessFilter(**filters)
        with self.writing(dry_run=dry_run) as session:
            result = reprocess_module.queue_rebuilds(session, flt)
            session.flush()
            builds = summarize(status_module.preview(session))
        result.dry_run = dry_run
        result.builds = builds
        return result

    def check(self, *, repair: bool = False, checksums: bool = True) -> CheckReport:
        """Compare disk and database (``dbproc check``); ``repair`` fixes what is safe,
        under the pass lock. ``checksums`` re-hashes every file (slow on big archives)."""
        self.require_schema()
        return run_check(self.engine, self.store.factory, repair=repair, checksums=checksums)

    def import_dbprocessing(
        self,
        source: str,
        mission_file: str | Path,
        *,
        config: str | Path | None = None,
        old_root: str | Path | None = None,
        dry_run: bool = False,
        progress: Any = None,
        batch: int = 1000,
    ) -> ImportReport:
        """Import a dbprocessing database (``dbproc import-dbprocessing``); see
        :mod:`dbproc.importing`. Returns an :class:`~dbproc.importing.report.ImportReport`."""
        from dbproc.importing.importer import ImportOptions, run_import

        options = ImportOptions(
            source,
            Path(mission_file),
            Path(config) if config is not None else None,
            Path(old_root) if old_root is not None else None,
            dry_run,
            batch,
        )
        return run_import(lambda: self.open_engine(create=True), options, progress)
