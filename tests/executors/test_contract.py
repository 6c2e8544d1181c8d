"""One contract for every executor, run against the local one and a real Dask cluster.

Each test submits real codes (tests/executors/codes/job.py) and checks what came back and
what is left running. The Dask cases use a scheduler and two single-threaded workers on
127.0.0.1 (see conftest.py); the last tests SIGKILL a worker in the middle of a job.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dbproc.executors import worker
from dbproc.executors.base import CANCEL_FILE, Executor, JobResult, JobSpec, prepare_run_root
from dbproc.executors.capped import cut_line
from dbproc.executors.worker import run_spec
from tests.executors.cluster import (
    DaskCluster,
    Proc,
    markers,
    start_time,
    wait_for,
    wait_gone,
    wait_markers,
)
from tests.executors.conftest import MakeExecutor

JOB = Path(__file__).resolve().parent / "codes" / "job.py"
RESULT_SECONDS = 60.0  # only a guard against hangs
_ids = itertools.count(1)


def spec(tmp_path: Path, *args: str, output: str | None = None, **kwargs: Any) -> JobSpec:
    """A job running job.py with ``args``, in its own run root under tmp_path."""
    run_id = next(_ids)
    return JobSpec(
        run_id=run_id,
        attempt=1,
        argv=(sys.executable, str(JOB), *args),
        run_root=str(tmp_path / f"job-{run_id}"),
        output_name=output,
        **kwargs,
    )


def result_of(executor: Executor) -> JobResult:
    """The next result; fail rather than hang."""
    result = executor.next_result(timeout=RESULT_SECONDS)
    assert result is not None, f"no result within {RESULT_SECONDS:g} s"
    return result


def run_one(executor: Executor, job: JobSpec) -> JobResult:
    """Submit one job and wait for its result."""
    executor.submit(job)
    result = result_of(executor)
    assert (result.run_id, result.attempt) == (job.run_id, job.attempt)
    return result


def code_and_child(marker: dict[str, Any]) -> list[Proc]:
    """The code process of a pids.json and its child (while both run)."""
    procs = [Proc(marker["pid"])]
    if marker.get("child"):
        procs.append(Proc(marker["child"]))
    return procs


def test_a_quiet_code_leaves_no_stream_log(tmp_path: Path) -> None:
    """A log file is made at its stream's first byte: a code that prints nothing leaves
    none (readers take a missing log for an empty one)."""
    job = JobSpec(
        run_id=next(_ids),
        attempt=1,
        argv=(sys.executable, "-c", "pass"),
        run_root=str(tmp_path / "quiet"),
    )
    prepare_run_root(job)
    result = run_spec(job)
    assert result.status == "ok", result
    assert result.stdout_tail == "" and result.stderr_tail == ""
    assert sorted(p.name for p in Path(result.run_dir or "").iterdir()) == []


def test_success_writes_in_its_own_run_folder(make_executor: MakeExecutor, tmp_path: Path) -> None:
    executor = make_executor()
    job = spec(tmp_path, "write", "hello", output="out.txt", env={"DBPROC_TEST_VAR": "spec"})
    before = time.time()
    result = run_one(executor, job)
    assert result.status == "ok" and result.ok, result
    assert result.exit_code == 0 and result.signal is None and result.error is None
    assert result.run_dir is not None
    run_dir = Path(result.run_dir)
    assert run_dir.parent == Path(job.run_root)
    assert re.fullmatch(r"run-[0-9a-f]{12}", run_dir.name)
    assert (run_dir / "out.txt").read_text() == "hello\n"
    assert result.argv == (*job.argv, str(run_dir / "out.txt"))
    assert "out: hello env: spec" in result.stdout_tail
    assert "err: hello" in result.stderr_tail
    assert (run_dir / "stdout.log").read_text() == result.stdout_tail
    assert result.host == socket.gethostname()
    assert result.started is not None and result.ended is not None
    assert before - 1 <= result.started <= result.ended <= time.time() + 1
    assert result.peak_memory_kb is not None and result.peak_memory_kb >= 64 * 1024
    assert executor.next_result(timeout=RESULT_SECONDS) is None  # nothing left in flight


def test_failure_is_a_result_with_exit_status_and_tails(
    make_executor: MakeExecutor, tmp_path: Path
) -> None:
    result = run_one(make_executor(), spec(tmp_path, "fail"))
    assert result.status == "code_failed" and not result.ok
    assert result.exit_code == 7 and result.signal is None
    assert result.error == "exit status 7"
    assert "boom: cannot calibrate" in result.stderr_tail
    assert "working" in result.stdout_tail
    assert result.run_dir is not None and Path(result.run_dir).is_dir()


def test_timeout_kills_the_whole_process_group(make_executor: MakeExecutor, tmp_path: Path) -> None:
    """SIGTERM to the group at the timeout; SIGKILL after the grace when it is ignored.

    Both jobs run side by side; each code has a child `sleep` that must go with it.
    """
    executor = make_executor()
    jobs = {
        signal.SIGTERM: spec(tmp_path, "hang", timeout=2.0, kill_grace=0.5),
        signal.SIGKILL: spec(tmp_path, "hang", "stubborn", timeout=2.0, kill_grace=0.5),
    }
    for job in jobs.values():
        executor.submit(job)
    processes = [
        p
        for job in jobs.values()
        for m in wait_markers(Path(job.run_root), 1).values()
        for p in code_and_child(m)
    ]
    results = {r.run_id: r for r in executor.as_completed(timeout=RESULT_SECONDS)}
    for signum, job in jobs.items():
        result = results[job.run_id]
        assert result.status == "timeout", result
        assert result.exit_code is None and result.signal == signum
        assert result.error == "killed after the timeout of 2 s"
    wait_gone(processes)


def test_cancel_stops_running_and_queued_jobs(make_executor: MakeExecutor, tmp_path: Path) -> None:
    executor = make_executor()
    assert executor.slots == 2
    jobs = [spec(tmp_path, "hang") for _ in range(executor.slots + 1)]
    handles = [executor.submit(job) for job in jobs]
    roots = [Path(job.run_root) for job in jobs]
    wait_for(
        lambda: sum(len(markers(root)) for root in roots) == 2, RESULT_SECONDS, "two codes to run"
    )
    (queued,) = [i for i, root in enumerate(roots) if not markers(root)]
    processes = [p for root in roots for m in markers(root).values() for p in code_and_child(m)]
    executor.cancel(handles[queued])  # first, so that it can never start
    for handle in handles:
        executor.cancel(handle)
        executor.cancel(handle)  # idempotent
    results = list(executor.as_completed(timeout=RESULT_SECONDS))
    assert sorted(r.run_id for r in results) == [job.run_id for job in jobs]
    assert {r.status for r in results} == {"cancelled"}
    wait_gone(processes)
    assert not markers(roots[queued]), "the queued job started its code"
    assert executor.next_result(timeout=1) is None


def test_missing_program_is_a_failed_result(make_executor: MakeExecutor, tmp_path: Path) -> None:
    executor = make_executor()
    absent = JobSpec(next(_ids), 1, (str(tmp_path / "no-such-code"), "x"), str(tmp_path / "a"))
    unknown = JobSpec(next(_ids), 1, ("dbproc-no-such-program-on-path",), str(tmp_path / "b"))
    for job, why in ((absent, "No such file or directory"), (unknown, "not found on PATH")):
        result = run_one(executor, job)
        assert result.status == "code_failed" and result.exit_code is None, result
        assert result.error == f"cannot start {job.argv[0]}: {why}"


def test_jobs_run_side_by_side_up_to_the_slots(make_executor: MakeExecutor, tmp_path: Path) -> None:
    executor = make_executor()
    slots = executor.slots
    assert slots == 2
    running, release = tmp_path / "running", tmp_path / "release"
    running.mkdir()
    jobs = [
        spec(tmp_path, "gate", str(running), str(slots), str(release), output="seen")
        for _ in range(2 * slots)
    ]
    for job in jobs:
        executor.submit(job)
    deadline = time.monotonic() + RESULT_SECONDS
    while len(os.listdir(running)) < slots:  # `slots` codes run at the same moment
        assert time.monotonic() < deadline, "the jobs never ran side by side"
        time.sleep(0.02)
    release.touch()
    results = list(executor.as_completed(timeout=RESULT_SECONDS))
    assert sorted(r.run_id for r in results) == [job.run_id for job in jobs]
    assert all(r.ok for r in results), results
    seen = [int((Path(r.run_dir or "") / "seen").read_text()) for r in results]
    assert max(seen) == slots  # and never more at once


def test_run_root_must_be_visible_to_the_worker(tmp_path: Path) -> None:
    """A worker that does not share the controller's filesystem says so (no private copy)."""
    job = spec(tmp_path, "write", "x", output="out.txt")
    result = run_spec(job)
    assert result.status == "error" and result.run_dir is None
    assert "is not visible on" in (result.error or "") and "shared filesystem" in (
        result.error or ""
    )
    assert not Path(job.run_root).exists()


def test_cancel_file_before_start_runs_nothing(tmp_path: Path) -> None:
    job = spec(tmp_path, "hang")
    Path(job.run_root).mkdir()
    (Path(job.run_root) / CANCEL_FILE).touch()
    result = run_spec(job)
    assert result.status == "cancelled" and result.error == "cancelled before it started"
    assert not markers(Path(job.run_root))


def flood_block(stream: int, i: int) -> bytes:
    """As job.py's: block ``i`` of the flood on stream 1 or 2."""
    return f"{stream}:{i:07d} ".encode().ljust(4095, b".") + b"\n"


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "polling"])
def test_a_flood_on_both_streams_is_drained_and_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pidfd: bool
) -> None:
    """More than a pipe holds on stdout and stderr, interleaved: the code must never block
    on either pipe while the worker waits, and each log keeps its head and its tail."""
    if not pidfd:
        monkeypatch.setattr(worker, "open_pidfd", lambda pid: None)
    size, limit = 1 << 20, 65536
    job = spec(tmp_path, "flood", str(size), log_limit=limit, timeout=RESULT_SECONDS)
    prepare_run_root(job)
    result = run_spec(job)
    assert result.status == "ok", result  # "timeout": blocked on a full pipe
    for stream, name in ((1, worker.STDOUT), (2, worker.STDERR)):
        data = b"".join(flood_block(stream, i) for i in range(size // 4096))
        log = (Path(result.run_dir or "") / name).read_bytes()
        assert log == data[: limit // 2] + cut_line(size - limit) + data[-limit // 2 :]
    assert not list(Path(job.run_root).rglob("*.tail"))


def test_a_child_left_in_the_group_is_killed_and_the_logs_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code exits, its child (in its group) holds the pipes: killed with the group."""
    monkeypatch.setattr(worker, "PUMP_DRAIN_SECONDS", RESULT_SECONDS)
    job = spec(tmp_path, "leave")
    prepare_run_root(job)
    began = time.monotonic()
    result = run_spec(job)
    # the pipes ended (so the child had closed them, dying) well before the drain's end
    assert time.monotonic() - began < RESULT_SECONDS, "the worker waited out the drain"
    (marker,) = markers(Path(job.run_root)).values()
    # it is gone or a zombie at once: polled only because /proc shows the zombie a moment
    # after the dying process closed its files
    wait_for(lambda: start_time(marker["child"]) is None, 10.0, "the child to end")
    assert result.status == "ok" and "left" in result.stdout_tail, result


def test_a_child_that_left_the_group_cannot_hold_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child in a session of its own keeps the pipes open: the worker drains them for
    PUMP_DRAIN_SECONDS after the code ended, then closes them and its logs anyway."""
    monkeypatch.setattr(worker, "PUMP_DRAIN_SECONDS", 0.5)
    job = spec(tmp_path, "leave", "escape")
    prepare_run_root(job)
    fds = len(os.listdir("/proc/self/fd"))
    result = run_spec(job)
    (marker,) = markers(Path(job.run_root)).values()
    try:
        assert result.status == "ok" and "left" in result.stdout_tail, result
        assert len(os.listdir("/proc/self/fd")) == fds  # the pipes were closed
        assert not list(Path(job.run_root).rglob("*.tail"))
    finally:
        os.kill(marker["child"], signal.SIGKILL)


# --- Dask only: the scheduler's retry budget, and workers killed mid-run -------------------


@pytest.mark.dask
def test_executor_sets_allowed_failures_on_the_scheduler(dask_cluster: DaskCluster) -> None:
    from dbproc.executors.dask import DaskExecutor

    # (lambdas: pickled by value, since the scheduler cannot import the tests)
    dask_cluster.run_on_scheduler(
        lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", 3)
    )
    executor = DaskExecutor(dask_cluster.address)
    try:
        assert executor.allowed_failures == 1
        assert (
            dask_cluster.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
            == 1
        )
        assert executor.slots == 2
    finally:
        executor.close()


def _kill_worker_of(cluster: DaskCluster, marker: dict[str, Any]) -> None:
    """SIGKILL the worker running the code of ``marker`` (the code's parent)."""
    worker = cluster.worker_of(marker["ppid"])
    assert worker is not None, "the code does not run under a worker"
    cluster.kill_worker(worker)


@pytest.mark.dask
def test_worker_killed_mid_run_is_rerun_once_in_a_new_folder(
    dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    from dbproc.executors.dask import DaskExecutor

    executor = DaskExecutor(dask_cluster.address)
    try:
        job = spec(tmp_path, "once", output="out.txt")
        executor.submit(job)
        ((first_dir, first),) = wait_markers(Path(job.run_root), 1).items()
        orphan = Proc(first["pid"])
        _kill_worker_of(dask_cluster, first)
        wait_gone([orphan])  # the kernel killed the code with its worker (parent-death signal)
        result = result_of(executor)
        assert result.status == "ok", result
        assert result.run_dir is not None and Path(result.run_dir) != first_dir
        assert Path(result.run_dir).parent == Path(job.run_root)
        assert (Path(result.run_dir) / "out.txt").read_text() == "second execution\n"
        assert not (first_dir / "out.txt").exists()
        executions = markers(Path(job.run_root))
        assert set(executions) == {first_dir, Path(result.run_dir)}
        second = executions[Path(result.run_dir)]
        assert second["ppid"] != first["ppid"]  # (its launcher is gone with it by now)
    finally:
        executor.close()


@pytest.mark.dask
def test_worker_killed_twice_is_worker_lost(dask_cluster: DaskCluster, tmp_path: Path) -> None:
    from dbproc.executors.dask import DaskExecutor

    executor = DaskExecutor(dask_cluster.address)
    try:
        job = spec(tmp_path, "hang", "alone")
        executor.submit(job)
        ((first_dir, first),) = wait_markers(Path(job.run_root), 1).items()
        codes = [Proc(first["pid"])]
        _kill_worker_of(dask_cluster, first)
        (second,) = [m for d, m in wait_markers(Path(job.run_root), 2).items() if d != first_dir]
        codes.append(Proc(second["pid"]))
        _kill_worker_of(dask_cluster, second)
        result = result_of(executor)
        assert result.status == "worker_lost", result
        assert result.run_dir is None and "died twice" in (result.error or "")
        wait_gone(codes)
    finally:
        executor.close()


@pytest.mark.dask
def test_scheduler_lost_mid_run_abandons_the_job_and_stops_the_pass(
    private_dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    from dbproc.executors.dask import DaskExecutor, SchedulerLost

    executor = DaskExecutor(private_dask_cluster.address, timeout=2)
    try:
        job = spec(tmp_path, "hang", "alone")
        executor.submit(job)
        (marker,) = wait_markers(Path(job.run_root), 1).values()
        code = Proc(marker["pid"])
        private_dask_cluster.scheduler.kill()
        private_dask_cluster.scheduler.wait()
        result = result_of(executor)
        assert result.status == "cancelled" and "dropped the job" in (result.error or ""), result
        wait_gone([code])  # its worker went with the scheduler, the code with its worker
        with pytest.raises(SchedulerLost, match="lost the Dask scheduler"):
            executor.submit(spec(tmp_path, "fail"))
    finally:
        executor.close()


@pytest.mark.dask
def test_missions_sharing_a_scheduler_get_their_own_results(
    dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    """Run ids repeat across databases; Dask keys are global to the scheduler."""
    from dbproc.executors.dask import DaskExecutor

    executors = [DaskExecutor(dask_cluster.address) for _ in "ab"]
    try:
        jobs = [
            JobSpec(
                1,
                1,
                (sys.executable, str(JOB), "write", f"mission {name}"),
                str(tmp_path / name / "run-1"),
                output_name="out.txt",
            )
            for name in "ab"
        ]
        for executor, job in zip(executors, jobs, strict=True):
            executor.submit(job)
        for executor, job, name in zip(executors, jobs, "ab", strict=True):
            result = result_of(executor)
            assert result.ok and result.run_dir is not None, result
            assert Path(result.run_dir).parent == Path(job.run_root)
            assert (Path(result.run_dir) / "out.txt").read_text() == f"mission {name}\n"
    finally:
        for executor in executors:
            executor.close()
