"""The planner: frozen facts in, decisions out. No session, no I/O.

It implements interface.md section 6: DAILY / FILE / RUN timebases, ``before``/``after``
windows over half-open data intervals, optional inputs, code validity dates, newest
versions chosen before windowing, out-of-date tests on the recorded provenance (code and
parents), and versions that only grow. Every decision carries a reason code and the
evidence behind it, which ``dbproc plan`` and ``dbproc explain`` show as they are. The
values it works on live in :mod:`dbproc.build.plan_types`, the out-of-date test of one
output in :mod:`dbproc.build.out_of_date` (both re-exported here).

This module chooses each decision's inputs (windows, FILE triggers, keywords) and hands
them to :func:`~dbproc.build.out_of_date.evaluate`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

# docs/python-api.md documents dbproc.build.planner as the pure planner's public module:
# the values of plan_types and the names of out_of_date are re-exported here for it
from dbproc.build.out_of_date import FAILED_STATUSES, evaluate, next_version
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
from dbproc.naming import make_slot

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
    return evaluate(snapshot, process, day, "", (), inputs, midnight(day))


def _decide_file(snapshot: Snapshot, process: ProcessSpec, day: dt.date) -> list[Decision]:
    if not process.required:
        return []
    trigger_spec = process.required[0]
    triggers = [f for f in snapshot.dated(trigger_spec.product, day, day)]
    taken: dict[str, str] = {}
    return [
        _decide_trigger(snapshot, process, day, trigger, taken)
        for trigger in sorted(triggers, key=lambda f: f.filename)
    ]


def _decide_trigger(
    snapshot: Snapshot,
    process: ProcessSpec,
    day: dt.date,
    trigger: FileRecord,
    taken: dict[str, str],
) -> Decision:
    """The decision for one trigger file of a FILE process; ``taken`` maps the slots
    decided so far to their trigger's filename (two triggers must not share one)."""
    keywords = dict(trigger.keywords)
    fmt = process.format
    out_fields = fmt.free_fields if fmt else ()
    lacking = [f for f in out_fields if f not in keywords]
    if lacking:
        return Decision(
            process.name,
            day,
            trigger.slot,
            status=Status.NAME_ERROR,
            evidence=(
                f"input {trigger.filename} has no keyword {', '.join(lacking)} for the output name",
            ),
            inputs=(trigger,),
        )
    out_keywords = tuple((f, keywords[f]) for f in out_fields)
    time_of_day = None
    if fmt is not None and fmt.time_fields:
        time_of_day = (trigger.start.hour, trigger.start.minute, trigger.start.second)
    slot = make_slot(dict(out_keywords), time_of_day)
    if slot in taken:
        return Decision(
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
    taken[slot] = trigger.filename
    chosen, missing = _other_inputs(snapshot, process, day, keywords)
    inputs = sort_inputs(process, [trigger, *chosen])
    if missing:
        existing = snapshot.outputs.get((process.output, day, slot)) if process.output else None
        return Decision(
            process.name,
            day,
            slot,
            status=Status.MISSING_INPUT,
            evidence=tuple(missing),
            output=existing,
            inputs=inputs,
        )
    return evaluate(snapshot, process, day, slot, out_keywords, inputs, trigger.start)


def _other_inputs(
    snapshot: Snapshot, process: ProcessSpec, day: dt.date, keywords: Mapping[str, str]
) -> tuple[list[FileRecord], list[str]]:
    """A FILE process's inputs besides the trigger, dated in their windows and agreeing
    with the trigger's keywords; and what is missing of the required ones."""
    chosen: list[FileRecord] = []
    missing: list[str] = []
    for spec in process.inputs:
        if spec is process.required[0]:
            continue
        first, last = day - spec.before * DAY, day + spec.after * DAY
        files = [
            f for f in snapshot.dated(spec.product, first, last) if _keywords_agree(f, keywords)
        ]
        if not files and not spec.optional:
            missing.append(f"required input {spec.product} has no file dated {first}..{last}")
        chosen.extend(files)
    return chosen, missing


def _keywords_agree(f: FileRecord, keywords: Mapping[str, str]) -> bool:
    return all(keywords.get(k, v) == v for k, v in f.keywords)
