"""Shared pieces of the benchmarks: scratch databases, running dbproc with its own CPU and
memory measured, and printing tables.

Every dbproc command is run as a subprocess through a tiny launcher (``LAUNCHER``) that
imports ``dbproc.cli`` and, at exit, writes ``getrusage(RUSAGE_SELF)`` (the controller
process alone, all its threads) and ``getrusage(RUSAGE_CHILDREN)`` (the codes it ran and
waited for) to a JSON file. Wall time is measured around the subprocess by the caller, so
it includes interpreter start-up and imports, as a cron job would pay them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL",
    os.environ.get(
        "DBPROC_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
    ),
)
BACKENDS = ("sqlite", "postgresql")

LAUNCHER = r"""
import atexit, json, os, resource, sys
out = sys.argv[1]
sys.argv = ["dbproc", *sys.argv[2:]]
profile = os.environ.get("BENCH_PROFILE")
profiler = None
if profile:
    from pyinstrument import Profiler
    profiler = Profiler(interval=0.001)
    profiler.start()
def dump():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    # ru_maxrss also counts the forked copy of the parent before exec: read this mm's own
    hwm = me.ru_maxrss
    try:
        with open("/proc/self/status") as fh:
            hwm = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        pass
    with open(out, "w") as fh:
        json.dump({"self_cpu": me.ru_utime + me.ru_stime, "self_user": me.ru_utime,
                   "self_sys": me.ru_stime, "children_cpu": kids.ru_utime + kids.ru_stime,
                   "maxrss_kb": hwm}, fh)
    if profiler is not None:
        profiler.stop()
        with open(profile, "w") as fh:
            fh.write(profiler.output_text(unicode=False, color=False, show_all=False))
atexit.register(dump)
from dbproc.cli import main
main()
"""


@dataclass
class Measured:
    """One dbproc command: wall seconds, the controller's own CPU, its children's CPU,
    its peak RSS, exit code and output."""

    args: list[str]
    wall: float
    rc: int
    self_cpu: float = float("nan")
    children_cpu: float = float("nan")
    maxrss_kb: int = 0
    stdout: str = ""
    stderr: str = ""

    def json_out(self) -> Any:
        """stdout parsed as JSON."""
        return json.loads(self.stdout)

    def as_dict(self) -> dict[str, Any]:
        """For the results file (without the output)."""
        return {
            "args": self.args,
            "wall_s": round(self.wall, 4),
            "rc": self.rc,
            "controller_cpu_s": round(self.self_cpu, 4),
            "children_cpu_s": round(self.children_cpu, 4),
            "peak_rss_kb": self.maxrss_kb,
        }


def dbproc(
    db: str,
    *args: str,
    timeout: float | None = None,
    profile: Path | None = None,
    check: bool = True,
) -> Measured:
    """Run ``dbproc ARGS`` against ``db`` and measure it (see module docstring)."""
    fd, usage_path = tempfile.mkstemp(prefix="bench-rusage-", suffix=".json")
    os.close(fd)
    env = {**os.environ, "DBPROC_DB": db}
    if profile is not None:
        env["BENCH_PROFILE"] = str(profile)
    else:
        env.pop("BENCH_PROFILE", None)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [PYTHON, "-c", LAUNCHER, usage_path, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        os.unlink(usage_path)
        return Measured(list(args), time.perf_counter() - started, -9, stderr="timeout")
    wall = time.perf_counter() - started
    result = Measured(list(args), wall, proc.returncode, stdout=proc.stdout, stderr=proc.stderr)
    try:
        usage = json.loads(Path(usage_path).read_text() or "{}")
        result.self_cpu = usage["self_cpu"]
        result.children_cpu = usage["children_cpu"]
        result.maxrss_kb = int(usage["maxrss_kb"])
    except (OSError, ValueError, KeyError):
        pass
    finally:
        os.unlink(usage_path)
    if check and proc.returncode != 0:
        raise BenchError(
            f"dbproc {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
        )
    return result


class BenchError(RuntimeError):
    """A benchmark could not run as intended (the message says why)."""


# -- scratch databases --------------------------------------------------------------------


def postgres_reachable() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "skip PostgreSQL"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


@contextmanager
def scratch_db(backend: str, workdir: Path) -> Iterator[str]:
    """A fresh empty database URL for ``backend``; a PostgreSQL one is dropped afterwards."""
    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.sqlite"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm", ".lock"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine, make_url, text

    name = f"bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def workdir(prefix: str, under: Path | None = None) -> Iterator[Path]:
    """A temporary folder (in ``under``, else the system's), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"dbproc-bench-{prefix}-", dir=under))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def backdate(paths: Sequence[Path], seconds: float = 3600.0) -> None:
    """Make files look delivered ``seconds`` ago (so ingest takes them without the
    settle check, as a cron pass does for files that arrived between two passes)."""
    when = time.time() - seconds
    for p in paths:
        os.utime(p, (when, when))


# -- output -------------------------------------------------------------------------------


@dataclass
class Table:
    """A plain-text table with a title and optional notes."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *values: Any) -> None:
        """Append a row."""
        self.rows.append(list(values))

    def render(self) -> str:
        """The table as text."""
        cells = [[fmt(v) for v in row] for row in self.rows]
        widths = [
            max([len(c)] + [len(r[i]) for r in cells if i < len(r)])
            for i, c in enumerate(self.columns)
        ]
        line = "  ".join("-" * w for w in widths)
        head = "  ".join(c.rjust(w) for c, w in zip(self.columns, widths, strict=True))
        out = [f"== {self.title}", head, line]
        out += ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=False)) for r in cells]
        out += [f"   {n}" for n in self.notes]
        return "\n".join(out)

    def as_dict(self) -> dict[str, Any]:
        """For the results file."""
        return {
            "title": self.title, "columns": self.columns, "rows": self.rows, "notes": self.notes
        }


def fmt(value: Any) -> str:
    """Numbers with sensible precision; anything else as text."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ") if abs(value) >= 10000 else str(value)
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3f}"
    return str(value)


def loadavg() -> float:
    """The 1-minute load average now (the machine is shared: record it with each figure)."""
    return round(os.getloadavg()[0], 2)


def say(text: str) -> None:
    """Progress to stderr, so stdout holds only the tables."""
    print(text, file=sys.stderr, flush=True)
