"""The life-cycle part of the Python API (releases, purge, PROV and RO-Crate exports,
explain of a process, hourly coverage), mixed into :class:`dbproc.api.Archive`. Each
method is one unit of work: it opens a session, calls a service and commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from dbproc.db import queries

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dbproc.lifecycle.releases import (
        ReleaseCreated,
        ReleasedFile,
        ReleaseDiff,
        ReleaseSummary,
    )
    from dbproc.lifecycle.retention import PurgeResult
    from dbproc.provenance.coverage import MissingSlot
    from dbproc.provenance.explain import Explanation
    from dbproc.provenance.rocrate_export import CrateWritten


def manifest_path(root: Path, name: str) -> Path:
    """Where ``release create`` writes a release's ``sha256sum`` manifest."""
    return root / ".dbproc" / "releases" / f"{name}.sha256"


class LifecycleMixin:
    """Methods of :class:`~dbproc.api.Archive` for the data life-cycle (§17)."""

    if TYPE_CHECKING:

        def reading(self) -> AbstractContextManager[Session]: ...

        def writing(self, *, dry_run: bool = False) -> AbstractContextManager[Session]: ...

    # -- releases ---------------------------------------------------------------------

    def release_create(
        self,
        name: str,
        products: Sequence[str] = (),
        note: str | None = None,
        by: str | None = None,
    ) -> ReleaseCreated:
        """Freeze the newest version of every (product, date) as release ``name``
        (``dbproc release create``) and write its ``sha256sum`` manifest."""
        from dbproc.lifecycle import releases

        with self.writing() as session:
            data = releases.create_release(session, name, products, note, by)
            files = releases.release_files(session, name)
            root = Path(queries.get_mission(session).root_dir)
        target = manifest_path(root, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(releases.manifest(files), encoding="utf-8")
        return releases.ReleaseCreated.of(data, target, root)

    def releases(self) -> list[ReleaseSummary]:
        """Every release, oldest first (``dbproc release list``)."""
        from dbproc.lifecycle import releases

        with self.reading() as session:
            return releases.list_releases(session)

    def release_files(self, name: str) -> list[ReleasedFile]:
        """The files of release ``name`` (``dbproc release show``)."""
        from dbproc.lifecycle import releases

        with self.reading() as session:
            return releases.release_files(session, name)

    def release_manifest(self, name: str) -> str:
        """Release ``name`` as ``sha256sum -c`` text, paths relative to the data root."""
        from dbproc.lifecycle import releases

        return releases.manifest(self.release_files(name))

    def release_diff(self, old: str, new: str) -> ReleaseDiff:
        """Files added, removed and changed from release ``old`` to ``new``."""
        from dbproc.lifecycle import releases

        with self.reading() as session:
            return releases.diff_releases(session, old, new)

    # -- retention ----------------------------------------------------------------------

    def purge(
        self, *, keep: int = 2, products: Sequence[str] = (), apply: bool = False
    ) -> PurgeResult:
        """Old versions to delete (``dbproc purge``); with ``apply`` mark them purged,
        commit, then delete their bytes."""
        from dbproc.lifecycle import retention

        if apply:
            with self.writing() as session:
                plan = retention.plan_purge(session, keep, products)
                retention.mark_purged(session, plan)
        else:
            with self.reading() as session:  # a dry run only reads
                plan = retention.plan_purge(session, keep, products)
        return retention.PurgeResult.of(plan, apply, retention.delete_files(plan) if apply else [])

    # -- standard provenance --------------------------------------------------------------

    def export_prov(
        self,
        filenames: Sequence[str] = (),
        *,
        product: str | None = None,
        everything: bool = False,
        fmt: str = "json",
        depth: int | None = None,
    ) -> str:
        """A W3C PROV document of the files and their ancestors (``dbproc export prov``)."""
        from dbproc.provenance import graph, prov_export

        with self.reading() as session:
            start = graph.select_files(session, filenames, product, everything)
            loaded = graph.load_graph(session, start, depth, everything=everything)
        return prov_export.export(loaded, fmt)

    def export_rocrate(self, filename: str, to: str | Path) -> CrateWritten:
        """An RO-Crate (Process Run Crate) of the file and its ancestors in folder ``to``."""
        from dbproc.provenance import graph, rocrate_export

        with self.reading() as session:
            start = graph.select_files(session, [filename])
            loaded = graph.load_graph(session, start, None, run_consumers=False)
        return rocrate_export.write_crate(loaded, Path(to))

    # -- explain and coverage -------------------------------------------------------------

    def explain_process(self, process: str, day: dt.date) -> Explanation:
        """Why process ``process`` (RUN ones too) is or is not up to date on ``day``."""
        from dbproc.provenance import explain

        with self.reading() as session:
            decisions = explain.explain_process(session, process, day)
        return explain.Explanation.of(decisions, {"process": process, "date": day.isoformat()})

    def missing_slots(
        self, product: str, since: dt.date | None = None, until: dt.date | None = None
    ) -> list[MissingSlot]:
        """Slots of ``product``'s cadence without a file (``files --missing --by hour``)."""
        from dbproc.provenance import coverage

        with self.reading() as session:
            return coverage.missing_slots(session, product, since, until)
