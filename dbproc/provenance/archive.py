"""The read side of the Python API (files, rejects, runs, lineage, recall, explain,
coverage, inspect), mixed into :class:`dbproc.api.Archive`. Each method is one unit of
work, and answers with the typed records of :mod:`dbproc.records` and
:mod:`dbproc.provenance`."""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbproc.errors import UsageError
from dbproc.lazy import lazy_module, lazy_names
from dbproc.records import (
    FileRecord,
    InspectResult,
    RejectRecord,
    RetryResult,
    RunDetail,
    RunRecord,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dbproc.admin import reprocess as reprocess_module
    from dbproc.db.file_paths import MissionPaths
    from dbproc.db.files import product_rules
    from dbproc.db.queries import get_mission
    from dbproc.db.unit import Store
    from dbproc.ingest.inspection import InspectorSet
    from dbproc.provenance import explain as explain_module
    from dbproc.provenance import inventory
    from dbproc.provenance import lineage as lineage_module
else:
    reprocess_module = lazy_module("dbproc.admin.reprocess")
    (MissionPaths,) = lazy_names("dbproc.db.file_paths", "MissionPaths")
    (product_rules,) = lazy_names("dbproc.db.files", "product_rules")
    (get_mission,) = lazy_names("dbproc.db.queries", "get_mission")
    (InspectorSet,) = lazy_names("dbproc.ingest.inspection", "InspectorSet")
    explain_module = lazy_module("dbproc.provenance.explain")
    inventory = lazy_module("dbproc.provenance.inventory")
    lineage_module = lazy_module("dbproc.provenance.lineage")


class ProvenanceMethods:
    """Methods of :class:`~dbproc.api.Archive` that look at the archive."""

    if TYPE_CHECKING:

        @property
        def store(self) -> Store: ...

        def reading(self) -> AbstractContextManager[Session]: ...

        def require_schema(self) -> None: ...

        def reprocess(
            self, *, dry_run: bool = False, **filters: Any
        ) -> reprocess_module.ReprocessResult: ...

    def runs(self, query: inventory.RunQuery | None = None, **filters: Any) -> list[RunRecord]:
        """Run records, newest first (``dbproc runs``)."""
        with self.reading() as session:
            return inventory.list_runs(session, query or inventory.RunQuery(**filters))

    def run_record(self, run_id: int) -> RunDetail:
        """One run with its log (``dbproc runs show``)."""
        with self.reading() as session:
            return inventory.show_run(session, run_id)

    def lineage(
        self, filename: str, *, depth: int | None = 1, direction: str = "both"
    ) -> lineage_module.Lineage:
        """Parents and children of a file with the code and run that made each
        (``dbproc lineage``); ``depth=None`` walks the whole graph; ``direction`` is
        ``both``, ``up`` or ``down``."""
        with self.reading() as session:
            return lineage_module.lineage(session, filename, depth=depth, direction=direction)

    def recall(self, filename: str) -> lineage_module.Recall:
        """Every file derived from ``filename`` at any depth, by product (``dbproc recall``)."""
        with self.reading() as session:
            return lineage_module.recall(session, filename)

    def recall_reprocess(
        self, filename: str, *, bump: str = "revision"
    ) -> reprocess_module.ReprocessResult:
        """Force rebuilds of the newest files derived from ``filename``."""
        names = self.recall(filename).newest_names()
        if not names:
            return reprocess_module.ReprocessResult()
        return self.reprocess(files=names, bump=bump)

    def explain(
        self,
        filename: str | None = None,
        *,
        product: str | None = None,
        date: dt.date | None = None,
    ) -> explain_module.Explanation:
        """Why a file, or a product on a date, is (or is not) up to date (``dbproc explain``)."""
        with self.reading() as session:
            if filename is not None:
                return explain_module.Explanation(explain_module.explain_file(session, filename))
            if product is None or date is None:
                raise UsageError("explain needs a FILENAME, or --product and --date")
            decisions = explain_module.explain_key(session, product, date)
        return explain_module.Explanation.of(
            decisions, {"product": product, "date": date.isoformat()}
        )

    def missing(
        self, product: str, since: dt.date | None = None, until: dt.date | None = None
    ) -> list[explain_module.MissingDate]:
        """Dates where an expected file of ``product`` does not exist, and why
        (``dbproc files --missing``)."""
        with self.reading() as session:
            return explain_module.missing(session, product, since, until)

    def files(
        self, query: inventory.FileQuery | None = None, **filters: object
    ) -> list[FileRecord]:
        """Registered files (``dbproc files``); keyword filters build a FileQuery."""
        if query is None:
            query = inventory.FileQuery(**filters)  # type: ignore[arg-type]
        with self.reading() as session:
            return inventory.list_files(session, query)

    def rejects(self, *, include_retried: bool = False) -> list[RejectRecord]:
        """Refused incoming files (``dbproc rejects``)."""
        with self.reading() as session:
            return inventory.list_rejects(session, include_retried=include_retried)

    def retry_rejects(self, names: list[str] | tuple[str, ...] = ()) -> RetryResult:
        """Move rejected files back to incoming (``dbproc rejects retry``)."""
        self.require_schema()
        with self.store.session() as session:  # one unit per file moved back
            return inventory.retry_rejects(session, names)

    def inspect_file(self, path: str | Path) -> InspectResult:
        """Ask every product's inspector about one file, ingesting nothing (``dbproc inspect``)."""
        path = Path(path).absolute()
        with self.reading() as session:
            paths = MissionPaths.of(get_mission(session))
            inspectors = InspectorSet(product_rules(session), paths.codes)
        with inspectors:
            verdict = inspectors.identify(path)
        facts = verdict.facts
        return InspectResult(
            file=str(path),
            claimed_by=facts.product.name if facts else None,
            answers=verdict.answers,
            format_mismatch=verdict.unmatched,
            reason=verdict.reason,
            message=verdict.message,
            detail=verdict.detail,
        )
