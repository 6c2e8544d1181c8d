"""The schema, as SQLAlchemy 2 typed declarative models.

Alembic (``migrations/``) owns the schema in real databases; ``create_all`` is used only
by the drift test. Table names are singular snake_case; foreign keys are ``<table>_id``.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dbproc.version import Version

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base with the constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JsonType, list[Any]: JsonType}


class RunStatus(StrEnum):
    """The life of one execution of a code."""

    QUEUED = "queued"
    RUNNING = "running"
    PROMOTING = "promoting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    ABANDONED = "abandoned"
    WORKER_LOST = "worker_lost"
    #: stopped by a signal to the pass (SIGINT/SIGTERM/SIGHUP); built again next pass
    CANCELLED = "cancelled"
    #: early cutoff: the rebuild reproduced the newest version byte for byte (no new file)
    UNCHANGED = "unchanged"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PROMOTING)
FAILED_RUN_STATUSES = (RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.WORKER_LOST)


class PassState(StrEnum):
    """Whether a pass is running or how it ended."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CRASHED = "crashed"
    INTERRUPTED = "interrupted"


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


class Run(Base):
    """One execution of a code: what ran, on what, how it ended."""

    __tablename__ = "run"
    __table_args__ = (
        Index("ix_run_process_id_date", "process_id", "date"),
        Index("ix_run_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pass_id: Mapped[int | None] = mapped_column(ForeignKey("pass_record.id"), index=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("process.id"))
    code_id: Mapped[int] = mapped_column(ForeignKey("code.id"), index=True)
    date: Mapped[dt.date] = mapped_column(Date)
    slot: Mapped[str] = mapped_column(String(255), default="")
    output_filename: Mapped[str | None] = mapped_column(String(255))
    output_version: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(40))
    bump: Mapped[str | None] = mapped_column(String(16))
    build_key: Mapped[str] = mapped_column(String(64), index=True)
    inputs: Mapped[list[Any]] = mapped_column(default=list)
    argv: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    signal: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    queued_at: Mapped[dt.datetime] = mapped_column(DateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    duration: Mapped[float | None] = mapped_column(Float)
    peak_memory_kb: Mapped[int | None] = mapped_column(BigInteger)
    stdout_tail: Mapped[str | None] = mapped_column(Text)
    stderr_tail: Mapped[str | None] = mapped_column(Text)
    run_root: Mapped[str | None] = mapped_column(Text)
    log_path: Mapped[str | None] = mapped_column(Text)
    promoting: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


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
            sqlite_where=text("is_newest"),
            postgresql_where=text("is_newest"),
        ),
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


class FileLink(Base):
    """Provenance: ``child`` was made from ``parent``."""

    __tablename__ = "file_link"
    __table_args__ = (CheckConstraint("child_id <> parent_id", name="not_self"),)

    child_id: Mapped[int] = mapped_column(ForeignKey("file.id"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("file.id"), primary_key=True, index=True)


class PassRecord(Base):
    """One pass of the controller; a row in state ``running`` is the processing flag."""

    __tablename__ = "pass_record"
    __table_args__ = (Index("ix_pass_record_state", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    command: Mapped[str] = mapped_column(String(20))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    pid_start: Mapped[str | None] = mapped_column(String(64))
    user: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    #: what a running pass does now ("inspecting X for 12 s"), refreshed with its heartbeat
    activity: Mapped[str | None] = mapped_column(Text)


class Reject(Base):
    """An incoming file that was refused, and why."""

    __tablename__ = "reject"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(Text)
    stored_name: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger)
    rejected_at: Mapped[dt.datetime] = mapped_column(DateTime)
    pass_id: Mapped[int | None] = mapped_column(ForeignKey("pass_record.id"))
    retried_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: the name as it was in incoming (bytes), when ``filename`` had to escape it;
    #: ``rejects retry`` puts the file back under this name
    incoming_name: Mapped[bytes | None] = mapped_column(LargeBinary)


class Pending(Base):
    """A (process, date) to reconsider because something it depends on changed.

    ``date`` NULL means every date of the process (a new code version, a new process).
    Rows are deleted only in the transaction that records their outcome.
    """

    __tablename__ = "pending"
    __table_args__ = (Index("ix_pending_process_id_date", "process_id", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("process.id"))
    date: Mapped[dt.date | None] = mapped_column(Date)
    cause: Mapped[str | None] = mapped_column(Text)


class ForcedRebuild(Base):
    """A rebuild asked for by ``reprocess``; kept until the rebuild is recorded."""

    __tablename__ = "forced_rebuild"
    __table_args__ = (UniqueConstraint("process_id", "date", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("process.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    slot: Mapped[str] = mapped_column(String(255), default="")
    bump: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime)
    note: Mapped[str | None] = mapped_column(Text)
    #: a retry of this failed run was asked for (the planner builds it despite the failure)
    retry_of_run_id: Mapped[int | None] = mapped_column(Integer)


class ReviewVerdict(Base):
    """One verdict on a file of a ``review = true`` product; rows are never updated."""

    __tablename__ = "review_verdict"
    __table_args__ = (CheckConstraint("verdict IN ('pass', 'semipass', 'fail')", name="verdict"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("file.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(16))
    by: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    comment: Mapped[str | None] = mapped_column(Text)


class Event(Base):
    """One change of state (§14), written in the transaction of the change.

    ``seq`` strictly increases in commit order: SQLite has one writer and never reuses a
    rowid (AUTOINCREMENT); PostgreSQL writers serialise on an advisory lock taken just
    before their first event (see :mod:`dbproc.feed.events`).
    """

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_time", "time"), {"sqlite_autoincrement": True})

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    time: Mapped[dt.datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    filename: Mapped[str | None] = mapped_column(String(255), index=True)
    product: Mapped[str | None] = mapped_column(String(100))
    date: Mapped[dt.date | None] = mapped_column(Date)
    version: Mapped[str | None] = mapped_column(String(40))
    run_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


class NotifyCursor(Base):
    """Where one notifier has got to in the event feed, and its retry state."""

    __tablename__ = "notify_cursor"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Reproduction(Base):
    """Early cutoff: run ``run_id`` (code ``code_id``, the run's inputs) rebuilt ``file_id``
    with exactly its bytes, so no new version was registered."""

    __tablename__ = "reproduction"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("file.id"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id"), unique=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("code.id"))
    reproduced_at: Mapped[dt.datetime] = mapped_column(DateTime)


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


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, for statements on hot paths: a Core
    ``insert``/``update``/``delete`` skips the ORM's bulk-statement machinery (and its
    evaluation of the criteria against the session) and costs a fraction of the CPU."""
    return cast(Table, model.__table__)


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


class DbprocessingImport(Base):
    """One ``dbproc import-dbprocessing`` of this database: what it read, how far it got."""

    __tablename__ = "dbprocessing_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: the old process queue was translated into pending rows (done once)
    queue_done: Mapped[bool] = mapped_column(Boolean, default=False)
    report: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


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
