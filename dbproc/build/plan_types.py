"""The planner's inputs and outputs as frozen values: no session, no I/O.

Facts in (:class:`Snapshot` of :class:`FileRecord`, :class:`ProcessSpec`,
:class:`CodeSpec`, past :class:`RunRecord` s and :class:`ForcedRequest` s); decisions out
(:class:`Decision`, carrying a :class:`BuildAction` or a :class:`Status`).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from dbproc.naming import FilenameFormat
from dbproc.version import Version, VersionPart

DAY = dt.timedelta(days=1)
#: review states whose files consumers may use
PASSED_REVIEWS = ("pass", "semipass")


class Reason(StrEnum):
    """Why a build is planned."""

    NEW = "new"
    CODE_CHANGED = "code_changed"
    INPUT_NEWER = "input_newer"
    INPUT_ADDED = "input_added"
    INPUT_REMOVED = "input_removed"
    OUTPUT_MISSING = "output_missing"
    NO_PROVENANCE = "no_provenance"
    FORCED = "forced"


#: The order in which reasons name an action when several apply.
REASON_PRIORITY = tuple(Reason)


class Status(StrEnum):
    """Why nothing is planned for a (process, date)."""

    UP_TO_DATE = "up_to_date"
    NOT_EXPECTED = "not_expected"
    MISSING_INPUT = "missing_input"
    OUTSIDE_VALIDITY = "outside_validity"
    NO_CODE = "no_code"
    FAILED = "failed"
    NAME_ERROR = "name_error"
    COLLISION = "collision"


# -- the facts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRecord:
    """A registered file as the planner sees it."""

    id: int
    product: str
    filename: str
    date: dt.date
    start: dt.datetime
    stop: dt.datetime
    version: Version
    slot: str = ""
    keywords: tuple[tuple[str, str], ...] = ()
    path: str = ""
    code_id: int | None = None
    parents: frozenset[int] | None = None
    is_newest: bool = True
    on_disk: bool = True
    #: review state (§13): None (no review needed), pending, pass, semipass or fail
    review: str | None = None

    @property
    def usable(self) -> bool:
        """May consumers read this version (no review needed, or passed)?"""
        return self.review is None or self.review in PASSED_REVIEWS

    #: early cutoff: when a later build reproduced it byte for byte (``code_id`` and
    #: ``parents`` are then that build's)
    reproduced_at: dt.datetime | None = None

    @property
    def identity(self) -> tuple[str, dt.date, str]:
        """(product, date, slot): what stays the same across versions."""
        return (self.product, self.date, self.slot)

    def overlaps(self, start: dt.datetime, stop: dt.datetime) -> bool:
        """Does the half-open data interval meet ``[start, stop)``?"""
        return self.start < stop and self.stop > start


@dataclass(frozen=True)
class CodeSpec:
    """One version of a process's code."""

    id: int
    version: Version
    output_interface: int = 1
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    path: str = ""
    args: tuple[str, ...] = ()
    timeout: float | None = None

    def valid_for(self, day: dt.date) -> bool:
        """May this code make outputs dated ``day``?"""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )

    def describe(self) -> str:
        """``"1.0.0 (l1.py, 2010-01-01..+inf)"``."""
        return (
            f"{self.version} ({self.path}, {self.valid_from or '-inf'}.."
            f"{self.valid_until or '+inf'})"
        )


@dataclass(frozen=True)
class InputSpec:
    """One input product of a process, with its window in days."""

    product: str
    before: int = 0
    after: int = 0
    optional: bool = False


@dataclass(frozen=True)
class ProcessSpec:
    """A process with its active code."""

    name: str
    timebase: str
    inputs: tuple[InputSpec, ...]
    code: CodeSpec | None
    output: str | None = None
    output_format: str | None = None
    id: int = 0
    #: every active code with its date range (``[[processes.NAME.code]]``); empty: ``code``
    codes: tuple[CodeSpec, ...] = ()

    @property
    def all_codes(self) -> tuple[CodeSpec, ...]:
        """The active codes, by valid_from (several only with disjoint date ranges)."""
        if self.codes:
            return self.codes
        return (self.code,) if self.code is not None else ()

    def code_for(self, day: dt.date) -> CodeSpec | None:
        """The one code whose range contains ``day`` (None when no code covers it)."""
        return next((c for c in self.all_codes if c.valid_for(day)), None)

    def code_choice(self, day: dt.date) -> str:
        """Why :meth:`code_for` picks what it picks, for ``explain``."""
        chosen = self.code_for(day)
        ranges = ", ".join(c.describe() for c in self.all_codes)
        if chosen is None and len(self.all_codes) == 1:
            only = self.all_codes[0]
            return (
                f"code {only.version} is valid {only.valid_from or '-inf'}.."
                f"{only.valid_until or '+inf'}, not for {day}"
            )
        if chosen is None:
            return f"no code of {self.name} is valid for {day} (codes: {ranges or 'none'})"
        if len(self.all_codes) == 1:
            return f"code {chosen.describe()} is the only code of {self.name}"
        return f"code {chosen.describe()} is the one of {ranges} whose range contains {day}"

    @cached_property
    def required(self) -> tuple[InputSpec, ...]:
        """Inputs that must be present."""
        return tuple(i for i in self.inputs if not i.optional)

    @cached_property
    def format(self) -> FilenameFormat | None:
        """The output product's filename format."""
        return FilenameFormat.parse(self.output_format) if self.output_format else None


@dataclass(frozen=True)
class RunRecord:
    """A past execution, as far as planning cares."""

    id: int
    process: str
    date: dt.date
    slot: str
    build_key: str
    status: str
    code_id: int
    inputs: tuple[int, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ForcedRequest:
    """``reprocess`` asked to rebuild this output, raising ``bump``."""

    process: str
    date: dt.date
    slot: str
    bump: VersionPart = VersionPart.REVISION
    #: a person asked to retry this failed run (the dashboard): build even though the
    #: same code and inputs failed in it
    retry_of: int | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything the planner may look at for some keys."""

    processes: Mapping[str, ProcessSpec]
    files: Sequence[FileRecord] = ()
    #: records of parents (and past RUN inputs) by id, superseded ones included
    parents: Mapping[int, FileRecord] = field(default_factory=dict)
    codes: Mapping[int, CodeSpec] = field(default_factory=dict)
    #: the latest run of each (process, date, slot)
    last_runs: Mapping[tuple[str, dt.date, str], RunRecord] = field(default_factory=dict)
    #: RUN processes: every successful run of each (process, date, slot), oldest first
    succeeded_runs: Mapping[tuple[str, dt.date, str], Sequence[RunRecord]] = field(
        default_factory=dict
    )
    forced: Mapping[tuple[str, dt.date, str], ForcedRequest] = field(default_factory=dict)
    retry_failed: bool = False

    @cached_property
    def newest_by_product(self) -> Mapping[str, tuple[FileRecord, ...]]:
        """Newest usable, on-disk files of each product (inputs are chosen among these):
        of a reviewed product, the newest version that passed review (§13)."""
        out: dict[str, list[FileRecord]] = defaultdict(list)
        held: dict[tuple[str, dt.date, str], FileRecord] = {}
        for f in self.files:
            if not f.on_disk:
                continue
            if f.is_newest and f.review is None:
                out[f.product].append(f)
            elif f.usable:
                best = held.get(f.identity)
                if best is None or f.version > best.version:
                    held[f.identity] = f
        for f in held.values():
            newest = self.outputs.get(f.identity)
            if (
                newest is None
                or newest.id == f.id
                or not (newest.review is None and newest.on_disk)
            ):
                out[f.product].append(f)
        return {k: tuple(sorted(v, key=lambda f: (f.start, f.filename))) for k, v in out.items()}

    @cached_property
    def _index(
        self,
    ) -> Mapping[str, tuple[list[dt.datetime], dt.timedelta, Mapping[dt.date, list[FileRecord]]]]:
        out = {}
        for product, files in self.newest_by_product.items():
            span = max((f.stop - f.start for f in files), default=dt.timedelta(0))
            dates: dict[dt.date, list[FileRecord]] = defaultdict(list)
            for f in files:
                dates[f.date].append(f)
            out[product] = ([f.start for f in files], span, dates)
        return out

    def overlapping(self, product: str, start: dt.datetime, stop: dt.datetime) -> list[FileRecord]:
        """Newest files of ``product`` whose interval meets ``[start, stop)`` (bisected)."""
        files = self.newest_by_product.get(product)
        if not files:
            return []
        starts, span, _dates = self._index[product]
        lo = bisect.bisect_right(starts, start - span)
        hi = bisect.bisect_left(starts, stop)
        return [f for f in files[lo:hi] if f.overlaps(start, stop)]

    def dated(self, product: str, first: dt.date, last: dt.date) -> list[FileRecord]:
        """Newest files of ``product`` dated ``first``..``last``."""
        if product not in self._index:
            return []
        dates = self._index[product][2]
        out: list[FileRecord] = []
        day = first
        while day <= last:
            out.extend(dates.get(day, ()))
            day += DAY
        return out

    @cached_property
    def outputs(self) -> Mapping[tuple[str, dt.date, str], FileRecord]:
        """Newest file of each identity (on disk or not): existing outputs."""
        return {f.identity: f for f in self.files if f.is_newest}

    def record(self, file_id: int) -> FileRecord | None:
        """A file record by id, from the files or the parents."""
        found = self.parents.get(file_id)
        if found is not None:
            return found
        return self._by_id.get(file_id)

    @cached_property
    def _by_id(self) -> Mapping[int, FileRecord]:
        return {f.id: f for f in self.files}


# -- the decisions -----------------------------------------------------------------------


@dataclass(frozen=True)
class BuildAction:
    """One planned execution of a code."""

    process: str
    date: dt.date
    slot: str
    inputs: tuple[FileRecord, ...]
    code: CodeSpec
    output_filename: str | None
    output_version: Version | None
    reason: Reason
    reasons: tuple[Reason, ...] = ()
    evidence: tuple[str, ...] = ()
    keywords: tuple[tuple[str, str], ...] = ()
    forced: bool = False
    bump: VersionPart | None = None
    previous: FileRecord | None = None

    @property
    def build_key(self) -> str:
        """Identity of this build: code version and exact input files."""
        return build_key(self.code.id, (f.id for f in self.inputs))

    @property
    def key(self) -> tuple[str, dt.date, str]:
        """(process, date, slot)."""
        return (self.process, self.date, self.slot)


@dataclass(frozen=True)
class Decision:
    """The outcome for one (process, date, slot): an action, or a status saying why not."""

    process: str
    date: dt.date
    slot: str = ""
    action: BuildAction | None = None
    status: Status | None = None
    evidence: tuple[str, ...] = ()
    output: FileRecord | None = None
    inputs: tuple[FileRecord, ...] = ()
    last_run: RunRecord | None = None

    @property
    def reason(self) -> str:
        """The action's reason code, or the status."""
        if self.action is not None:
            return self.action.reason.value
        assert self.status is not None
        return self.status.value


def build_key(code_id: int, input_ids: Iterable[int]) -> str:
    """Hash of a code version and a set of input files."""
    text = f"{code_id}|{','.join(str(i) for i in sorted(set(input_ids)))}"
    return hashlib.sha256(text.encode()).hexdigest()


def sort_inputs(process: ProcessSpec, files: Iterable[FileRecord]) -> tuple[FileRecord, ...]:
    """Inputs as codes receive them: by position of their product, date, filename."""
    position = {i.product: n for n, i in enumerate(process.inputs)}
    return tuple(
        sorted(set(files), key=lambda f: (position.get(f.product, 99), f.date, f.filename))
    )
