"""The schema, as SQLAlchemy 2 typed declarative models, and its one import point.

This module holds the core tables (the mission and its products, processes, inputs and
codes; files, their lineage, coverage summaries and releases) and re-exports the tables
of :mod:`dbproc.db.models_runs` (passes, runs, the rebuild queue, rejects) and
:mod:`dbproc.db.models_feed` (events, notifier cursors, review verdicts), and the base
from :mod:`dbproc.db.model_base`. Import every table and ``Base`` from here: importing this
module registers every table on ``Base.metadata`` (which Alembic and the drift test read).

Alembic (``migrations/``) owns the schema in real databases; ``create_all`` is used only
by the drift test. Table names are singular snake_case; foreign keys are ``<table>_id``.
"""

# Annotations are evaluated as the classes are made (no ``from __future__ import
# annotations``): as strings, SQLAlchemy parses every ``Mapped[...]`` again, about 5 ms of
# each command's start.

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from dbproc.db.model_base import NAMING_CONVENTION, Base, JsonType, table_of
from dbproc.db.models_feed import Event, NotifyCursor, ReviewVerdict
from dbproc.db.models_runs import (
    ACTIVE_RUN_STATUSES,
    FAILED_RUN_STATUSES,
    DbprocessingImport,
    ForcedRebuild,
    PassRecord,
    PassState,
    Pending,
    Reject,
    Reproduction,
    Run,
    RunStatus,
)
from dbproc.version import Version

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "FAILED_RUN_STATUSES",
    "NAMING_CONVENTION",
    "Base",
    "Code",
    "CoverageDay",
    "CoverageMonth",
    "DbprocessingImport",
    "Event",
    "File",
    "FileLink",
    "ForcedRebuild",
    "JsonType",
    "Mission",
    "NotifyCursor",
    "PassRecord",
    "PassState",
    "Pending",
    "Process",
    "ProcessInput",
    "Product",
    "Reject",
    "Release",
    "ReleaseFile",
    "Reproduction",
    "ReviewVerdict",
    "Run",
    "RunStatus",
    "table_of",
]


class Mission(Base):
    """The one mission of a database: its name and absolute folders."""

    __tablename__ = "mission"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    root_dir: Mapped[str] = mapped_column(Text)
    incoming_dir: Mapped[str] = mapped_column(Text)
    errors_dir: Mapped[str] = mapped_column(Text)
    codes_dir: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Product(Base):
    """A kind of file: where it lives, how it is named and who recognises it."""

    __tablename__ = "product"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    level: Mapped[float] = mapped_column(Float)
    dir: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(Text)
    inspector: Mapped[str | None] = mapped_column(Text)
    inspector_args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    instrument: Mapped[str | None] = mapped_column(String(100))
    satellite: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: seconds one call of its inspector may take (None: ``[ingest] inspector_timeout``)
    inspector_timeout: Mapped[float | None] = mapped_column(Float)
    #: the longest data interval of any of its files, to bound window queries
    max_span_seconds: Mapped[float] = mapped_column(Float, default=86400.0)
    #: each new file waits for a person's verdict before consumers may use it (§13)
    review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: expected spacing of its files below a day ("1h"), for ``files --missing --by hour``
    cadence: Mapped[str | None] = mapped_column(String(20))


class Process(Base):
    """A rule: these input products make that output product (or nothing, for RUN)."""

    __tablename__ = "process"
    __table_args__ = (CheckConstraint("timebase IN ('DAILY', 'FILE', 'RUN')", name="timebase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    output_product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id"), unique=True)
    timebase: Mapped[str] = mapped_column(String(8))
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: a rebuild with the newest version's exact bytes registers no new version
    early_cutoff: Mapped[bool] = mapped_column(Boolean, default=False)


class ProcessInput(Base):
    """One input product of a process, with its window in days."""

    __tablename__ = "process_input"
    __table_args__ = (
        UniqueConstraint("process_id", "product_id"),
        CheckConstraint('"before" >= 0 AND "after" >= 0', name="window"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("process.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    before: Mapped[int] = mapped_column(Integer, default=0)
    after: Mapped[int] = mapped_column(Integer, default=0)
    optional: Mapped[bool] = mapped_column(Boolean, default=False)


class Code(Base):
    """One version of the program that implements a process."""

    __tablename__ = "code"
    __table_args__ = (
        UniqueConstraint("process_id", "interface", "quality", "revision"),
        CheckConstraint("interface >= 1 AND quality >= 0 AND revision >= 0", name="version"),
        CheckConstraint("output_interface >= 1", name="output_interface"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("process.id"))
    interface: Mapped[int] = mapped_column(Integer)
    quality: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    output_interface: Mapped[int] = mapped_column(Integer, default=1)
    path: Mapped[str] = mapped_column(Text)
    args: Mapped[list[Any]] = mapped_column(default=list)
    valid_from: Mapped[dt.date | None] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)
    timeout: Mapped[float | None] = mapped_column(Float)
    description: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    registered_at: Mapped[dt.datetime] = mapped_column(DateTime)

    @property
    def version(self) -> Version:
        """The code's version."""
        return Version(self.interface, self.quality, self.revision)


#: the WHERE of ``ix_file_review_pending``; a query must say it literally (SQLite uses a
#: partial index only for a term that matches its WHERE, never for a bound parameter)
REVIEW_PENDING = "review = 'pending'"


class File(Base):
    """One file on disk that belongs to a product."""

    __tablename__ = "file"
    __table_args__ = (
        UniqueConstraint(
            "product_id",
            "date",
            "slot",
            "interface",
            "quality",
            "revision",
            name="uq_file_identity",
        ),
        CheckConstraint('"start" < "stop"', name="interval"),
        CheckConstraint("interface >= 1 AND quality >= 0 AND revision >= 0", name="version"),
        Index("ix_file_product_id_start", "product_id", "start"),
        Index("ix_file_product_id_date", "product_id", "date"),
        Index(
            "uq_file_newest",
            "product_id",
            "date",
            "slot",
            unique=True,
            sqlite_where=text("is_newest"),  # and on PostgreSQL: _partial_on_postgresql
        ),
        # the files waiting for a verdict, counted by status without a scan of ``file``
        Index("ix_file_review_pending", "review", sqlite_where=text(REVIEW_PENDING)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    filename: Mapped[str] = mapped_column(String(255), unique=True)
    date: Mapped[dt.date] = mapped_column(Date)
    start: Mapped[dt.datetime] = mapped_column(DateTime)
    stop: Mapped[dt.datetime] = mapped_column(DateTime)
    interface: Mapped[int] = mapped_column(Integer)
    quality: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    #: the identity within (product, date) besides the version: free fields and time of day
    slot: Mapped[str] = mapped_column(String(255), default="")
    keywords: Mapped[dict[str, Any]] = mapped_column(default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JsonType, default=dict)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    #: where the file is, relative to the mission root (absolute when outside it)
    path: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[dt.datetime] = mapped_column(DateTime)
    code_id: Mapped[int | None] = mapped_column(ForeignKey("code.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id"), index=True)
    is_newest: Mapped[bool] = mapped_column(Boolean, default=True)
    on_disk: Mapped[bool] = mapped_column(Boolean, default=True)
    #: review state (§13): NULL (no review needed), pending, pass, semipass or fail; the
    #: latest of the file's append-only verdicts (table ``review_verdict``)
    review: Mapped[str | None] = mapped_column(String(16))
    #: when ``dbproc purge --apply`` deleted it from disk (record and lineage stay)
    purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    @property
    def version(self) -> Version:
        """The file's version."""
        return Version(self.interface, self.quality, self.revision)


@event.listens_for(File.__table__, "before_create")
def _partial_on_postgresql(table: Any, connection: Connection, **kw: Any) -> None:
    """The partial indexes of ``file`` are partial on PostgreSQL too, with the same WHERE,
    as the migrations make them. The keyword is set when the table is created there:
    given in the declaration, it would load SQLAlchemy's PostgreSQL dialect (about 30 ms)
    in every command on SQLite."""
    if connection.dialect.name == "postgresql":
        for index in table.indexes:
            where = index.dialect_options["sqlite"]["where"]
            if where is not None:
                index.dialect_kwargs["postgresql_where"] = where


class FileLink(Base):
    """Provenance: ``child`` was made from ``parent``."""

    __tablename__ = "file_link"
    __table_args__ = (CheckConstraint("child_id <> parent_id", name="not_self"),)

    child_id: Mapped[int] = mapped_column(ForeignKey("file.id"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("file.id"), primary_key=True, index=True)


class Release(Base):
    """A named, immutable set of files (``dbproc release create``)."""

    __tablename__ = "release"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_by: Mapped[str | None] = mapped_column(String(100))
    #: the products it was made of (empty: every product)
    products: Mapped[list[Any]] = mapped_column(default=list)


class ReleaseFile(Base):
    """One file of a release."""

    __tablename__ = "release_file"

    release_id: Mapped[int] = mapped_column(ForeignKey("release.id"), primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("file.id"), primary_key=True, index=True)


class CoverageDay(Base):
    """What a product has on one day, kept by ``register_file`` in the same transaction:
    the dashboard's coverage grid reads this, never a scan of ``file``."""

    __tablename__ = "coverage_day"

    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    #: file records of the day, every version
    files: Mapped[int] = mapped_column(Integer, default=0)
    #: identities (slots) of the day, i.e. its newest files
    slots: Mapped[int] = mapped_column(Integer, default=0)
    #: the highest version of the day, and a sortable integer of it
    version: Mapped[str] = mapped_column(String(40))
    version_key: Mapped[int] = mapped_column(BigInteger)


class CoverageMonth(Base):
    """The coverage summary by month (kept with :class:`CoverageDay`), so that totals and
    the coverage-over-time plot read hundreds of rows, not one per day."""

    __tablename__ = "coverage_month"

    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), primary_key=True)
    #: the first day of the month
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    days: Mapped[int] = mapped_column(Integer, default=0)
    files: Mapped[int] = mapped_column(Integer, default=0)
    slots: Mapped[int] = mapped_column(Integer, default=0)
