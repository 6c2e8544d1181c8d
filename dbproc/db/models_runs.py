"""The work tables: passes and the runs they start, the rebuild queue (``pending``,
``forced_rebuild``), refused incoming files, early-cutoff reproductions, and the record of
each dbprocessing import. Loaded (and re-exported) by :mod:`dbproc.db.models`.
"""

# Annotations are evaluated as the classes are made (no ``from __future__ import
# annotations``): as strings, SQLAlchemy parses every ``Mapped[...]`` again, about 5 ms of
# each command's start.

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from dbproc.db.model_base import Base, JsonType


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


class Reproduction(Base):
    """Early cutoff: run ``run_id`` (code ``code_id``, the run's inputs) rebuilt ``file_id``
    with exactly its bytes, so no new version was registered."""

    __tablename__ = "reproduction"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("file.id"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id"), unique=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("code.id"))
    reproduced_at: Mapped[dt.datetime] = mapped_column(DateTime)


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
