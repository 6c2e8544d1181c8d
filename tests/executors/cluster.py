"""A real Dask cluster on 127.0.0.1 for tests, and helpers to watch real processes.

The cluster is a ``dask scheduler`` and ``dask worker --no-nanny --nthreads 1`` processes
started as subprocesses of the test run. Without a nanny, the process we start *is* the
worker: killing it kills the worker for good (nothing restarts it behind the test's back),
and the codes it runs are its direct children. :meth:`DaskCluster.ensure_workers` brings the
cluster back to two workers before each test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORKERS = 2
START_SECONDS = 60.0  # a generous limit against hangs; the cluster starts in about a second
# Even without a dashboard, each process serves HTTP (health, metrics): on loopback only.
LOOPBACK_HTTP = ["--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def _dies_with_us() -> list[str]:
    # Should the test run itself be killed, the kernel kills the cluster too.
    return [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []


class ClusterError(RuntimeError):
    """The test cluster did not come up."""


class DaskCluster:
    """A scheduler and its workers, each a process this test run started."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        # allowed-failures is left at Dask's default (3) on purpose: the executor must set 1.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
        self.workers: list[subprocess.Popen[bytes]] = []
        self._started = 0
        self._names: dict[int, str] = {}
        scheduler_file = folder / "scheduler.json"
        scheduler_file.unlink(missing_ok=True)
        self.scheduler = self._spawn(
            "scheduler",
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                *LOOPBACK_HTTP,
                "--scheduler-file",
                str(scheduler_file),
            ],
        )
        try:
            wait_for(
                lambda: scheduler_file.exists() or self.scheduler.poll() is not None,
                START_SECONDS,
                "the scheduler to write its address",
            )
            if self.scheduler.poll() is not None:
                raise ClusterError(f"dask scheduler exited: {self.log('scheduler')}")
            self.address: str = json.loads(scheduler_file.read_text())["address"]
            from distributed import Client

            self.client = Client(self.address, timeout=START_SECONDS, set_as_default=False)
            self.ensure_workers()
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("wb") as log:
            return subprocess.Popen(
                [*_dies_with_us(), sys.executable, "-m", "dask", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env=self.env,
                start_new_session=True,
            )

    def log(self, name: str) -> str:
        """The last lines a cluster process wrote."""
        try:
            return "\n".join((self.folder / f"{name}.log").read_text().splitlines()[-20:])
        except OSError:
            return "(no log)"

    def worker_pids(self) -> set[int]:
        """PIDs of the workers still running."""
        return {w.pid for w in self.workers if w.poll() is None}

    def worker_of(self, ppid: int) -> int | None:
        """The worker a code runs under: its parent, or the parent of its small launcher
        (GNU time forks the code to measure its own peak memory)."""
        workers = self.worker_pids()
        for _ in range(3):
            if ppid in workers:
                return ppid
            try:
                stat = Path(f"/proc/{ppid}/stat").read_bytes()
                ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
            except (OSError, ValueError, IndexError):
                return None
        return None

    def scheduler_worker_names(self) -> set[str]:
        """Names of the workers the scheduler knows."""
        info = self.client.scheduler_info()
        return {str(w["name"]) for w in info["workers"].values()}

    def ensure_workers(self, count: int = WORKERS) -> None:
        """Replace dead workers until ``count`` run and the scheduler knows exactly them."""
        for worker in [w for w in self.workers if w.poll() is not None]:
            self.workers.remove(worker)
        while len(self.workers) < count:
            name = f"worker{self._started}"
            self._started += 1
            worker = self._spawn(
                name,
                [
                    "worker",
                    self.address,
                    "--name",
                    name,
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--host",
                    "127.0.0.1",
                    *LOOPBACK_HTTP,
                    "--memory-limit",
                    "0",
                    "--local-directory",
                    str(self.folder / name),
                    "--death-timeout",
                    "30",
                ],
            )
            self._names[worker.pid] = name
            self.workers.append(worker)

        def ready() -> bool:
            for worker in self.workers:
                if worker.poll() is not None:
                    raise ClusterError(f"a dask worker exited: {self.log(self._names[worker.pid])}")
            return self.scheduler_worker_names() == {self._names[w.pid] for w in self.workers}

        wait_for(ready, START_SECONDS, f"{count} dask workers")

    def run_on_scheduler(self, function: Callable[..., Any]) -> Any:
        """Run ``function(dask_scheduler=...)`` in the scheduler process."""
        return self.client.run_on_scheduler(function)

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one of our workers and reap it."""
        worker = next(w for w in self.workers if w.pid == pid)
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    def stop(self) -> None:
        """Kill every process of the cluster (and close our client)."""
        client = getattr(self, "client", None)
        if client is not None:
            try:
                client.close(timeout=10)
            except Exception:  # noqa: BLE001 - the processes go anyway
                pass
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            process.wait()


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` until true; fail after ``seconds`` (only a guard against hangs)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {seconds:g} s")
        time.sleep(0.02)


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


class Proc:
    """A process identified by pid *and* start time, so a reused pid is not mistaken."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.started = start_time(pid)
        assert self.started is not None, f"process {pid} is not running"

    def alive(self) -> bool:
        """Running (not gone, not a zombie, not another process with the same pid)."""
        return start_time(self.pid) == self.started

    def __repr__(self) -> str:
        return f"Proc({self.pid})"


def wait_gone(processes: list[Proc], seconds: float = 30.0) -> None:
    """Fail unless every process has ended within ``seconds`` (a guard against hangs)."""
    try:
        wait_for(lambda: not any(p.alive() for p in processes), seconds, "the processes to end")
    except AssertionError:
        survivors = [p for p in processes if p.alive()]
        for p in survivors:  # do not leave them behind
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        raise AssertionError(f"still running: {survivors}") from None


def markers(run_root: Path) -> dict[Path, dict[str, Any]]:
    """pids.json of every execution under a run root, by run folder."""
    found = {}
    for path in sorted(run_root.glob("run-*/pids.json")):
        found[path.parent] = json.loads(path.read_text())
    return found


def wait_markers(run_root: Path, count: int, seconds: float = 60.0) -> dict[Path, dict[str, Any]]:
    """Wait until ``count`` executions under ``run_root`` wrote pids.json; return them."""
    wait_for(
        lambda: len(markers(run_root)) >= count,
        seconds,
        f"{count} execution(s) to start under {run_root}",
    )
    return markers(run_root)
