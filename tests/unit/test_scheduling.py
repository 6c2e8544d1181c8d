"""Which queued builds may start: hand-built processes and builds, no database."""

from __future__ import annotations

import datetime as dt
import random

from dbproc.build.plan_types import BuildAction, CodeSpec, InputSpec, ProcessSpec, Reason
from dbproc.build.scheduling import BuildQueue, ProcessGraph
from dbproc.version import Version

CODE = CodeSpec(1, Version(1, 0, 0))
D0 = dt.date(2016, 1, 1)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def graph(window: int = 0) -> ProcessGraph:
    """raw -> L1 (DAILY) -> L2 (FILE, reading L1 window days either side) -> log (RUN)."""
    return ProcessGraph(
        {
            "L1": ProcessSpec("L1", "DAILY", (InputSpec("raw", 1, 1),), CODE, "l1"),
            "L2": ProcessSpec("L2", "FILE", (InputSpec("l1", window, window),), CODE, "l2"),
            "log": ProcessSpec("log", "RUN", (InputSpec("l2"),), CODE),
        }
    )


def build(process: str, n: int, slot: str = "") -> BuildAction:
    return BuildAction(process, day(n), slot, (), CODE, None, None, Reason.NEW)


def keys(actions: list[BuildAction]) -> list[tuple[str, int]]:
    return [(a.process, (a.date - D0).days) for a in actions]


def test_upstream_first_then_early_dates() -> None:
    queue = BuildQueue(graph())
    for action in [build("L2", 9), build("L1", 3), build("L1", 1), build("log", 0)]:
        queue.put(action)
    assert keys(queue.values()) == [("L1", 1), ("L1", 3), ("L2", 9), ("log", 0)]
    assert keys(queue.ready([], 10)) == [("L1", 1), ("L1", 3), ("L2", 9)]
    assert keys(queue.ready([], 2)) == [("L1", 1), ("L1", 3)]
    assert queue.ready([], 0) == []


def test_a_build_waits_for_upstream_builds_within_reach() -> None:
    queue = BuildQueue(graph(window=2))  # L1 -> L2 reach: 3 days
    queue.put(build("L2", 10))
    queue.put(build("L1", 6))  # waiting 4 days away: out of reach
    assert keys(queue.ready([], 5)) == [("L1", 6), ("L2", 10)]
    queue.put(build("L1", 13))  # waiting 3 days away: within reach
    assert keys(queue.ready([], 5)) == [("L1", 6), ("L1", 13)]
    queue.pop(("L1", day(13), ""))
    # a running upstream build blocks too, and a running key blocks its twin
    assert keys(queue.ready([build("L1", 8)], 5)) == [("L1", 6)]
    assert keys(queue.ready([build("L2", 10)], 5)) == [("L1", 6)]
    # through two steps: log waits for L1 within 3 + 1 days
    queue.put(build("log", 14))
    assert ("log", 14) in keys(queue.ready([build("L1", 9)], 5))
    assert ("log", 14) not in keys(queue.ready([build("L1", 10)], 5))


def test_put_replaces_and_pop_removes_exactly_one() -> None:
    queue = BuildQueue(graph())
    first, again = build("L1", 2), build("L1", 2)
    queue.put(first)
    queue.put(again)
    assert len(queue) == 1 and queue.values()[0] is again
    assert queue.pop(("L1", day(2), "")) is again
    assert queue.pop(("L1", day(2), "")) is None
    assert len(queue) == 0 and queue.ready([], 3) == []


def test_ready_matches_a_brute_force_check() -> None:
    rng = random.Random(7)
    g = graph(window=1)
    queue = BuildQueue(g)
    waiting: dict[tuple[str, dt.date, str], BuildAction] = {}
    for _ in range(400):
        action = build(rng.choice(["L1", "L2", "log"]), rng.randrange(60), rng.choice(["", "a"]))
        if rng.random() < 0.3 and waiting:
            key = rng.choice(sorted(waiting))
            assert queue.pop(key) is waiting.pop(key)
        else:
            queue.put(action)
            waiting[action.key] = action
        active = [build(rng.choice(["L1", "L2"]), rng.randrange(60)) for _ in range(2)]
        expected = []
        for candidate in sorted(waiting.values(), key=g.order):
            if candidate.key in {a.key for a in active}:
                continue
            near = [*waiting.values(), *active]
            if any(
                other.process == up and abs((other.date - candidate.date).days) <= reach
                for up, reach in g.upstream.get(candidate.process, ())
                for other in near
            ):
                continue
            expected.append(candidate)
        assert queue.ready(active, 1000) == expected
        assert queue.ready(active, 3) == expected[:3]
        assert len(queue) == len(waiting)
