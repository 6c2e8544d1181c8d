"""The planner: frozen facts in, decisions out. No session, no I/O.

It implements interface.md section 6: DAILY / FILE / RUN timebases, ``before``/``after``
windows over half-open data intervals, optional inputs, code validity dates, newest
versions chosen before windowing, out-of-date tests on the recorded provenance (code and
parents), and versions that only grow. Every decision carries a reason code and the
evidence behind it, which ``dbproc plan`` and ``dbproc explain`` show as they are. The
values it works on live in :mod:`dbproc.build.plan_types` (re-exported here).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from dbproc.build.plan_types import (
    DAY,
    REASON_PRIORITY,
    BuildAction,
    CodeSpec,
    Decision,
    FileRecord,
    ForcedRequest,
    InputSpec,
    ProcessSpec,
    Reason,
    RunRecord,
    Snapshot,
    Status,
    build_key,
    sort_inputs,
)
from dbproc.clock import midnight
from dbproc.naming import FormatError, make_slot
from dbproc.version import Version, VersionPart

__all__ = [
    "DAY",
    "FAILED_STATUSES",
    "REASON_PRIORITY",
    "BuildAction",
    "CodeSpec",
    "Decision",
    "FileRecord",
    "ForcedRequest",
    "InputSpec",
    "PlanKey",
    "ProcessSpec",
    "Reason",
    "RunRecord",
    "Snapshot",
    "Status",
    "actions",
    "build_key",
    "candidate_dates",
    "decide",
    "next_version",
    "plan",
    "sort_inputs",
]

# -- planning ----------------------------------------------------------------------------

PlanKey = tuple[str, dt.date | None]


def plan(snapshot: Snapshot, keys: Iterable[PlanKey]) -> list[Decision]:
    """Decide every (process, date) in ``keys``; a date of None means every date."""
    seen: set[tuple[str, dt.date]] = set()
    decisions: list[Decision] = []
    for process_name, day in keys:
        process = snapshot.processes.get(process_name)
        if process is None:
            continue
        days = [day] if day is not None else candidate_dates(snapshot, process)
        for d in days:
            if (process_name, d) in seen:
                continue
            seen.add((process_name, d))
            decisions.extend(decide(snapshot, process, d))
    decisions.sort(key=lambda x: (x.process, x.date, x.slot))
    return decisions


def actions(decisions: Iterable[Decision]) -> list[BuildAction]:
    """The actions among decisions."""
    return [d.action for d in decisions if d.action is not None]


def candidate_dates(snapshot: Snapshot, process: ProcessSpec) -> list[dt.date]:
    """Every date a process could have an output for, given the snapshot's files."""
    days: set[dt.date] = set()
    if process.timebase == "FILE":
        if process.required:
            days.update(
                f.date for f in snapshot.newest_by_product.get(process.required[0].product, ())
            )
    else:
        for spec in process.required:
            for f in snapshot.newest_by_product.get(spec.product, ()):
                day = f.start.date()
                last = (f.stop - dt.timedelta(microseconds=1)).date()
                while day <= last:
                    days.add(day)
                    day += DAY
    return sorted(days)


def decide(snapshot: Snapshot, process: ProcessSpec, day: dt.date) -> list[Decision]:
    """Decisions for one process and date (several for FILE: one per trigger file)."""
    if process.timebase == "FILE":
        return _decide_file(snapshot, process, day)
    return [_decide_daily(snapshot, process, day)]


def _window(day: dt.date, spec: InputSpec) -> tuple[dt.datetime, dt.datetime]:
    return midnight(day) - spec.before * DAY, midnight(day) + (spec.after + 1) * DAY


def _decide_daily(snapshot: Snapshot, process: ProcessSpec, day: dt.date) -> Decision:
    chosen: list[FileRecord] = []
    missing: list[str] = []
    day_start, day_stop = midnight(day), midnight(day) + DAY
    expected = False
    for spec in process.inputs:
        start, stop = _window(day, spec)
        files = [f for f in snapshot.overlapping(spec.product, start, stop)]
        if not spec.optional and any(f.overlaps(day_start, day_stop) for f in files):
            expected = True
        if not files and not spec.optional:
            missing.append(
                f"required input {spec.product} has no file in the window "
                f"{start.date()}..{(stop - DAY).date()}"
            )
        chosen.extend(files)
    inputs = sort_inputs(process, chosen)
    existing = snapshot.outputs.get((process.output, day, "")) if process.output else None
    if not expected:
        return Decision(
            process.name,
            day,
            "",
            status=Status.NOT_EXPECTED,
            evidence=(f"no required input has data on {day}",),
            output=existing,
            inputs=inputs,
        )
    if missing:
        return Decision(
            process.name,
            day,
            "",
            status=Status.MISSING_INPUT,
            evidence=tuple(missing),
            output=existing,
            inputs=inputs,
        )
    return _evaluate(snapshot, process, day, "", (), inputs, midnight(day))


def _decide_file(snapshot: Snapshot, process: ProcessSpec, day: dt.date) -> list[Decision]:
    if not process.required:
        return []
    trigger_spec = process.required[0]
    triggers = [f for f in snapshot.dated(trigger_spec.product, day, day)]
    decisions: list[Decision] = []
    taken: dict[str, str] = {}
    fmt = process.format
    for trigger in sorted(triggers, key=lambda f: f.filename):
        keywords = dict(trigger.keywords)
        out_fields = fmt.free_fields if fmt else ()
        lacking = [f for f in out_fields if f not in keywords]
        if lacking:
            decisions.append(
                Decision(
                    process.name,
                    day,
                    trigger.slot,
                    status=Status.NAME_ERROR,
                    evidence=(
                        f"input {trigger.filename} has no keyword "
                        f"{', '.join(lacking)} for the output name",
                    ),
                    inputs=(trigger,),
                )
            )
            continue
        out_keywords = tuple((f, keywords[f]) for f in out_fields)
        time_of_day = None
        if fmt is not None and fmt.time_fields:
            time_of_day = (trigger.start.hour, trigger.start.minute, trigger.start.second)
        slot = make_slot(dict(out_keywords), time_of_day)
        if slot in taken:
            decisions.append(
                Decision(
                    process.name,
                    day,
                    slot,
                    status=Status.COLLISION,
                    evidence=(
                        f"inputs {taken[slot]} and {trigger.filename} would make the same "
                        "output; add their distinguishing fields to the output format",
                    ),
                    inputs=(trigger,),
                )
            )
            continue
        taken[slot] = trigger.filename
        chosen = [trigger]
        missing: list[str] = []
        for spec in process.inputs:
            if spec is trigger_spec:
                continue
            first, last = day - spec.before * DAY, day + spec.after * DAY
            files = [
                f for f in snapshot.dated(spec.product, first, last) if _keywords_agree(f, keywords)
            ]
            if not files and not spec.optional:
                missing.append(f"required input {spec.product} has no file dated {first}..{last}")
            chosen.extend(files)
        inputs = sort_inputs(process, chosen)
        if missing:
            existing = snapshot.outputs.get((process.output, day, slot)) if process.output else None
            decisions.append(
                Decision(
                    process.name,
                    day,
                    slot,
                    status=Status.MISSING_INPUT,
                    evidence=tuple(missing),
                    output=existing,
                    inputs=inputs,
                )
            )
            continue
        decisions.append(
            _evaluate(snapshot, process, day, slot, out_keywords, inputs, trigger.start)
        )
    return decisions


def _keywords_agree(f: FileRecord, keywords: Mapping[str, str]) -> bool:
    return all(keywords.get(k, v) == v for k, v in f.keywords)


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
    return changes


def _evaluate(
    snapshot: Snapshot,
    process: ProcessSpec,
    day: dt.date,
    slot: str,
    keywords: tuple[tuple[str, str], ...],
    inputs: tuple[FileRecord, ...],
    name_start: dt.datetime,
) -> Decision:
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
    changes = _Changes()
    if process.output is None:
        ran = snapshot.succeeded_runs.get(key, ())
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
    if forced is not None:
        changes.add(
            Reason.FORCED,
            f"rebuild requested by reprocess (bump {forced.bump})",
            quality=forced.bump is VersionPart.QUALITY,
        )
    if not changes.reasons:
        what = existing.filename if existing is not None else f"the last run of {process.name}"
        made = f"was made by code {code.version}"
        if existing is not None and existing.reproduced_at is not None:
            made = (
                f"is up to date: reproduced identically by code {code.version} on "
                f"{existing.reproduced_at:%Y-%m-%dT%H:%M:%SZ}"
            )
        return replace(
            base,
            status=Status.UP_TO_DATE,
            evidence=(f"{what} {made} from exactly today's inputs",),
        )
    if (
        last_run is not None
        and last_run.status in FAILED_STATUSES
        and last_run.build_key == current_key
        and not snapshot.retry_failed
        and (forced is None or forced.retry_of != last_run.id)  # a retry asked for it
    ):
        return replace(
            base,
            status=Status.FAILED,
            evidence=(
                f"run {last_run.id} with the same code and inputs "
                f"{last_run.status}"
                + (f": {last_run.error}" if last_run.error else "")
                + "; not retried until the code or inputs change "
                "(or --retry-failed)",
            ),
        )
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
                date=day, start=name_start, version=version, keywords=dict(keywords)
            )
        except FormatError as exc:
            return replace(
                base,
                status=Status.NAME_ERROR,
                evidence=(str(exc),),
            )
    action = BuildAction(
        process=process.name,
        date=day,
        slot=slot,
        inputs=inputs,
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


FAILED_STATUSES = frozenset({"failed", "timeout", "worker_lost"})


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
