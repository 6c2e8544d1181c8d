"""`dbproc run` with the Dask executor, end to end, on SQLite and PostgreSQL.

Each test runs the example mission through the real CLI against the loopback cluster of
conftest.py, and counts on the scheduler (its transition log) that the runs went there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dbproc.examples import write_example
from tests.executors.cluster import DaskCluster, Proc, wait_for, wait_gone
from tests.helpers import CliHarness, edit_mission, use_test_code

pytestmark = pytest.mark.dask
JOB = Path(__file__).resolve().parent / "codes" / "job.py"
CHAIN = {"runs": 12, "succeeded": 12}


def dask_runs(cluster: DaskCluster) -> set[str]:
    """Keys of dbproc runs that the scheduler has seen finish."""
    keys = cluster.run_on_scheduler(
        lambda dask_scheduler: sorted(
            {
                str(t.key)
                for t in dask_scheduler.transition_log
                if str(t.key).startswith("dbproc-run-") and t.finish == "memory"
            }
        )
    )
    return set(keys)


def catalogue(cli: CliHarness) -> dict[str, tuple[Any, ...]]:
    """Every registered file: product, date, version and content, by filename."""
    return {
        f["filename"]: (
            f["product"],
            f["date"],
            f["version"],
            f["newest"],
            Path(f["path"]).read_bytes(),
        )
        for f in cli.json("files", "--all-versions")
    }


def on_dask(cluster: DaskCluster) -> tuple[str, ...]:
    return ("--executor", "dask", "--scheduler", cluster.address)


def staged_runs(cli: CliHarness) -> list[Path]:
    return list((cli.root / ".dbproc-staging").glob("run-*"))


@pytest.fixture(scope="module")
def built_locally(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[str]]:
    """The example mission built by the local executor: its catalogue and its L2 log."""
    folder = tmp_path_factory.mktemp("local")
    local = CliHarness(str(folder / "local.sqlite"), write_example(folder / "mission"))
    local.ok("config", "apply", str(local.mission_file))
    assert local.json("run")["process"]["counts"] == CHAIN
    return catalogue(local), sorted((local.root / "L2-log.txt").read_text().splitlines())


def test_chain_on_dask_matches_the_local_executor(
    applied: CliHarness, dask_cluster: DaskCluster, built_locally: tuple[dict[str, Any], list[str]]
) -> None:
    before = dask_runs(dask_cluster)
    report = applied.json("run", *on_dask(dask_cluster))
    assert report["exit_code"] == 0
    assert report["process"]["counts"] == CHAIN
    assert len(dask_runs(dask_cluster) - before) == 12
    files, log = built_locally
    assert catalogue(applied) == files
    assert sorted((applied.root / "L2-log.txt").read_text().splitlines()) == log
    assert not staged_runs(applied)
    again = applied.json("run", *on_dask(dask_cluster))
    assert again["exit_code"] == 0 and again["process"]["counts"] == {"runs": 0}


def test_failing_code_on_dask_exits_3_and_keeps_its_log(
    applied: CliHarness, dask_cluster: DaskCluster
) -> None:
    use_test_code(applied, "L0_to_L1", "fail", when="20160102")
    result = applied.run("--json", "run", *on_dask(dask_cluster))
    assert result.exit_code == 3, result.output
    (failed,) = applied.json("runs", "--failed")
    assert failed["date"] == "2016-01-02" and failed["status"] == "failed"
    assert failed["exit_code"] == 7 and "boom" in failed["stderr_tail"]
    text = (applied.errors / "runs" / str(failed["id"]) / "run.log").read_text()
    assert "exit status 7" in text and "boom: cannot calibrate 20160102" in text
    assert "working on 20160102" in text
    products = [f["product"] for f in applied.json("files")]
    assert products.count("L1") == 3 and products.count("L2") == 3
    assert not staged_runs(applied)


SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # backend-blind


@SQLITE_ONLY
def test_execution_table_of_the_mission_selects_dask(
    applied: CliHarness, dask_cluster: DaskCluster
) -> None:
    edit_mission(
        applied.mission_file,
        lambda doc: doc.update(execution={"executor": "dask", "scheduler": dask_cluster.address}),
    )
    applied.ok("config", "apply", str(applied.mission_file))
    before = dask_runs(dask_cluster)
    report = applied.json("run")
    assert report["exit_code"] == 0 and report["process"]["counts"] == CHAIN
    assert len(dask_runs(dask_cluster) - before) == 12


def slow_first_time(cli: CliHarness) -> None:
    """L0_to_L1 of 2016-01-02 hangs in the first execution that starts it, in any pass."""
    shutil.copy(JOB, cli.mission_dir / "codes" / "scripts" / "job.py")
    edit_mission(
        cli.mission_file,
        lambda doc: doc["processes"]["L0_to_L1"]["code"].update(
            path="scripts/job.py", args=["concat-once", "{DATE}", "20160102", "{ROOTDIR}/slow-once"]
        ),
    )
    cli.ok("config", "apply", str(cli.mission_file))


def start_pass(cli: CliHarness, cluster: DaskCluster) -> subprocess.Popen[bytes]:
    """`dbproc run` on the cluster in a process of its own (and its own process group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "dbproc", "--db", cli.db, "run", *on_dask(cluster), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def slow_execution(cli: CliHarness) -> dict[str, Any]:
    """pids.json of the hanging execution, once it runs."""
    staging = cli.root / ".dbproc-staging"

    def markers() -> list[Path]:
        try:  # finished runs' folders are removed (in the background) while we look
            return list(staging.glob("run-*/run-*/pids.json"))
        except FileNotFoundError:
            return []

    found: list[Path] = []

    def one() -> bool:
        found[:] = markers()
        return len(found) == 1

    wait_for(one, 60, "the slow execution")
    (marker_file,) = found
    marker: dict[str, Any] = json.loads(marker_file.read_text())
    return marker


def check_chain_built_once(cli: CliHarness) -> None:
    """Each L1 and L2 registered once, every L0_to_L1 date finally built, nothing staged."""
    files = cli.json("files", "--all-versions")
    l1 = sorted(f["filename"] for f in files if f["product"] == "L1")
    assert l1 == [f"testDB_2016010{d}_v1.0.0.cat" for d in range(1, 5)]
    assert len([f for f in files if f["product"] == "L2"]) == 4
    runs = cli.json("runs", "--process", "L0_to_L1", "--status", "succeeded", "--limit", "0")
    assert sorted(r["date"] for r in runs) == [f"2016-01-0{d}" for d in range(1, 5)]
    assert not staged_runs(cli)


def test_worker_killed_during_a_pass_builds_each_output_once(
    applied: CliHarness, dask_cluster: DaskCluster
) -> None:
    """The killed execution's code dies with its worker; the re-run's output is the one kept."""
    slow_first_time(applied)
    pass_ = start_pass(applied, dask_cluster)
    try:
        marker = slow_execution(applied)
        orphan = Proc(marker["pid"])
        worker = dask_cluster.worker_of(marker["ppid"])
        assert worker is not None
        dask_cluster.kill_worker(worker)
        wait_gone([orphan])
        out, err = pass_.communicate(timeout=120)
    finally:
        if pass_.poll() is None:
            os.killpg(pass_.pid, signal.SIGKILL)
            pass_.wait()
    assert pass_.returncode == 0, err.decode()
    assert json.loads(out)["process"]["counts"] == CHAIN
    runs = applied.json("runs", "--process", "L0_to_L1", "--limit", "0")
    assert {r["status"] for r in runs} == {"succeeded"} and len(runs) == 4
    check_chain_built_once(applied)


def test_controller_killed_mid_pass_stops_its_codes(
    applied: CliHarness, dask_cluster: DaskCluster
) -> None:
    """The scheduler drops the dead client's tasks; their workers stop the codes; the next
    pass recovers and builds everything."""
    slow_first_time(applied)
    pass_ = start_pass(applied, dask_cluster)
    try:
        code = Proc(slow_execution(applied)["pid"])
    finally:
        os.killpg(pass_.pid, signal.SIGKILL)
        pass_.wait()
    wait_gone([code])
    report = applied.json("run", *on_dask(dask_cluster))
    assert report["exit_code"] == 0
    abandoned = applied.json("runs", "--status", "abandoned")
    assert "2016-01-02" in [r["date"] for r in abandoned if r["process"] == "L0_to_L1"]
    check_chain_built_once(applied)


@pytest.mark.parametrize(
    ("address", "code", "message"),
    ids=["refused", "bad-scheme"],
    argvalues=[
        (
            "tcp://127.0.0.1:1",
            2,
            "cannot reach the Dask scheduler at tcp://127.0.0.1:1: Connection refused",
        ),
        ("nonsense://x", 2, "bad Dask scheduler address 'nonsense://x'"),
    ],
)
@SQLITE_ONLY
def test_unusable_scheduler_is_a_clear_error(
    applied: CliHarness, address: str, code: int, message: str
) -> None:
    pytest.importorskip("distributed")
    result = applied.run("process", "--executor", "dask", "--scheduler", address)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert applied.json("status")["lock"]["held"] is False
