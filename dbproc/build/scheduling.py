"""Which planned builds may start now: a build waits only for builds it depends on.

A build of process P for date D waits while a build of an upstream process U (one whose
output P reads, directly or through other processes) is queued or running for a date
close enough to D to change P's inputs: within the sum of the windows along the way,
plus a day of slack per step for data intervals that cross midnight.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import cached_property

from dbproc.build.planner import BuildAction, ProcessSpec


class ProcessGraph:
    """The processes as a DAG with, for every (upstream, downstream) pair, a reach in days."""

    def __init__(self, processes: Mapping[str, ProcessSpec]) -> None:
        self.processes = dict(processes)
        producer = {p.output: p.name for p in self.processes.values() if p.output}
        self.edges: dict[str, dict[str, int]] = defaultdict(dict)  # upstream -> down -> days
        for proc in self.processes.values():
            for spec in proc.inputs:
                up = producer.get(spec.product)
                if up is not None and up != proc.name:
                    reach = max(spec.before, spec.after) + 1
                    self.edges[up][proc.name] = max(self.edges[up].get(proc.name, 0), reach)

    @cached_property
    def reach(self) -> dict[tuple[str, str], int]:
        """(upstream, downstream) -> the most days apart a change can travel."""
        out: dict[tuple[str, str], int] = {}
        for start in self.processes:
            stack = [(start, 0)]
            best: dict[str, int] = {}
            while stack:
                node, dist = stack.pop()
                for nxt, days in self.edges.get(node, {}).items():
                    total = dist + days
                    if best.get(nxt, -1) < total:
                        best[nxt] = total
                        stack.append((nxt, total))
            for node, days in best.items():
                out[(start, node)] = days
        return out

    @cached_property
    def depth(self) -> dict[str, int]:
        """0 for processes reading only ingested products, then one more per step."""
        depth: dict[str, int] = {}

        def visit(name: str, seen: frozenset[str]) -> int:
            if name in depth:
                return depth[name]
            ups = [u for u, downs in self.edges.items() if name in downs and u not in seen]
            value = 0 if not ups else 1 + max(visit(u, seen | {name}) for u in ups)
            depth[name] = value
            return value

        for name in self.processes:
            visit(name, frozenset())
        return depth

    def order(self, action: BuildAction) -> tuple[int, dt.date, str, str]:
        """Start upstream processes and early dates first."""
        return (self.depth.get(action.process, 0), action.date, action.process, action.slot)

    @cached_property
    def upstream(self) -> dict[str, list[tuple[str, int]]]:
        """downstream -> [(upstream, reach in days)]."""
        out: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for (up, down), days in self.reach.items():
            out[down].append((up, days))
        return out


BuildKey = tuple[str, dt.date, str]
_Order = tuple[int, dt.date, str, str]


class BuildQueue:
    """The planned builds waiting to start, kept in start order.

    Adding or removing a build costs a binary search; :meth:`ready` walks from the front
    and stops at ``limit``, so choosing what to start grows with the builds it looks at,
    not with everything queued (a pass over years of dates queues thousands).
    """

    def __init__(self, graph: ProcessGraph) -> None:
        self.graph = graph
        self._actions: dict[BuildKey, BuildAction] = {}
        self._order: list[tuple[_Order, BuildKey]] = []
        #: process -> the sorted dates of its waiting builds, for the upstream check
        self._dates: dict[str, list[dt.date]] = defaultdict(list)

    def __len__(self) -> int:
        return len(self._actions)

    def __contains__(self, key: object) -> bool:
        return key in self._actions

    def values(self) -> list[BuildAction]:
        """The waiting builds in start order."""
        return [self._actions[key] for _, key in self._order]

    def put(self, action: BuildAction) -> None:
        """Queue ``action``, replacing a waiting build with the same key."""
        self.pop(action.key)
        self._actions[action.key] = action
        bisect.insort(self._order, (self.graph.order(action), action.key))
        bisect.insort(self._dates[action.process], action.date)

    def pop(self, key: BuildKey) -> BuildAction | None:
        """Take the waiting build with ``key`` out of the queue (None if there is none)."""
        action = self._actions.pop(key, None)
        if action is None:
            return None
        entry = (self.graph.order(action), key)
        del self._order[bisect.bisect_left(self._order, entry)]
        dates = self._dates[action.process]
        del dates[bisect.bisect_left(dates, action.date)]
        return action

    def ready(self, active: Iterable[BuildAction], limit: int) -> list[BuildAction]:
        """Up to ``limit`` waiting builds that no running or other waiting build blocks,
        in start order. A build of the same key as a running one waits for it."""
        if limit <= 0:
            return []
        running: dict[str, list[dt.date]] = defaultdict(list)
        running_keys = set()
        for action in active:
            running[action.process].append(action.date)
            running_keys.add(action.key)
        out: list[BuildAction] = []
        for _, key in self._order:
            candidate = self._actions[key]
            if key in running_keys or self._blocked(candidate, running):
                continue
            out.append(candidate)
            if len(out) >= limit:
                break
        return out

    def _blocked(self, candidate: BuildAction, running: Mapping[str, list[dt.date]]) -> bool:
        for up, days in self.graph.upstream.get(candidate.process, ()):
            lo = candidate.date - dt.timedelta(days=days)
            hi = candidate.date + dt.timedelta(days=days)
            near = self._dates.get(up)
            if near:
                i = bisect.bisect_left(near, lo)
                if i < len(near) and near[i] <= hi:
                    return True
            if any(lo <= day <= hi for day in running.get(up, ())):
                return True
        return False
