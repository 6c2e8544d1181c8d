"""Fixtures for the executor tests: a real Dask cluster on loopback, and executors.

The cluster is started once per test session, only when a test asks for it, and killed at
the end. Dask tests skip when dask.distributed is not installed; when it is installed but
the cluster cannot start, they skip too, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dbproc.executors.base import Executor
from tests.executors.cluster import DaskCluster

EXECUTORS = ["local", pytest.param("dask", marks=pytest.mark.dask)]
MakeExecutor = Callable[..., Executor]


def require_dask() -> None:
    """Skip when dask.distributed is not installed."""
    if importlib.util.find_spec("distributed") is None:
        pytest.skip("dask.distributed is not installed (pip install 'dbproc[dask]')")


@pytest.fixture(scope="session")
def dask_cluster_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Holds the session's cluster once some test started it; kills it at the end."""
    holder: dict[str, object] = {"folder": tmp_path_factory.mktemp("dask-cluster")}
    yield holder
    cluster = holder.get("cluster")
    if isinstance(cluster, DaskCluster):
        cluster.stop()


@pytest.fixture
def dask_cluster(dask_cluster_session: dict[str, object]) -> DaskCluster:
    """The session's cluster (started on first use), with two live workers."""
    require_dask()
    if "error" in dask_cluster_session:
        _no_cluster(str(dask_cluster_session["error"]))
    cluster = dask_cluster_session.get("cluster")
    if not isinstance(cluster, DaskCluster):
        folder = dask_cluster_session["folder"]
        assert isinstance(folder, Path)
        try:
            cluster = DaskCluster(folder)
        except Exception as exc:  # noqa: BLE001 - reported as a skip or (CI) a failure
            dask_cluster_session["error"] = f"could not start a Dask cluster: {exc}"
            _no_cluster(str(dask_cluster_session["error"]))
        dask_cluster_session["cluster"] = cluster
    cluster.ensure_workers()
    return cluster


@pytest.fixture
def private_dask_cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    """A cluster of this test's own, for tests that kill its scheduler."""
    require_dask()
    try:
        cluster = DaskCluster(tmp_path / "private-cluster")
    except Exception as exc:  # noqa: BLE001 - reported as a skip or (CI) a failure
        _no_cluster(f"could not start a Dask cluster: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


def _no_cluster(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(params=EXECUTORS)
def executor_kind(request: pytest.FixtureRequest) -> str:
    """``local`` or ``dask``, in turn."""
    return str(request.param)


@pytest.fixture
def make_executor(executor_kind: str, request: pytest.FixtureRequest) -> Iterator[MakeExecutor]:
    """Build executors of the current kind (two slots by default); all closed at teardown."""
    made: list[Executor] = []

    def make(jobs: int | None = None) -> Executor:
        executor: Executor
        if executor_kind == "local":
            from dbproc.executors.local import LocalExecutor

            executor = LocalExecutor(jobs or 2)
        else:
            cluster = request.getfixturevalue("dask_cluster")
            from dbproc.executors.dask import DaskExecutor

            executor = DaskExecutor(cluster.address, jobs=jobs)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.close(cancel_pending=True)
