"""The planner on hand-built facts: every rule of interface.md section 6."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable

import pytest

from dbproc.build.planner import (
    BuildAction,
    CodeSpec,
    FileRecord,
    ForcedRequest,
    InputSpec,
    ProcessSpec,
    Reason,
    RunRecord,
    Snapshot,
    Status,
    actions,
    build_key,
    next_version,
    plan,
)
from dbproc.version import Version, VersionPart

D = dt.date
_ids = itertools.count(1)
CODE = CodeSpec(id=1, version=Version(1, 0, 0))
L1_FORMAT = "testDB_{Y}{m}{d}_v{VERSION}.cat"


def day_file(
    product: str,
    day: dt.date,
    *,
    version: str = "1.0.0",
    days: int = 1,
    slot: str = "",
    keywords: Iterable[tuple[str, str]] = (),
    name: str | None = None,
    code_id: int | None = None,
    parents: Iterable[int] | None = None,
    newest: bool = True,
    on_disk: bool = True,
    start: dt.datetime | None = None,
) -> FileRecord:
    start = start or dt.datetime(day.year, day.month, day.day)
    fid = next(_ids)
    return FileRecord(
        id=fid,
        product=product,
        filename=name or f"{product}_{day:%Y%m%d}_{slot}_v{version}",
        date=day,
        start=start,
        stop=start + dt.timedelta(days=days),
        version=Version.parse(version),
        slot=slot,
        keywords=tuple(keywords),
        code_id=code_id,
        parents=frozenset(parents) if parents is not None else None,
        is_newest=newest,
        on_disk=on_disk,
    )


def daily(
    name: str = "L0_to_L1",
    *,
    inputs: tuple[InputSpec, ...] | None = None,
    code: CodeSpec | None = CODE,
    output: str | None = "L1",
    timebase: str = "DAILY",
    fmt: str | None = L1_FORMAT,
) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        timebase=timebase,
        inputs=inputs or (InputSpec("L0", before=2, after=2),),
        code=code,
        output=output,
        output_format=fmt if output else None,
    )


def snapshot(
    process: ProcessSpec | Iterable[ProcessSpec], files: Iterable[FileRecord], **kwargs: object
) -> Snapshot:
    processes = [process] if isinstance(process, ProcessSpec) else list(process)
    files = list(files)
    codes = {p.code.id: p.code for p in processes if p.code}
    codes.update(kwargs.pop("codes", {}))  # type: ignore[arg-type]
    return Snapshot(
        processes={p.name: p for p in processes},
        files=files,
        parents={f.id: f for f in files},
        codes=codes,
        **kwargs,
    )  # type: ignore[arg-type]


def built(action: BuildAction, product: str = "L1", **overrides: object) -> FileRecord:
    """The file a successful run of ``action`` records."""
    assert action.output_version is not None
    fields: dict[str, object] = dict(
        version=str(action.output_version),
        slot=action.slot,
        keywords=action.keywords,
        name=action.output_filename,
        code_id=action.code.id,
        parents=[f.id for f in action.inputs],
    )
    fields.update(overrides)
    return day_file(product, action.date, **fields)  # type: ignore[arg-type]


def by_date(acts: Iterable[BuildAction]) -> dict[dt.date, BuildAction]:
    return {a.date: a for a in acts}


# -- the worked example of section 6 ------------------------------------------------------


def test_worked_example() -> None:
    process = daily()
    l0 = [day_file("L0", D(2016, 1, d)) for d in range(1, 5)]
    first = by_date(actions(plan(snapshot(process, l0), [("L0_to_L1", None)])))
    assert sorted(first) == [D(2016, 1, d) for d in range(1, 5)]
    assert [f.date for f in first[D(2016, 1, 4)].inputs] == [D(2016, 1, d) for d in (2, 3, 4)]
    assert [f.date for f in first[D(2016, 1, 1)].inputs] == [D(2016, 1, d) for d in (1, 2, 3)]
    assert all(
        a.reason is Reason.NEW and a.output_version == Version(1, 0, 0) for a in first.values()
    )
    assert first[D(2016, 1, 4)].output_filename == "testDB_20160104_v1.0.0.cat"

    l1 = [built(a) for a in first.values()]
    l0_5 = day_file("L0", D(2016, 1, 5))
    snap = snapshot(process, [*l0, *l1, l0_5])
    affected = [("L0_to_L1", D(2016, 1, d)) for d in range(3, 8)]  # what L0 of 01-05 queues
    decisions = {d.date: d for d in plan(snap, affected)}
    second = by_date(actions(decisions.values()))
    assert sorted(second) == [D(2016, 1, 3), D(2016, 1, 4), D(2016, 1, 5)]
    assert second[D(2016, 1, 5)].reason is Reason.NEW
    assert second[D(2016, 1, 5)].output_version == Version(1, 0, 0)
    for d in (3, 4):
        assert second[D(2016, 1, d)].reason is Reason.INPUT_ADDED
        assert second[D(2016, 1, d)].output_version == Version(1, 1, 0)
    assert decisions[D(2016, 1, 6)].status is Status.NOT_EXPECTED
    # 01-02's window [12-31, 01-05) does not reach the new file: nothing for it
    assert not actions(plan(snap, [("L0_to_L1", D(2016, 1, 2))]))


def test_planning_twice_plans_nothing_new() -> None:
    process = daily()
    l0 = [day_file("L0", D(2016, 1, d)) for d in range(1, 11)]
    first = actions(plan(snapshot(process, l0), [("L0_to_L1", None)]))
    again = plan(snapshot(process, [*l0, *(built(a) for a in first)]), [("L0_to_L1", None)])
    assert actions(again) == []
    assert {d.status for d in again} == {Status.UP_TO_DATE}


def test_half_open_window_edges() -> None:
    """A file ending exactly at the window start is outside; one starting at its end too."""
    process = daily(inputs=(InputSpec("L0", before=1, after=1),))
    inside = day_file("L0", D(2016, 1, 9))
    before_edge = day_file("L0", D(2016, 1, 8))  # stops at 01-09 00:00 = window start
    after_edge = day_file("L0", D(2016, 1, 12))  # starts at window end 01-12
    target = day_file("L0", D(2016, 1, 10))
    acts = actions(
        plan(
            snapshot(process, [inside, before_edge, after_edge, target]),
            [("L0_to_L1", D(2016, 1, 10))],
        )
    )
    assert [f.date for f in acts[0].inputs] == [D(2016, 1, 9), D(2016, 1, 10)]


def test_multi_day_file_expects_every_day_it_covers() -> None:
    process = daily(inputs=(InputSpec("L0"),))
    long_file = day_file("L0", D(2016, 1, 1), days=3)
    decisions = plan(snapshot(process, [long_file]), [("L0_to_L1", None)])
    assert [d.date for d in actions(decisions)] == [D(2016, 1, d) for d in (1, 2, 3)]


def test_partial_day_file_does_not_spill_into_next_day() -> None:
    process = daily(inputs=(InputSpec("L0"),))
    start = dt.datetime(2016, 1, 1, 6)
    f = FileRecord(1000, "L0", "a", D(2016, 1, 1), start, dt.datetime(2016, 1, 2), Version(1, 0, 0))
    assert [d.date for d in actions(plan(snapshot(process, [f]), [("L0_to_L1", None)]))] == [
        D(2016, 1, 1)
    ]


def test_neighbour_data_alone_expects_nothing() -> None:
    process = daily()
    decisions = plan(
        snapshot(process, [day_file("L0", D(2016, 1, 1))]), [("L0_to_L1", D(2016, 1, 2))]
    )
    assert decisions[0].status is Status.NOT_EXPECTED


# -- optional and required inputs ---------------------------------------------------------


def two_inputs() -> ProcessSpec:
    return daily(inputs=(InputSpec("L0"), InputSpec("HK", optional=True)))


def test_optional_input_may_be_absent() -> None:
    acts = actions(
        plan(snapshot(two_inputs(), [day_file("L0", D(2016, 1, 1))]), [("L0_to_L1", None)])
    )
    assert len(acts) == 1 and [f.product for f in acts[0].inputs] == ["L0"]


def test_optional_input_alone_expects_nothing() -> None:
    decisions = plan(
        snapshot(two_inputs(), [day_file("HK", D(2016, 1, 1))]), [("L0_to_L1", D(2016, 1, 1))]
    )
    assert decisions[0].status is Status.NOT_EXPECTED


def test_optional_input_arriving_later_adds_input_and_raises_quality() -> None:
    process = two_inputs()
    l0 = day_file("L0", D(2016, 1, 1))
    (first,) = actions(plan(snapshot(process, [l0]), [("L0_to_L1", None)]))
    hk = day_file("HK", D(2016, 1, 1))
    (second,) = actions(plan(snapshot(process, [l0, built(first), hk]), [("L0_to_L1", None)]))
    assert second.reason is Reason.INPUT_ADDED and second.output_version == Version(1, 1, 0)
    assert [f.product for f in second.inputs] == ["L0", "HK"]  # by position of the product


def test_missing_required_input_means_no_output() -> None:
    process = daily(inputs=(InputSpec("L0"), InputSpec("ORBIT", before=1)))
    decisions = plan(
        snapshot(process, [day_file("L0", D(2016, 1, 5))]), [("L0_to_L1", D(2016, 1, 5))]
    )
    assert decisions[0].status is Status.MISSING_INPUT
    assert "ORBIT" in decisions[0].evidence[0]


def test_inputs_sorted_by_product_position_then_date_then_name() -> None:
    process = daily(inputs=(InputSpec("B", before=1), InputSpec("A", before=1)))
    files = [
        day_file("A", D(2016, 1, 2), name="a2"),
        day_file("B", D(2016, 1, 2), name="b2"),
        day_file("A", D(2016, 1, 1), name="a1"),
        day_file("B", D(2016, 1, 1), name="b1"),
    ]
    (act,) = actions(plan(snapshot(process, files), [("L0_to_L1", D(2016, 1, 2))]))
    assert [f.filename for f in act.inputs] == ["b1", "b2", "a1", "a2"]


# -- versions of inputs -------------------------------------------------------------------


def test_newest_chosen_before_windowing() -> None:
    """A superseded version overlapping the window does not stand in for the newest."""
    process = daily(inputs=(InputSpec("L0"),))
    old = day_file("L0", D(2016, 1, 1), version="1.0.0", days=2, newest=False)
    new = day_file("L0", D(2016, 1, 1), version="1.1.0", days=1)
    decisions = {
        d.date: d
        for d in plan(
            snapshot(process, [old, new]),
            [("L0_to_L1", D(2016, 1, 1)), ("L0_to_L1", D(2016, 1, 2))],
        )
    }
    assert [f.version for f in decisions[D(2016, 1, 1)].action.inputs] == [Version(1, 1, 0)]  # type: ignore[union-attr]
    assert decisions[D(2016, 1, 2)].status is Status.NOT_EXPECTED


@pytest.mark.parametrize(
    ("new_input", "reason", "version"),
    [
        ("1.0.1", Reason.INPUT_NEWER, Version(1, 0, 1)),  # input revision: output revision
        ("1.1.0", Reason.INPUT_NEWER, Version(1, 1, 0)),  # input quality: output quality
        ("2.0.0", Reason.INPUT_NEWER, Version(1, 1, 0)),  # input interface: output quality
    ],
)
def test_newer_input_version(new_input: str, reason: Reason, version: Version) -> None:
    process = daily(inputs=(InputSpec("L0"),))
    old = day_file("L0", D(2016, 1, 1))
    (first,) = actions(plan(snapshot(process, [old]), [("L0_to_L1", None)]))
    superseded = FileRecord(**{**old.__dict__, "is_newest": False})
    newer = day_file("L0", D(2016, 1, 1), version=new_input)
    (act,) = actions(
        plan(snapshot(process, [superseded, newer, built(first)]), [("L0_to_L1", None)])
    )
    assert act.reason is reason and act.output_version == version
    assert "superseded" in act.evidence[0]


def test_removed_input_raises_quality() -> None:
    process = daily()
    l0 = [day_file("L0", D(2016, 1, d)) for d in (1, 2)]
    first = by_date(actions(plan(snapshot(process, l0), [("L0_to_L1", None)])))
    gone = FileRecord(**{**l0[1].__dict__, "on_disk": False})
    decisions = plan(
        snapshot(process, [l0[0], gone, *(built(a) for a in first.values())]),
        [("L0_to_L1", D(2016, 1, 1))],
    )
    assert decisions[0].action is not None
    assert decisions[0].action.reason is Reason.INPUT_REMOVED
    assert decisions[0].action.output_version == Version(1, 1, 0)


def test_versions_grow_from_the_newest_when_an_older_version_exists() -> None:
    """dbprocessing walked up from X.0.0 and could emit 1.0.1 below an existing 1.1.0."""
    process = daily(inputs=(InputSpec("L0"),))
    l0_old = day_file("L0", D(2016, 1, 1), newest=False)
    l0_new = day_file("L0", D(2016, 1, 1), version="1.0.1")
    l1_old = day_file(
        "L1", D(2016, 1, 1), version="1.0.0", code_id=1, parents=[l0_old.id], newest=False
    )
    l1_newest = day_file("L1", D(2016, 1, 1), version="1.1.0", code_id=1, parents=[l0_old.id])
    (act,) = actions(
        plan(snapshot(process, [l0_old, l0_new, l1_old, l1_newest]), [("L0_to_L1", None)])
    )
    assert act.output_version == Version(1, 1, 1)


# -- codes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new_code", "version"),
    [
        ("1.0.1", Version(1, 0, 1)),
        ("1.1.0", Version(1, 1, 0)),
        ("2.0.0", Version(1, 1, 0)),
    ],
)
def test_code_change_rebuilds(new_code: str, version: Version) -> None:
    old_code = CodeSpec(1, Version(1, 0, 0))
    l0 = day_file("L0", D(2016, 1, 1))
    (first,) = actions(plan(snapshot(daily(code=old_code), [l0]), [("L0_to_L1", None)]))
    process = daily(code=CodeSpec(2, Version.parse(new_code)))
    (act,) = actions(
        plan(snapshot(process, [l0, built(first)], codes={1: old_code}), [("L0_to_L1", None)])
    )
    assert act.reason is Reason.CODE_CHANGED and act.output_version == version
    assert "made by code 1.0.0; the code is now" in act.evidence[0]


def test_new_output_interface_starts_a_new_interface() -> None:
    old_code = CodeSpec(1, Version(1, 0, 0))
    l0 = day_file("L0", D(2016, 1, 1))
    (first,) = actions(plan(snapshot(daily(code=old_code), [l0]), [("L0_to_L1", None)]))
    process = daily(code=CodeSpec(2, Version(2, 0, 0), output_interface=2))
    (act,) = actions(
        plan(snapshot(process, [l0, built(first)], codes={1: old_code}), [("L0_to_L1", None)])
    )
    assert act.output_version == Version(2, 0, 0)


def test_first_version_uses_output_interface() -> None:
    process = daily(code=CodeSpec(1, Version(3, 0, 0), output_interface=3))
    (act,) = actions(plan(snapshot(process, [day_file("L0", D(2016, 1, 1))]), [("L0_to_L1", None)]))
    assert act.output_version == Version(3, 0, 0)


def test_code_validity_dates() -> None:
    code = CodeSpec(1, Version(1, 0, 0), valid_from=D(2016, 1, 2), valid_until=D(2016, 1, 3))
    process = daily(code=code, inputs=(InputSpec("L0"),))
    files = [day_file("L0", D(2016, 1, d)) for d in range(1, 5)]
    decisions = {d.date: d for d in plan(snapshot(process, files), [("L0_to_L1", None)])}
    assert sorted(d for d, x in decisions.items() if x.action) == [D(2016, 1, 2), D(2016, 1, 3)]
    assert decisions[D(2016, 1, 1)].status is Status.OUTSIDE_VALIDITY
    assert decisions[D(2016, 1, 4)].status is Status.OUTSIDE_VALIDITY


def test_output_ingested_without_provenance_is_rebuilt_above_it() -> None:
    l0 = day_file("L0", D(2016, 1, 1))
    foreign = day_file("L1", D(2016, 1, 1), version="1.0.0")  # no code, no parents
    (act,) = actions(plan(snapshot(daily(), [l0, foreign]), [("L0_to_L1", None)]))
    assert act.reason is Reason.NO_PROVENANCE and act.output_version == Version(1, 1, 0)


# -- forced rebuilds and failures ---------------------------------------------------------


@pytest.mark.parametrize(
    ("bump", "version"),
    [(VersionPart.REVISION, Version(1, 0, 1)), (VersionPart.QUALITY, Version(1, 1, 0))],
)
def test_forced_rebuild(bump: VersionPart, version: Version) -> None:
    l0 = day_file("L0", D(2016, 1, 1))
    (first,) = actions(plan(snapshot(daily(), [l0]), [("L0_to_L1", None)]))
    forced = {("L0_to_L1", D(2016, 1, 1), ""): ForcedRequest("L0_to_L1", D(2016, 1, 1), "", bump)}
    (act,) = actions(
        plan(snapshot(daily(), [l0, built(first)], forced=forced), [("L0_to_L1", D(2016, 1, 1))])
    )
    assert act.reason is Reason.FORCED and act.forced and act.output_version == version


def test_failed_build_is_not_retried_until_something_changes() -> None:
    l0 = day_file("L0", D(2016, 1, 1))
    process = daily()
    (act,) = actions(plan(snapshot(process, [l0]), [("L0_to_L1", None)]))
    failure = RunRecord(
        7,
        "L0_to_L1",
        D(2016, 1, 1),
        "",
        act.build_key,
        "failed",
        1,
        (l0.id,),
        error="exit status 7",
    )
    key = ("L0_to_L1", D(2016, 1, 1), "")
    decisions = plan(snapshot(process, [l0], last_runs={key: failure}), [("L0_to_L1", None)])
    assert decisions[0].status is Status.FAILED and "run 7" in decisions[0].evidence[0]
    retried = plan(
        snapshot(process, [l0], last_runs={key: failure}, retry_failed=True), [("L0_to_L1", None)]
    )
    assert retried[0].action is not None
    forced = {key: ForcedRequest("L0_to_L1", D(2016, 1, 1), "", VersionPart.REVISION)}
    kept = plan(
        snapshot(process, [l0], last_runs={key: failure}, forced=forced), [("L0_to_L1", None)]
    )
    assert kept[0].status is Status.FAILED  # a forced rebuild that failed is not retried
    forced = {key: ForcedRequest("L0_to_L1", D(2016, 1, 1), "", VersionPart.REVISION, 7)}
    asked = plan(
        snapshot(process, [l0], last_runs={key: failure}, forced=forced), [("L0_to_L1", None)]
    )
    assert asked[0].action is not None  # a person asked to retry run 7
    l0_new = day_file("L0", D(2016, 1, 1), version="1.0.1")
    changed = plan(
        snapshot(
            process,
            [FileRecord(**{**l0.__dict__, "is_newest": False}), l0_new],
            last_runs={key: failure},
        ),
        [("L0_to_L1", None)],
    )
    assert changed[0].action is not None


# -- FILE and RUN -------------------------------------------------------------------------


def file_process() -> ProcessSpec:
    return ProcessSpec(
        name="L0_to_L1A",
        timebase="FILE",
        inputs=(InputSpec("L0"), InputSpec("CAL", before=1, optional=True)),
        code=CODE,
        output="L1A",
        output_format="l1a_{APID}_{DATE}_v{VERSION}.dat",
    )


def test_file_one_output_per_trigger_with_its_keywords() -> None:
    triggers = [
        day_file("L0", D(2016, 1, 1), slot=f"APID={a}", keywords=[("APID", a)], name=f"l0_{a}")
        for a in ("x01", "x02")
    ]
    cal = [day_file("CAL", D(2016, 1, 1) - dt.timedelta(days=n), name=f"cal{n}") for n in (0, 1, 2)]
    acts = actions(plan(snapshot(file_process(), [*triggers, *cal]), [("L0_to_L1A", None)]))
    assert [a.output_filename for a in acts] == [
        "l1a_x01_20160101_v1.0.0.dat",
        "l1a_x02_20160101_v1.0.0.dat",
    ]
    assert [a.slot for a in acts] == ["APID=x01", "APID=x02"]
    # other inputs are chosen by file date within the window (before=1: 12-31 and 01-01)
    assert [f.filename for f in acts[0].inputs] == ["l0_x01", "cal1", "cal0"]


def test_file_other_inputs_must_share_keywords() -> None:
    process = ProcessSpec(
        name="P",
        timebase="FILE",
        inputs=(InputSpec("L0"), InputSpec("HK")),
        code=CODE,
        output="L1A",
        output_format="l1a_{APID}_{DATE}_v{VERSION}.dat",
    )
    trig = day_file("L0", D(2016, 1, 1), slot="APID=x01", keywords=[("APID", "x01")], name="t")
    hk_other = day_file("HK", D(2016, 1, 1), slot="APID=x02", keywords=[("APID", "x02")])
    decisions = plan(snapshot(process, [trig, hk_other]), [("P", None)])
    assert decisions[0].status is Status.MISSING_INPUT


def test_file_outputs_colliding_names_are_reported() -> None:
    process = ProcessSpec(
        name="P",
        timebase="FILE",
        inputs=(InputSpec("L0"),),
        code=CODE,
        output="L1",
        output_format=L1_FORMAT,
    )
    triggers = [
        day_file("L0", D(2016, 1, 1), slot=f"n={n}", keywords=[("n", n)], name=f"t{n}")
        for n in ("1", "2")
    ]
    decisions = plan(snapshot(process, triggers), [("P", None)])
    assert [d.status for d in decisions if d.status] == [Status.COLLISION]
    assert len(actions(decisions)) == 1


def run_process() -> ProcessSpec:
    return daily(name="L1_log", inputs=(InputSpec("L1"),), output=None, timebase="RUN")


def test_run_runs_once_per_distinct_input_version_set() -> None:
    process = run_process()
    l1 = day_file("L1", D(2016, 1, 1))
    (act,) = actions(plan(snapshot(process, [l1]), [("L1_log", None)]))
    assert act.output_filename is None and act.output_version is None
    key = ("L1_log", D(2016, 1, 1), "")
    ok = RunRecord(1, "L1_log", D(2016, 1, 1), "", act.build_key, "succeeded", 1, (l1.id,))
    assert not actions(
        plan(snapshot(process, [l1], succeeded_runs={key: [ok]}), [("L1_log", None)])
    )
    l1_new = day_file("L1", D(2016, 1, 1), version="1.0.1")
    old = FileRecord(**{**l1.__dict__, "is_newest": False})
    (again,) = actions(
        plan(snapshot(process, [old, l1_new], succeeded_runs={key: [ok]}), [("L1_log", None)])
    )
    assert again.reason is Reason.INPUT_NEWER
    # back to a set that already ran: not run again
    ok2 = RunRecord(
        2, "L1_log", D(2016, 1, 1), "", build_key(1, [l1_new.id]), "succeeded", 1, (l1_new.id,)
    )
    assert not actions(
        plan(snapshot(process, [old, l1_new], succeeded_runs={key: [ok, ok2]}), [("L1_log", None)])
    )


# -- next_version ------------------------------------------------------------------------


def test_next_version_only_grows() -> None:
    code = CodeSpec(1, Version(1, 0, 0))
    for newest in (Version(1, 0, 0), Version(1, 4, 2), Version(3, 0, 7)):
        for quality in (True, False):
            for forced in (None, VersionPart.REVISION, VersionPart.QUALITY):
                assert next_version(newest, code, quality, forced) > newest
