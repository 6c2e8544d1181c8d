"""What-if: every build a pass would make, downstream included, before anything runs.

The planner only sees what exists, so ``plan`` shows the first wave. :func:`cascade`
assumes each planned build succeeds, adds the file it would record (with the planned
name, version and parents) to the planner's view, and plans what that file would
change, until nothing more follows. It reads the database and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dbproc.build.planner import (
    BuildAction,
    Decision,
    FileRecord,
    PlanKey,
    ProcessSpec,
    Snapshot,
    plan,
)
from dbproc.build.snapshot import SnapshotLoader
from dbproc.clock import midnight
from dbproc.db.dependents import Consumer, affected_dates

MAX_ROUNDS = 100


@dataclass(frozen=True)
class _Reader:
    process: str
    consumer: Consumer


def _readers(processes: Mapping[str, ProcessSpec]) -> dict[str, list[_Reader]]:
    out: dict[str, list[_Reader]] = defaultdict(list)
    for proc in processes.values():
        first = proc.required[0].product if proc.required else None
        for spec in proc.inputs:
            trigger = proc.timebase == "FILE" and spec.product == first
            out[spec.product].append(
                _Reader(
                    proc.name, Consumer(proc.id, proc.timebase, spec.before, spec.after, trigger)
                )
            )
    return out


def _overlay(
    snapshot: Snapshot, simulated: Mapping[tuple[str, dt.date, str], FileRecord]
) -> Snapshot:
    files = [
        replace(f, is_newest=False) if f.is_newest and f.identity in simulated else f
        for f in snapshot.files
    ]
    files.extend(simulated.values())
    parents = dict(snapshot.parents)
    parents.update({f.id: f for f in simulated.values()})
    return replace(snapshot, files=tuple(files), parents=parents)


def cascade(
    loader: SnapshotLoader,
    first: Iterable[Decision],
    levels: dict[tuple[str, dt.date, str], int] | None = None,
) -> list[BuildAction]:
    """Every build, in the order of the waves they would run in (see module docstring).
    ``levels``, when given, receives each build's wave: 1 = can start now."""
    processes = loader.catalogue.processes
    readers = _readers(processes)
    final: dict[tuple[str, dt.date, str], BuildAction] = {}
    simulated: dict[tuple[str, dt.date, str], FileRecord] = {}
    sim_key: dict[tuple[str, dt.date, str], tuple[str, dt.date, str]] = {}
    frontier = [d.action for d in first if d.action is not None]
    next_id = -1
    for wave in range(MAX_ROUNDS):
        if not frontier:
            break
        keys: set[PlanKey] = set()
        for action in frontier:
            final[action.key] = action
            if levels is not None:
                levels[action.key] = wave + 1
            output = processes[action.process].output
            if output is None or action.output_version is None:
                continue
            start = midnight(action.date)
            if action.inputs and processes[action.process].timebase == "FILE":
                start = action.inputs[0].start
            record = FileRecord(
                id=next_id,
                product=output,
                filename=action.output_filename or "",
                date=action.date,
                start=start,
                stop=start + dt.timedelta(days=1),
                version=action.output_version,
                slot=action.slot,
                keywords=action.keywords,
                code_id=action.code.id,
                parents=frozenset(f.id for f in action.inputs),
            )
            next_id -= 1
            simulated[record.identity] = record
            sim_key[action.key] = record.identity
            for reader in readers.get(output, ()):
                for day in affected_dates(
                    reader.consumer, record.date, [(record.start, record.stop)]
                ):
                    keys.add((reader.process, day))
        if not keys:
            break
        for key in list(sim_key):
            if (key[0], key[1]) in keys:  # planned again: forget the earlier prediction
                simulated.pop(sim_key.pop(key), None)
                final.pop(key, None)
        snapshot = _overlay(
            loader.load(sorted(keys, key=lambda k: (k[0], k[1] or dt.date.min))), simulated
        )
        frontier = [d.action for d in plan(snapshot, keys) if d.action is not None]
    return sorted(final.values(), key=lambda a: (a.process, a.date, a.slot))


def summarize(actions: Iterable[BuildAction]) -> dict[str, dict[str, Any]]:
    """Builds per process: how many, over which dates, for which reasons."""
    groups: dict[str, list[BuildAction]] = defaultdict(list)
    for action in actions:
        groups[action.process].append(action)
    return {
        name: {
            "builds": len(items),
            "first_date": min(a.date for a in items).isoformat(),
            "last_date": max(a.date for a in items).isoformat(),
            "reasons": dict(Counter(a.reason.value for a in items)),
        }
        for name, items in sorted(groups.items())
    }
