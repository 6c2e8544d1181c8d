"""A real single-node Slurm on localhost for tests: munged, slurmctld and slurmd.

Nothing is installed here (``scripts/test`` installs Debian's ``slurm-wlm`` and ``munge``).
Everything the daemons need lives in one folder of the test run: a munge key and socket, a
``slurm.conf`` generated for this machine (node name from ``hostname``, CPUs and memory from
``slurmd -C``), state and spool folders, logs and PID files. The daemons run in the
foreground as children of the test run (with a parent-death signal, so they die with it),
on ports chosen free at start; the system's own ``/etc/slurm`` and ``/run/munge`` are never
touched. Client commands (``sbatch``, ``squeue``, ``scancel``, and so dask-jobqueue) find
this Slurm through ``SLURM_CONF`` in :attr:`LocalSlurm.env`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from tests.executors.cluster import _dies_with_us, wait_for

#: the programs a local Slurm needs (from the Debian packages slurm-wlm and munge)
PROGRAMS = ("munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
START_SECONDS = 60.0  # a guard against hangs; the daemons are up in about two seconds
STOP_SECONDS = 30.0
PARTITION = "debug"


class SlurmError(RuntimeError):
    """The local Slurm did not come up."""


def missing_programs() -> list[str]:
    """The Slurm and munge programs not found on PATH (empty when all are there)."""
    return [p for p in PROGRAMS if shutil.which(p) is None]


def node_resources() -> dict[str, str]:
    """This node as ``slurmd -C`` sees it: NodeName, CPUs, RealMemory, ..."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    fields = {}
    for word in out.split():
        key, sep, value = word.partition("=")
        if sep:
            fields[key] = value
    return fields


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def slurm_conf(
    folder: Path,
    node: str,
    cpus: str,
    memory_mb: str,
    munge_socket: Path,
    ctld_port: int,
    slurmd_port: int,
) -> str:
    """A minimal slurm.conf: one node on 127.0.0.1, one partition, everything under folder."""
    return "\n".join(
        [
            "ClusterName=dbproctest",
            f"SlurmctldHost={node}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={munge_socket}",
            f"StateSaveLocation={folder / 'state'}",
            f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
            f"SlurmdPidFile={folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={folder / 'slurmctld.log'}",
            f"SlurmdLogFile={folder / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "ReturnToService=2",
            "JobAcctGatherType=jobacct_gather/none",
            "MpiDefault=none",
            f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


class LocalSlurm:
    """munged, slurmctld and slurmd on localhost, started from ``folder``; :meth:`stop`
    cancels every job and ends the three daemons."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        folder.mkdir(parents=True, exist_ok=True)
        for sub in ("state", "spool", "munge"):
            (folder / sub).mkdir(exist_ok=True)
        (folder / "munge").chmod(0o755)  # munged wants its socket folder reachable
        resources = node_resources()
        self.node = socket.gethostname().split(".")[0]
        self.cpus = int(resources.get("CPUs", "1"))
        self.munge_socket = folder / "munge" / "munge.socket"
        self.conf = folder / "slurm.conf"
        self.conf.write_text(
            slurm_conf(
                folder,
                self.node,
                str(self.cpus),
                resources.get("RealMemory", "1000"),
                self.munge_socket,
                free_port(),
                free_port(),
            )
        )
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        try:
            self._start_munge()
            self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
            self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf)])
            wait_for(self._node_idle, START_SECONDS, f"Slurm node {self.node} to be idle")
        except BaseException:
            self.stop()
            raise

    def _start_munge(self) -> None:
        key = self.folder / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
            key.chmod(0o400)
        # --force: the test run's temporary folders are not reachable by other users,
        # which munged would otherwise refuse for its socket.
        self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={self.folder / 'munge' / 'munged.pid'}",
                f"--log-file={self.folder / 'munge' / 'munged.log'}",
                f"--seed-file={self.folder / 'munge' / 'munged.seed'}",
            ],
        )
        wait_for(
            lambda: self.munge_socket.exists() or self._exited("munged"),
            START_SECONDS,
            "munged to open its socket",
        )
        if self._exited("munged"):
            raise SlurmError(f"munged exited: {self.log('munged')}")

    def _spawn(self, name: str, argv: list[str]) -> None:
        with (self.folder / f"{name}.out").open("wb") as out:
            self.processes[name] = subprocess.Popen(
                [*_dies_with_us(), *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env=self.env,
                start_new_session=True,
            )

    def _exited(self, name: str) -> bool:
        return self.processes[name].poll() is not None

    def _node_idle(self) -> bool:
        for name in self.processes:
            if self._exited(name):
                raise SlurmError(f"{name} exited: {self.log(name)}")
        state = subprocess.run(
            ["sinfo", "--noheader", "--format=%T", f"--nodes={self.node}"],
            capture_output=True,
            text=True,
            env=self.env,
        )
        return state.returncode == 0 and state.stdout.strip() == "idle"

    def log(self, name: str) -> str:
        """The last lines a daemon wrote (its own log file, else its output)."""
        lines: list[str] = []
        for path in (
            self.folder / f"{name}.log",
            self.folder / "munge" / f"{name}.log",
            self.folder / f"{name}.out",
        ):
            try:
                lines += path.read_text(errors="replace").splitlines()[-10:]
            except OSError:
                continue
        return "\n".join(lines) or "(no log)"

    def pid_file(self, name: str) -> Path:
        """Where the daemon ``name`` writes its PID."""
        if name == "munged":
            return self.folder / "munge" / "munged.pid"
        return self.folder / f"{name}.pid"

    def jobs(self) -> list[str]:
        """IDs of the jobs this Slurm has queued or running."""
        out = subprocess.run(
            ["squeue", "--noheader", "--format=%i"], capture_output=True, text=True, env=self.env
        )
        return out.stdout.split() if out.returncode == 0 else []

    def stop(self) -> None:
        """Cancel every job, wait for the jobs to go, then end slurmd, slurmctld, munged."""
        if "slurmctld" in self.processes and not self._exited("slurmctld"):
            subprocess.run(
                ["scancel", "--full", f"--partition={PARTITION}"], capture_output=True, env=self.env
            )
            try:
                wait_for(lambda: not self.jobs(), STOP_SECONDS, "the Slurm jobs to end")
            except AssertionError:
                pass  # the daemons go anyway; their job steps were signalled
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.get(name)
            if process is None:
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
