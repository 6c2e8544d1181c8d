"""The process loop stepped by hand with the in-memory executor: no threads, no codes,
no clocks, so every assertion is about the loop's bookkeeping alone."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, select

import dbproc
from dbproc.build.processing import Processor
from dbproc.build.run_start import RUN_TABLE as RUN
from dbproc.build.run_start import run_root
from dbproc.control.signals import Interrupted
from dbproc.db.file_paths import MissionPaths
from dbproc.db.models import Run, RunStatus
from dbproc.db.queries import get_mission
from dbproc.db.unit import Store
from dbproc.examples import write_example
from dbproc.executors.base import JobSpec
from dbproc.executors.memory import Event, MemoryExecutor, copy_inputs

FANOUT = """
[mission]
name = "fanout"
root = "data"
incoming = "incoming"
errors = "errors"
codes = "codes"

[products.RAW]
level = 0
dir = "raw"
format = "raw_{Y}{m}{d}.dat"

[products.B]
level = 1
dir = "b"
format = "b_{Y}{m}{d}_v{VERSION}.dat"
"""


def _fanout_mission(tmp_path: Path) -> Path:
    """RAW -> B, and B read by three processes making C1, C2, C3."""
    example = write_example(tmp_path / "example")
    codes = example.parent / "codes"
    text = FANOUT.replace('codes = "codes"', f'codes = "{codes}"')
    text += """
[processes.make_b]
output = "B"
timebase = "DAILY"
inputs = [{ product = "RAW" }]
[processes.make_b.code]
path = "scripts/l1_to_l2.py"
version = "1.0.0"
"""
    for n in (1, 2, 3):
        text += f"""
[products.C{n}]
level = 2
dir = "c{n}"
format = "c{n}_{{Y}}{{m}}{{d}}_v{{VERSION}}.dat"

[processes.make_c{n}]
output = "C{n}"
timebase = "FILE"
inputs = [{{ product = "B" }}]
[processes.make_c{n}.code]
path = "scripts/l1_to_l2.py"
version = "1.0.0"
"""
    mission = tmp_path / "fanout" / "mission.toml"
    (mission.parent / "data" / "incoming").mkdir(parents=True)
    mission.write_text(text, encoding="utf-8")
    (mission.parent / "data" / "incoming" / "raw_20160101.dat").write_bytes(b"raw\n")
    return mission


@contextmanager
def processor(db_url: str, mission: Path | None, executor: MemoryExecutor) -> Iterator[Processor]:
    """A Processor on an applied, ingested mission (``mission`` None: as it is), its loop
    begun but not stepped."""
    with dbproc.open(db_url) as archive:
        if mission is not None:
            archive.apply_config(mission)
            archive.ingest()
        store = Store(archive.engine)
        with store.session() as session:
            paths = MissionPaths.of(get_mission(session))
            proc = Processor(session, paths, executor, pass_id=None)
            proc.begin()
            try:
                yield proc
            finally:
                proc.recorder.close()


def kinds(events: Sequence[Event]) -> list[tuple[str, str | None]]:
    return [(e.kind, e.status) for e in events]


def fail_first(spec: JobSpec, run_dir: Path) -> int:
    """The first job (lowest run id) exits 1, the others work."""
    if spec.run_id == 1:
        return 1
    return copy_inputs(spec, run_dir)


def test_a_slot_freed_by_a_failure_is_refilled_before_the_failure_is_recorded(
    db_url: str, mission_file: Path
) -> None:
    executor = MemoryExecutor(slots=1, behaviour=fail_first)
    with processor(db_url, mission_file, executor) as proc:
        assert proc.step()
        assert kinds(executor.events) == [
            ("submit", None),
            ("result", "code_failed"),
            ("submit", None),
        ]
        assert [r.status for r in proc.report.runs] == [RunStatus.FAILED]
        assert len(proc.active) == 1  # the refilled slot
        while proc.step():
            pass
        proc.finish()
    statuses = [r.status for r in proc.report.runs]
    assert statuses.count(RunStatus.FAILED) == 1
    assert statuses.count(RunStatus.SUCCEEDED) == len(statuses) - 1
    assert not executor.in_flight


def test_a_result_that_queues_three_successors(db_url: str, tmp_path: Path) -> None:
    executor = MemoryExecutor(slots=1)
    with processor(db_url, _fanout_mission(tmp_path), executor) as proc:
        assert proc.step()  # make_b runs and is recorded: B queues C1, C2 and C3
        [built] = proc.report.runs
        assert (built.process, built.status) == ("make_b", RunStatus.SUCCEEDED)
        assert proc.active == [] and proc.waiting == 0  # queued, planned at the next step
        assert proc.step()  # all three planned at once; one ran, its slot refilled
        done = [r.process for r in proc.report.runs[1:]]
        running = [a.process for a in proc.active]
        assert len(done) == 1 and len(running) == 1 and proc.waiting == 1
        assert set(done + running) < {"make_c1", "make_c2", "make_c3"}
        while proc.step():
            pass
    assert sorted(r.process for r in proc.report.runs) == [
        "make_b",
        "make_c1",
        "make_c2",
        "make_c3",
    ]
    assert all(r.status is RunStatus.SUCCEEDED for r in proc.report.runs)


def test_a_cancelled_run_is_recorded_cancelled_and_built_by_the_next_pass(
    db_url: str, mission_file: Path
) -> None:
    executor = MemoryExecutor(slots=2)
    first: list[int] = []

    def cancel_once(in_flight: Sequence[JobSpec]) -> JobSpec:
        spec = in_flight[0]
        if not first:
            first.append(spec.run_id)
            executor.cancel(spec)
        return spec

    executor.pick = cancel_once
    with processor(db_url, mission_file, executor) as proc:
        assert proc.step()
        [cancelled] = proc.report.runs
        assert cancelled.run_id == first[0]
        assert cancelled.status is RunStatus.CANCELLED
        while proc.step():
            pass
    key = (cancelled.process, cancelled.date)
    assert all((r.process, r.date) != key for r in proc.report.runs[1:])
    with processor(db_url, None, MemoryExecutor(slots=2)) as proc:
        while proc.step():
            pass
    first_run, *successors = proc.report.runs
    assert (first_run.process, first_run.date, first_run.status) == (*key, RunStatus.SUCCEEDED)
    assert {r.process for r in successors} == {"L1_to_L2", "L2_log"}  # what it feeds


@pytest.mark.parametrize("slots", [1, 3])
def test_never_more_in_flight_than_slots(db_url: str, mission_file: Path, slots: int) -> None:
    executor = MemoryExecutor(slots=slots)
    peak = 0
    with processor(db_url, mission_file, executor) as proc:
        while proc.step():
            peak = max(peak, len(executor.in_flight) + 1)
    assert peak <= slots + 1  # the slot refilled while one result is being recorded
    assert len(proc.report.runs) >= 4 and not executor.in_flight


def test_results_that_finish_together_are_recorded_as_a_group(db_url: str, tmp_path: Path) -> None:
    """Three builds started together and finished together: one commit starts them, one
    marks them all ``promoting``, one records them all (instead of 1 + 2 per run)."""
    executor = MemoryExecutor(slots=3, together=True)
    with processor(db_url, _fanout_mission(tmp_path), executor) as proc:
        assert proc.step()  # make_b runs and is recorded: B queues C1, C2 and C3
        engine = proc.session.get_bind()
        commits: list[object] = []

        def count(connection: object) -> None:
            commits.append(connection)

        event.listen(engine, "commit", count)
        try:
            assert proc.step()  # the three planned, started, finished and recorded
        finally:
            event.remove(engine, "commit", count)
        assert kinds(executor.events[2:]) == [("submit", None)] * 3 + [("result", "ok")] * 3
        assert len(commits) == 3
        made = proc.report.runs[1:]
        assert sorted(r.process for r in made) == ["make_c1", "make_c2", "make_c3"]
        assert all(r.status is RunStatus.SUCCEEDED and r.output for r in made)
        assert proc.active == [] and not proc.step()
        with Store(proc.session.get_bind()).read() as session:  # type: ignore[arg-type]
            statuses = session.scalars(select(Run.status)).all()
    assert statuses == [RunStatus.SUCCEEDED] * 4


def test_a_pass_runs_with_an_executor_object_and_leaves_it_to_its_caller(
    db_url: str, mission_file: Path
) -> None:
    """``Archive.process(executor=...)`` takes an executor object (the controller bench
    drives a whole pass this way); the pass does not close what it did not make."""
    archive = dbproc.open(db_url)
    archive.apply_config(mission_file)
    archive.ingest()
    closed: list[bool] = []

    class Watched(MemoryExecutor):
        def close(self, cancel_pending: bool = True) -> None:
            closed.append(cancel_pending)
            super().close(cancel_pending)

    executor = Watched(slots=2, together=True)
    report = archive.process(executor=executor)
    assert report.process is not None and report.process.counts()["succeeded"] >= 4
    assert kinds(executor.events).count(("result", "ok")) == report.process.counts()["runs"]
    assert closed == []
    archive.close()


def test_a_reprocess_asked_while_its_key_builds_for_another_reason_is_kept(
    db_url: str, mission_file: Path
) -> None:
    """A build planned before ``reprocess`` was asked (here: for a new code version) does
    not end the request: the next pass makes the forced rebuild."""
    archive = dbproc.open(db_url)
    archive.apply_config(mission_file)
    archive.run(executor=MemoryExecutor(slots=2))
    text = mission_file.read_text(encoding="utf-8")
    head, tail = text.split("[processes.L1_to_L2.code]", 1)
    mission_file.write_text(
        head + "[processes.L1_to_L2.code]" + tail.replace('"1.0.0"', '"1.1.0"', 1),
        encoding="utf-8",
    )
    archive.apply_config(mission_file)
    asked: list[int] = []

    def reprocess_meanwhile(spec: JobSpec, run_dir: Path) -> int:
        if spec.env.get("DBPROC_PROCESS") == "L1_to_L2" and not asked:
            with dbproc.open(db_url) as other:
                asked.append(len(other.reprocess(processes=["L1_to_L2"]).targets))
        return copy_inputs(spec, run_dir)

    first = archive.process(executor=MemoryExecutor(slots=1, behaviour=reprocess_meanwhile))
    assert first.process is not None and asked and asked[0] > 0
    built = [r for r in first.process.runs if r.process == "L1_to_L2"]
    assert built and all(r.reason == "code_changed" for r in built)
    second = archive.process(executor=MemoryExecutor(slots=1))
    assert second.process is not None
    forced = [r for r in second.process.runs if r.process == "L1_to_L2"]
    assert forced and all(r.reason == "forced" for r in forced)
    archive.close()


def test_recorded_runs_staging_is_swept_together_then_at_the_end(
    db_url: str, mission_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recorded run's staging waits for a sweep of SWEEP_RUNS runs (removing folders
    between runs makes new ones dearer on some filesystems); the rest goes when the
    recorder closes, so a pass leaves no run folder behind."""
    from dbproc.build import staging_sweep

    monkeypatch.setattr(staging_sweep, "SWEEP_RUNS", 2)
    executor = MemoryExecutor(slots=1)
    with processor(db_url, mission_file, executor) as proc:
        sweeper = proc.recorder._cleaner
        assert sweeper is not None

        def waiting() -> list[str]:
            sweeper.flushed()
            return [Path(root).name for root in sweeper.waiting]

        assert proc.step()
        assert waiting() == ["run-1"]  # recorded, its folder kept for the sweep
        assert (proc.paths.staging / "run-1").is_dir()
        assert proc.step()
        assert waiting() == []  # two recorded: swept together
        assert not (proc.paths.staging / "run-1").exists()
        assert not (proc.paths.staging / "run-2").exists()
        assert proc.step()
        assert waiting() == ["run-3"]
        while proc.step():
            pass
        proc.finish()
        left = waiting()
        assert len(left) == len(proc.report.runs) % 2
        proc.recorder.close()
        assert not any(proc.paths.staging.glob("run-*"))


def scratch_then_copy(spec: JobSpec, run_dir: Path) -> int:
    """A code that leaves 1 MiB of scratch in its folder, then writes its output."""
    (run_dir / "scratch.tmp").write_bytes(b"\0" * (1 << 20))
    return copy_inputs(spec, run_dir)


def test_staging_that_holds_scratch_is_swept_before_the_run_count(
    db_url: str, mission_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Folders wait only while removing them would free little: a run that leaves more
    than SWEEP_BYTES of scratch is swept at once (the placed output, linked into the
    archive, frees nothing and does not count)."""
    from dbproc.build import staging_sweep

    monkeypatch.setattr(staging_sweep, "SWEEP_BYTES", 1 << 20)
    executor = MemoryExecutor(slots=1, behaviour=scratch_then_copy)
    with processor(db_url, mission_file, executor) as proc:
        sweeper = proc.recorder._cleaner
        assert sweeper is not None
        assert proc.step()
        sweeper.flushed()
        assert sweeper.waiting == []
        assert not (proc.paths.staging / "run-1").exists()
    monkeypatch.setattr(staging_sweep, "SWEEP_BYTES", 2 << 20)
    executor = MemoryExecutor(slots=1, behaviour=scratch_then_copy)
    with processor(db_url, None, executor) as proc:
        assert proc.step()
        sweeper = proc.recorder._cleaner
        assert sweeper is not None
        sweeper.flushed()
        assert len(sweeper.waiting) == 1  # 1 MiB waits: under the limit


def test_runs_started_together_get_their_own_ids_and_run_roots_in_one_statement_each(
    db_url: str, tmp_path: Path
) -> None:
    """A run's row is inserted with its id and its run root at once (run_start.py): the
    ids are the column's own (PostgreSQL: its sequence, so an insert that leaves the id to
    the database later takes the next one), and each root names its run."""
    executor = MemoryExecutor(slots=3, together=True)
    with processor(db_url, _fanout_mission(tmp_path), executor) as proc:
        while proc.step():
            pass
        paths = proc.paths
        engine = proc.session.get_bind()
    with engine.begin() as connection:  # type: ignore[union-attr]
        rows = connection.execute(select(Run.id, Run.run_root).order_by(Run.id)).all()
        assert [r.id for r in rows] == [1, 2, 3, 4]
        assert [r.run_root for r in rows] == [str(run_root(paths, r.id)) for r in rows]
        assert len({r.run_root for r in rows}) == 4
        # a copy of the last row, its id left to the database
        copied = [c for c in RUN.c if c.name not in ("id", "run_root")]
        later = connection.execute(
            RUN.insert()
            .from_select([c.name for c in copied], select(*copied).where(RUN.c.id == 4))
            .returning(RUN.c.id)
        ).scalar_one()
    assert later == 5


class SignalledWhileSubmitting(MemoryExecutor):
    """SIGTERM arrives while the pass hands its first job over, before the loop knows it."""

    def submit(self, spec: JobSpec) -> JobSpec:
        handle = super().submit(spec)
        if len(self.events) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return handle


def test_a_stop_signal_while_runs_start_stops_and_records_every_started_run(
    db_url: str, mission_file: Path
) -> None:
    """Cut between a run's row and the loop's record of its job, the pass would leave the
    code running unstopped (a real pass then waits for it at exit) and its row running."""
    archive = dbproc.open(db_url)
    archive.apply_config(mission_file)
    archive.ingest()
    executor = SignalledWhileSubmitting(slots=2)
    with pytest.raises(Interrupted):
        archive.process(executor=executor)
    submitted = [e.run_id for e in executor.events if e.kind == "submit"]
    assert len(submitted) == 2 and not executor.in_flight
    with Store(archive.engine).read() as session:
        rows = dict(session.execute(select(Run.id, Run.status)).tuples().all())
    assert rows == dict.fromkeys(submitted, RunStatus.CANCELLED)
    assert archive.run(executor=MemoryExecutor(slots=2)).exit_code == 0  # built next pass
    archive.close()


def test_a_log_folder_removed_during_a_pass_is_made_again_for_the_next_kept_log(
    db_url: str, mission_file: Path
) -> None:
    """The kept logs' folder is made once a pass; a prune that removes it meanwhile
    costs no log."""
    from dbproc.build.run_start import run_logs_dir

    executor = MemoryExecutor(slots=1)
    with processor(db_url, mission_file, executor) as proc:
        assert proc.step()
        [first] = proc.report.runs
        folder = run_logs_dir(proc.paths) / "0"
        assert (folder / f"{first.run_id}.log").is_file()
        shutil.rmtree(folder)
        while proc.step():
            pass
        proc.finish()
        logs = dict(proc.session.execute(select(Run.id, Run.log_path)).all())
    later = [r.run_id for r in proc.report.runs[1:]]
    assert later and all(Path(logs[rid]).is_file() for rid in later)
    assert logs[first.run_id] is not None and not Path(logs[first.run_id]).exists()
