"""The Python API: one :class:`Archive` per mission database.

Everything the CLI does is a method here; the CLI only parses options and renders. ::

    import dbproc
    archive = dbproc.open("sqlite:///mission.sqlite")
    archive.apply_config("mission.toml")
    archive.run()
    archive.lineage("testDB_20160101_v1.0.0.cat")
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dbproc.admin import registry
from dbproc.admin import reprocess as reprocess_module
from dbproc.admin import status as status_module
from dbproc.admin.check import CheckReport, run_check
from dbproc.admin.plan_view import plan_view
from dbproc.admin.registry import stored_settings
from dbproc.build.preview import summarize
from dbproc.control import locking
from dbproc.control.passes import PassOptions, PassReport, run_pass
from dbproc.db import schema
from dbproc.db.engine import (
    create_db_engine,
    database_url,
    display_url,
    make_session_factory,
    read_only,
)
from dbproc.db.files import MissionPaths, product_rules
from dbproc.db.queries import get_mission
from dbproc.errors import UsageError
from dbproc.ingest.ingestor import Progress
from dbproc.ingest.inspection import InspectorSet
from dbproc.mission import load_mission_file
from dbproc.provenance import explain as explain_module
from dbproc.provenance import inventory
from dbproc.provenance import lineage as lineage_module

logger = logging.getLogger(__name__)


class Archive:
    """A mission database and the data tree it describes.

    Args:
        db: a SQLAlchemy URL (``postgresql+psycopg2://user@host/db``) or a SQLite path.
    """

    def __init__(self, db: str) -> None:
        self.url = database_url(db)
        self._engine: Engine | None = None
        self._schema_checked = False

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

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def require_schema(self) -> None:
        """Raise (exit 5) unless the database schema is this dbproc's newest."""
        if not self._schema_checked:
            schema.ensure_current(read_only(self.engine))
            self._schema_checked = True

    @contextmanager
    def session(self, *, reading: bool = False) -> Iterator[Session]:
        """A session on a current schema; the caller commits. With ``reading`` its
        transactions only read (on SQLite they neither wait for nor block a pass)."""
        self.require_schema()
        engine = read_only(self.engine) if reading else self.engine
        with make_session_factory(engine)() as session:
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
        with self.open_engine(create=True).connect() as conn:
            outer = conn.begin()
            created = False
            if schema.current_revision(conn) is None and not schema.has_tables(conn):
                schema.create(conn)
                created = True
            else:
                schema.ensure_current(conn)
            with Session(
                bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
            ) as session:
                result = registry.apply_mission(session, config)
                result.created_schema = created
                session.commit()
            if dry_run:
                with Session(bind=conn, join_transaction_mode="create_savepoint",
                             expire_on_commit=False) as session:
                    result.builds = summarize(status_module.preview(session))
                outer.rollback()
            else:
                outer.commit()
        for change in result.changes:
            # the log file keeps the record; the terminal shows the result once, on stdout
            logger.info("config apply%s: %s", " (dry run)" if dry_run else "",
                        change.describe(), extra={"dbproc_log_file_only": True})
        if not dry_run:
            for folder in (config.mission.root, config.mission.incoming, config.mission.errors):
                folder.mkdir(parents=True, exist_ok=True)
        self._schema_checked = False
        return result

    def export_config(self) -> str:
        """The registered mission as TOML."""
        with self.session(reading=True) as session:
            return registry.export_mission(session)

    # -- passes ---------------------------------------------------------------------------

    def _pass(self, command: str, options: PassOptions) -> PassReport:
        self.require_schema()
        return run_pass(self.engine, make_session_factory(self.engine), command, options)

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

    def plan(self, *, retry_failed: bool = False, everything: bool = False
             ) -> list[dict[str, Any]]:
        """What ``process`` would run now, with output names, versions and reasons.

        Changes nothing. ``everything`` plans every date of every process instead of
        only what changed since the last pass.
        """
        with self.session(reading=True) as session:
            decisions = status_module.plan_now(session, retry_failed=retry_failed,
                                               everything=everything)
        return [status_module.decision_json(d) for d in decisions if d.action is not None]

    def plan_chain(self, *, next_only: bool = False, everything: bool = False,
                   retry_failed: bool = False) -> dict[str, Any]:
        """What ``dbproc plan`` shows: every build the next pass would make, downstream
        included, each with its ``level`` (1 = can start now) and ``in_flight`` (the run
        of a pass running now that already holds it), and that pass (``"pass"``, or None).
        ``next_only`` keeps level 1. Changes nothing."""
        with self.session(reading=True) as session:
            return plan_view(self.engine, session, next_only=next_only, everything=everything,
                             retry_failed=retry_failed)

    def status(self) -> dict[str, Any]:
        """The lock, recent passes, file counts, failures and pending builds."""
        with self.session(reading=True) as session:
            return status_module.status(self.engine, session)

    def unlock(self, *, force: bool = False) -> list[str]:
        """Clear a pass flag whose holder is gone (``dbproc unlock``); refuses if alive."""
        with self.session() as session:
            lock_settings = stored_settings(session).lock
        result = locking.unlock(self.engine, lock_settings, force=force)
        return [h.describe() for h in result.cleared]

    def runs(self, query: inventory.RunQuery | None = None, **filters: Any
             ) -> list[dict[str, Any]]:
        """Run records, newest first (``dbproc runs``)."""
        with self.session(reading=True) as session:
            return inventory.list_runs(session, query or inventory.RunQuery(**filters))

    def run_record(self, run_id: int) -> dict[str, Any]:
        """One run with its log (``dbproc runs show``)."""
        with self.session(reading=True) as session:
            return inventory.show_run(session, run_id)

    def preview(self, *, retry_failed: bool = False) -> list[dict[str, Any]]:
        """Every build the next pass would make, downstream included, predicted by
        assuming each build succeeds (``dbproc plan --cascade``). Changes nothing."""
        with self.session(reading=True) as session:
            return [status_module.action_json(a)
                    for a in status_module.preview(session, retry_failed=retry_failed)]

    def reprocess(self, *, dry_run: bool = False, **filters: Any) -> dict[str, Any]:
        """Force rebuilds of matching outputs (``dbproc reprocess``).

        Filters (see :class:`~dbproc.admin.reprocess.ReprocessFilter`): ``products``,
        ``processes``, ``instruments``, ``files``, ``since``, ``until``, ``bump``
        (``"revision"`` or ``"quality"``). The forced rebuilds are stored durably; the
        next ``run``/``process`` makes them. The result includes a per-process preview
        of every build that will follow. With ``dry_run`` nothing is written.
        """
        flt = reprocess_module.ReprocessFilter(**filters)
        self.require_schema()
        with self.engine.connect() as conn:
            outer = conn.begin()
            with Session(bind=conn, join_transaction_mode="create_savepoint",
                         expire_on_commit=False) as session:
                result = reprocess_module.queue_rebuilds(session, flt)
                session.commit()
            if dry_run:
                with Session(bind=conn, join_transaction_mode="create_savepoint",
                             expire_on_commit=False) as session:
                    builds = summarize(status_module.preview(session))
                outer.rollback()
            else:
                outer.commit()
        if not dry_run:
            with self.session() as session:
                builds = summarize(status_module.preview(session))
        data = result.as_json()
        data["dry_run"] = dry_run
        data["builds"] = builds
        return data

    def lineage(self, filename: str, *, depth: int | None = 1, direction: str = "both"
                ) -> dict[str, Any]:
        """Parents and children of a file with the code and run that made each
        (``dbproc lineage``); ``depth=None`` walks the whole graph; ``direction`` is
        ``both``, ``up`` or ``down``."""
        with self.session(reading=True) as session:
            return lineage_module.lineage(session, filename, depth=depth, direction=direction)

    def recall(self, filename: str) -> dict[str, Any]:
        """Every file derived from ``filename`` at any depth, by product (``dbproc recall``)."""
        with self.session(reading=True) as session:
            return lineage_module.recall(session, filename)

    def recall_reprocess(self, filename: str, *, bump: str = "revision") -> dict[str, Any]:
        """Force rebuilds of the newest files derived from ``filename``."""
        found = self.recall(filename)
        names = [f["filename"] for p in found["by_product"].values() for f in p["files"]
                 if f["newest"]]
        if not names:
            return {"queued": 0, "already_queued": 0, "targets": [], "builds": {}}
        return self.reprocess(files=names, bump=bump)

    def explain(self, filename: str | None = None, *, product: str | None = None,
                date: dt.date | None = None) -> dict[str, Any]:
        """Why a file, or a product on a date, is (or is not) up to date (``dbproc explain``)."""
        with self.session(reading=True) as session:
            if filename is not None:
                return explain_module.explain_file(session, filename)
            if product is None or date is None:
                raise UsageError("explain needs a FILENAME, or --product and --date")
            decisions = explain_module.explain_key(session, product, date)
        if len(decisions) == 1:
            return decisions[0]
        return {"product": product, "date": date.isoformat(), "decisions": decisions,
                "up_to_date": all(d["up_to_date"] for d in decisions)}

    def missing(self, product: str, since: dt.date | None = None, until: dt.date | None = None
                ) -> list[dict[str, Any]]:
        """Dates where an expected file of ``product`` does not exist, and why
        (``dbproc files --missing``)."""
        with self.session(reading=True) as session:
            return explain_module.missing(session, product, since, until)

    def check(self, *, repair: bool = False, checksums: bool = True) -> CheckReport:
        """Compare disk and database (``dbproc check``); ``repair`` fixes what is safe,
        under the pass lock. ``checksums`` re-hashes every file (slow on big archives)."""
        self.require_schema()
        return run_check(self.engine, make_session_factory(self.engine), repair=repair,
                         checksums=checksums)

    # -- looking at things ----------------------------------------------------------------

    def files(
        self, query: inventory.FileQuery | None = None, **filters: object
    ) -> list[dict[str, Any]]:
        """Registered files (``dbproc files``); keyword filters build a FileQuery."""
        if query is None:
            query = inventory.FileQuery(**filters)  # type: ignore[arg-type]
        with self.session(reading=True) as session:
            return inventory.list_files(session, query)

    def rejects(self, *, include_retried: bool = False) -> list[dict[str, Any]]:
        """Refused incoming files (``dbproc rejects``)."""
        with self.session(reading=True) as session:
            return inventory.list_rejects(session, include_retried=include_retried)

    def retry_rejects(self, names: list[str] | tuple[str, ...] = ()) -> dict[str, list[str]]:
        """Move rejected files back to incoming (``dbproc rejects retry``)."""
        with self.session() as session:
            return inventory.retry_rejects(session, names)

    def inspect_file(self, path: str | Path) -> dict[str, Any]:
        """Ask every product's inspector about one file, ingesting nothing (``dbproc inspect``)."""
        path = Path(path).absolute()
        with self.session(reading=True) as session:
            paths = MissionPaths.of(get_mission(session))
            inspectors = InspectorSet(product_rules(session), paths.codes)
        verdict = inspectors.identify(path)
        facts = verdict.facts
        return {
            "file": str(path),
            "claimed_by": facts.product.name if facts else None,
            "answers": verdict.answers,
            "format_mismatch": verdict.unmatched,
            "reason": verdict.reason,
            "message": verdict.message,
            "detail": verdict.detail,
        }
