"""Whether one output is out of date, and the build that brings it up to date. Pure.

Given a (process, date, slot) whose inputs the planner has chosen, :func:`evaluate` picks
the code valid for the date, compares the recorded provenance (code and parents, or a RUN
process's past runs) with the build possible now, applies the failed-run rule, and names
the next version of the output (:func:`next_version`, versions only grow). No session,
no I/O: the facts come from a :class:`~dbproc.build.plan_types.Snapshot`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from dbproc.build.plan_types import (
    REASON_PRIORITY,
    BuildAction,
    CodeSpec,
    Decision,
    FileRecord,
    ForcedRequest,
    ProcessSpec,
    Reason,
    RunRecord,
    Snapshot,
    Status,
    build_key,
)
from dbproc.naming import FormatError
from dbproc.version import Version, VersionPart

FAILED_STATUSES = frozenset({"failed", "timeout", "worker_lost"})


@dataclass
class _Changes:
    reasons: list[Reason] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    quality: bool = False

    def add(self, reason: Reason, text: str, *, quality: bool) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        self.evidence.append(text)
        self.quality = self.quality or quality


def _compare(
    snapshot: Snapshot,
    code: CodeSpec,
    inputs: Sequence[FileRecord],
    previous_code_id: int | None,
    previous_inputs: Iterable[int],
) -> _Changes:
    """What differs between a past build (code, inputs) and the build possible now."""
    changes = _Changes()
    if previous_code_id is None:
        changes.add(
            Reason.NO_PROVENANCE,
            "the existing output has no recorded code (it was ingested, not built here)",
            quality=True,
        )
        return changes
    if previous_code_id != code.id:
        old = snapshot.codes.get(previous_code_id)
        old_version = old.version if old else None
        quality = old_version is None or (old_version.interface, old_version.quality) != (
            code.version.interface,
            code.version.quality,
        )
        changes.add(
            Reason.CODE_CHANGED,
            f"made by code {old_version or '?'}; the code is now {code.version}",
            quality=quality,
        )
    _compare_inputs(changes, _previous_records(snapshot, previous_inputs), inputs)
    return changes


def _previous_records(
    snapshot: Snapshot, previous_inputs: Iterable[int]
) -> dict[tuple[str, dt.date, str], FileRecord]:
    """A past build's inputs by identity (a stand-in for one the snapshot lacks)."""
    previous = {}
    for pid in previous_inputs:
        record = snapshot.record(pid)
        if record is not None:
            previous[record.identity] = record
        else:
            previous[("?", dt.date.min, str(pid))] = FileRecord(
                pid,
                "?",
                f"file #{pid}",
                dt.date.min,
                dt.datetime.min,
                dt.datetime.min,
                Version(1, 0, 0),
            )
    return previous


def _compare_inputs(
    changes: _Changes,
    previous: dict[tuple[str, dt.date, str], FileRecord],
    inputs: Sequence[FileRecord],
) -> None:
    """Inputs added, superseded or removed since the past build."""
    current = {f.identity: f for f in inputs}
    for identity, record in current.items():
        old_record = previous.get(identity)
        if old_record is None:
            changes.add(
                Reason.INPUT_ADDED,
                f"input {record.filename} ({record.version}) is new in the window",
                quality=True,
            )
        elif old_record.id != record.id:
            quality = (old_record.version.interface, old_record.version.quality) != (
                record.version.interface,
                record.version.quality,
            )
            changes.add(
                Reason.INPUT_NEWER,
                f"input {old_record.filename} ({old_record.version}) was superseded "
                f"by {record.filename} ({record.version})",
                quality=quality,
            )
    for identity, old_record in previous.items():
        if identity not in current:
            changes.add(
                Reason.INPUT_REMOVED,
                f"input {old_record.filename} ({old_record.version}) is no longer among the inputs",
                quality=True,
            )


def evaluate(
    snapshot: Snapshot,
    process: ProcessSpec,
    day: dt.date,
    slot: str,
    keywords: tuple[tuple[str, str], ...],
    inputs: tuple[FileRecord, ...],
    name_start: dt.datetime,
) -> Decision:
    """The decision for one (process, date, slot) whose inputs are chosen."""
    code = process.code_for(day) or process.code
    key = (process.name, day, slot)
    existing = snapshot.outputs.get((process.output, day, slot)) if process.output else None
    last_run = snapshot.last_runs.get(key)
    base = Decision(
        process=process.name, date=day, slot=slot, output=existing, inputs=inputs, last_run=last_run
    )
    if code is None:
        return replace(
            base,
            status=Status.NO_CODE,
            evidence=("the process has no active code",),
        )
    if not code.valid_for(day):
        return replace(base, status=Status.OUTSIDE_VALIDITY, evidence=(process.code_choice(day),))
    forced = snapshot.forced.get(key)
    current_key = build_key(code.id, (f.id for f in inputs))
    changes = _changes(snapshot, process, base, code, current_key)
    if forced is not None:
        changes.add(
            Reason.FORCED,
            f"rebuild requested by reprocess (bump {forced.bump})",
            quality=forced.bump is VersionPart.QUALITY,
        )
    if not changes.reasons:
        return replace(
            base, status=Status.UP_TO_DATE, evidence=(_up_to_date(process, code, existing),)
        )
    failed = _failed_again(snapshot, last_run, current_key, forced)
    if failed is not None:
        return replace(base, status=Status.FAILED, evidence=(failed,))
    return _build(base, process, code, keywords, name_start, forced, changes)


def _changes(
    snapshot: Snapshot, process: ProcessSpec, base: Decision, code: CodeSpec, current_key: str
) -> _Changes:
    """What makes the output (or a RUN process's last run) out of date, forcing aside."""
    day, inputs, existing = base.date, base.inputs, base.output
    changes = _Changes()
    if process.output is None:
        ran = snapshot.succeeded_runs.get((process.name, day, base.slot), ())
        if not ran:
            changes.add(Reason.NEW, f"{process.name} has not run for {day}", quality=False)
        elif all(r.build_key != current_key for r in ran):
            last_ok = ran[-1]
            changes = _compare(snapshot, code, inputs, last_ok.code_id, last_ok.inputs)
    elif existing is None:
        changes.add(Reason.NEW, f"no {process.output} file for {day} yet", quality=False)
    else:
        changes = _compare(snapshot, code, inputs, existing.code_id, existing.parents or ())
        if not existing.on_disk:
            changes.add(
                Reason.OUTPUT_MISSING,
                f"the newest output {existing.filename} is missing from disk",
                quality=False,
            )
    return changes


def _up_to_date(process: ProcessSpec, code: CodeSpec, existing: FileRecord | None) -> str:
    """The evidence of an up-to-date output (or RUN process)."""
    what = existing.filename if existing is not None else f"the last run of {process.name}"
    made = f"was made by code {code.version}"
    if existing is not None and existing.reproduced_at is not None:
        made = (
            f"is up to date: reproduced identically by code {code.version} on "
            f"{existing.reproduced_at:%Y-%m-%dT%H:%M:%SZ}"
        )
    return f"{what} {made} from exactly today's inputs"


def _failed_again(
    snapshot: Snapshot,
    last_run: RunRecord | None,
    current_key: str,
    forced: ForcedRequest | None,
) -> str | None:
    """The evidence when the last run failed with the same code and inputs (not retried)."""
    if (
        last_run is not None
        and last_run.status in FAILED_STATUSES
        and last_run.build_key == current_key
        and not snapshot.retry_failed
        and (forced is None or forced.retry_of != last_run.id)  # a retry asked for it
    ):
        return (
            f"run {last_run.id} with the same code and inputs "
            f"{last_run.status}"
            + (f": {last_run.error}" if last_run.error else "")
            + "; not retried until the code or inputs change "
            "(or --retry-failed)"
        )
    return None


def _build(
    base: Decision,
    process: ProcessSpec,
    code: CodeSpec,
    keywords: tuple[tuple[str, str], ...],
    name_start: dt.datetime,
    forced: ForcedRequest | None,
    changes: _Changes,
) -> Decision:
    """The decision carrying the build: its reasons, output version and filename."""
    existing = base.output
    reasons = sorted(changes.reasons, key=REASON_PRIORITY.index)
    version = None
    filename = None
    if process.output is not None:
        version = next_version(
            existing.version if existing else None,
            code,
            changes.quality,
            forced.bump if forced else None,
        )
        assert process.format is not None
        try:
            filename = process.format.render(
                date=base.date, start=name_start, version=version, keywords=dict(keywords)
            )
        except FormatError as exc:
            return replace(
                base,
                status=Status.NAME_ERROR,
                evidence=(str(exc),),
            )
    action = BuildAction(
        process=process.name,
        date=base.date,
        slot=base.slot,
        inputs=base.inputs,
        code=code,
        output_filename=filename,
        output_version=version,
        reason=reasons[0],
        reasons=tuple(reasons),
        evidence=tuple(changes.evidence),
        keywords=keywords,
        forced=forced is not None,
        bump=forced.bump if forced else None,
        previous=existing,
    )
    return replace(base, action=action, evidence=tuple(changes.evidence))


def next_version(
    newest: Version | None, code: CodeSpec, quality: bool, forced: VersionPart | None = None
) -> Version:
    """The version of the next output: from the newest existing one, only ever growing."""
    first = Version(code.output_interface, 0, 0)
    if newest is None:
        return first
    part = VersionPart.QUALITY if quality else VersionPart.REVISION
    if forced is VersionPart.QUALITY or forced is VersionPart.INTERFACE:
        part = forced if forced is VersionPart.INTERFACE else VersionPart.QUALITY
    candidate = newest.bump(part)
    if code.output_interface > newest.interface:
        candidate = first
    return candidate
