"""Typed results of the Python API, and their one JSON rendering.

Every :class:`~dbproc.api.Archive` method that answers a question returns a dataclass
deriving from :class:`Record` (or a list of them). Its attributes are typed (dates are
:class:`datetime.date`, times naive-UTC :class:`datetime.datetime`, paths
:class:`pathlib.Path`, nested answers records of their own), and
:meth:`Record.as_dict` gives the object that the
CLI prints under ``--json`` and the dashboard serves under ``/api/``: the field names are
the JSON keys, in order, and :func:`jsonable` turns the values into JSON (times as UTC
with a ``Z``, contract section 11). So one function renders every shape, for both.

A field whose JSON key is not a Python name says so in its metadata
(``field(metadata={"key": "pass"})``), a time shown to the second only too
(``metadata={"seconds": True}``); a field left at :data:`OMIT` is left out of the JSON
object (a key the contract has only in some answers).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, Final

from dbproc.clock import iso_utc


class Omitted:
    """The value of a field that is absent from the JSON object."""

    _instance: Omitted | None = None

    def __new__(cls) -> Omitted:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OMIT"

    def __bool__(self) -> bool:
        return False


#: a field at this value is not in the JSON object at all
OMIT: Final = Omitted()


class Record:
    """Base of the typed results: a dataclass with :meth:`as_dict` and :meth:`to_json`."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON object (what ``--json`` prints), values made JSON-ready."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is OMIT:
                continue
            if f.metadata.get("seconds") and isinstance(value, dt.datetime):
                out[f.metadata.get("key", f.name)] = f"{value:%Y-%m-%dT%H:%M:%SZ}"
                continue
            out[f.metadata.get("key", f.name)] = jsonable(value)
        return out

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`as_dict` as JSON text."""
        return json.dumps(jsonable(self.as_dict()), indent=indent, ensure_ascii=False)

    def as_json(self) -> dict[str, Any]:
        """The older name of :meth:`as_dict` (pass, check and apply reports had it)."""
        return self.as_dict()


def fields_of(record: Record) -> dict[str, Any]:
    """A record's field values by name (to build a record that extends its type)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}  # type: ignore[arg-type]


def jsonable(value: Any) -> Any:
    """``value`` with every record, time, date, version, path and enum made JSON-ready."""
    if isinstance(value, Record):
        return value.as_dict()
    if isinstance(value, enum.Enum):  # before str: RunStatus is a StrEnum
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    as_dict = getattr(value, "as_dict", None)  # records of their own (events, reviews)
    if callable(as_dict):
        return jsonable(as_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    return str(value)  # Version, Decimal, ...


# -- the concepts every listing shares ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MadeBy(Record):
    """The process and code version that made a file."""

    process: str
    code_version: str


@dataclasses.dataclass(frozen=True)
class FileRecord(Record):
    """A registered file (``dbproc files``; contract section 7, with more keys)."""

    filename: str
    product: str
    date: dt.date
    version: str
    path: PurePath
    newest: bool
    start: dt.datetime | None
    stop: dt.datetime | None
    size: int | None
    sha256: str | None
    keywords: Mapping[str, Any]
    metadata: Mapping[str, Any]
    on_disk: bool
    #: ``present``, ``missing`` (registered, not on disk) or ``purged``
    state: str
    registered_at: dt.datetime | None
    made_by: MadeBy | None
    run_id: int | None
    review: str | None


@dataclasses.dataclass(frozen=True)
class RejectRecord(Record):
    """A refused incoming file (``dbproc rejects``)."""

    id: int
    filename: str
    reason: str
    message: str | None
    detail: str | None
    size: int | None
    rejected_at: dt.datetime | None
    stored: PurePath
    present: bool
    retried_at: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class RetryResult(Record):
    """Rejects moved back to incoming (``dbproc rejects retry``), and those left, why."""

    moved: list[str]
    skipped: list[str]


@dataclasses.dataclass(frozen=True)
class RunRecord(Record):
    """One execution of a code (``dbproc runs``)."""

    id: int
    process: str
    date: dt.date
    slot: str
    code_version: str | None
    status: str
    reason: str | None
    output: str | None
    version: str | None
    inputs: list[int] | None
    argv: list[str] | None
    exit_code: int | None
    signal: int | None
    error: str | None
    host: str | None
    queued_at: dt.datetime | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    duration: float | None
    peak_memory_kb: int | None
    pass_id: int | None
    log: str | None
    stdout_tail: str | None
    stderr_tail: str | None


@dataclasses.dataclass(frozen=True)
class RunDetail(RunRecord):
    """A run with its whole log and the files it made (``dbproc runs show``)."""

    log_text: str | None = None
    outputs: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class InspectResult(Record):
    """What every product's inspector said about one file (``dbproc inspect``)."""

    file: str
    claimed_by: str | None
    #: product name -> what its inspector returned (or the error it raised)
    answers: Mapping[str, Any]
    #: products not asked: the name does not match their format
    format_mismatch: list[str]
    reason: str | None
    message: str | None
    detail: str | None
