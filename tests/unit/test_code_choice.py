"""The planner picks a process's code by output date (pure: codes are frozen facts)."""

from __future__ import annotations

import datetime as dt

from dbproc.build.plan_types import CodeSpec, InputSpec, ProcessSpec, Status
from dbproc.build.planner import decide
from dbproc.version import Version
from tests.unit.test_planner import day_file, snapshot

OLD = CodeSpec(1, Version(1, 0, 0), valid_until=dt.date(2016, 1, 1), path="old.py")
NEW = CodeSpec(
    2, Version(2, 0, 0), output_interface=2, valid_from=dt.date(2016, 1, 3), path="new.py"
)
PROCESS = ProcessSpec(
    "P", "DAILY", (InputSpec("L0"),), OLD, "L1", "l1_{Y}{m}{d}_v{VERSION}.cdf", codes=(OLD, NEW)
)


def test_code_for_each_date() -> None:
    assert PROCESS.code_for(dt.date(2015, 6, 1)) is OLD
    assert PROCESS.code_for(dt.date(2016, 1, 2)) is None
    assert PROCESS.code_for(dt.date(2016, 1, 3)) is NEW
    assert "new.py" in PROCESS.code_choice(dt.date(2020, 1, 1))


def test_planner_builds_each_date_with_its_code_and_none_in_the_gap() -> None:
    files = [day_file("L0", dt.date(2016, 1, n)) for n in (1, 2, 3)]
    facts = snapshot(PROCESS, files)
    by_day = {d.date: d for n in (1, 2, 3) for d in decide(facts, PROCESS, dt.date(2016, 1, n))}
    first, gap, third = (by_day[dt.date(2016, 1, n)] for n in (1, 2, 3))
    assert first.action is not None and first.action.code is OLD
    assert first.action.output_filename == "l1_20160101_v1.0.0.cdf"
    assert gap.action is None and gap.status is Status.OUTSIDE_VALIDITY
    assert "old.py" in gap.evidence[0] and "new.py" in gap.evidence[0]
    assert third.action is not None and third.action.code is NEW
    assert third.action.output_filename == "l1_20160103_v2.0.0.cdf"
