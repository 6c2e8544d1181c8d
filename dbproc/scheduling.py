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

from dbproc.planner import BuildAction, ProcessSpec


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

    def ready(
        self, waiting: Iterable[BuildAction], active: Iterable[BuildAction]
    ) -> list[BuildAction]:
        """The waiting builds that no active or other waiting build blocks, in start order."""
        waiting = sorted(waiting, key=self.order)
        active = list(active)
        dates: dict[str, list[dt.date]] = defaultdict(list)
        for action in (*waiting, *active):
            dates[action.process].append(action.date)
        for values in dates.values():
            values.sort()
        running = {a.key for a in active}
        out = []
        for candidate in waiting:
            if candidate.key in running:
                continue
            blocked = False
            for up, days in self.upstream.get(candidate.process, ()):
                near = dates.get(up)
                if not near:
                    continue
                i = bisect.bisect_left(near, candidate.date - dt.timedelta(days=days))
                if i < len(near) and near[i] <= candidate.date + dt.timedelta(days=days):
                    blocked = True
                    break
            if not blocked:
                out.append(candidate)
        return out
