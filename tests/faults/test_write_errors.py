"""Write errors (ENOSPC, EIO) while a pass places files, and a database that fills up.

In-process passes get ``os.link``, ``os.fsync`` or ``os.write`` replaced by a version that
raises at its n-th call on a file of the mission (the n are spread over the ingest steps
and the job-commit steps: the directory fsync before a link, the file fsync, the link,
the directory fsync after it, the fsync of incoming after the unlink, a code output's
fsync before ``promoting``...). A subprocess pass runs under ``RLIMIT_FSIZE`` so that
SQLite itself cannot grow its files (EFBIG: "database or disk is full").

After the failing pass: it exited non-zero; every incoming file is intact in incoming or
registered and placed; no product folder holds a file without its record (nothing
partial, nothing unregistered); the records match the disk; the lock is free. After a
later pass (the disk is fine again): everything is built exactly as an uninterrupted run
builds it, and every invariant holds.
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dbproc.examples import write_example
from tests.faults.invariants import assert_consistent, incoming_files, newest_content
from tests.faults.procs import dbproc_argv
from tests.helpers import CliHarness, edit_mission


class Fault:
    """Make ``os.<name>`` raise ``OSError(err)`` at its ``n``-th call on a file under
    ``folder`` (with ``every``: at that call and every later one)."""

    def __init__(self, name: str, n: int, err: int, folder: Path, *, every: bool = False) -> None:
        self.name, self.n, self.err, self.folder = name, n, err, str(folder)
        self.every = every
        self.calls = 0
        self.fired: str | None = None

    def _target(self, args: tuple[Any, ...]) -> str:
        if self.name == "link":
            return str(args[1])
        try:
            return os.readlink(f"/proc/self/fd/{args[0]}")
        except OSError:
            return ""

    def wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def faulty(*args: Any, **kwargs: Any) -> Any:
            target = self._target(args)
            if target.startswith(self.folder):
                self.calls += 1
                if self.calls == self.n or (self.every and self.calls > self.n):
                    self.fired = target
                    raise OSError(self.err, os.strerror(self.err))
            return real(*args, **kwargs)

        return faulty


@contextmanager
def injected(monkeypatch: pytest.MonkeyPatch, fault: Fault) -> Iterator[Fault]:
    with monkeypatch.context() as patch:
        patch.setattr(os, fault.name, fault.wrap(getattr(os, fault.name)))
        yield fault


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str], str]:
    """What an uninterrupted run makes: the bytes of the newest file of each identity."""
    folder = tmp_path_factory.mktemp("reference")
    cli = CliHarness(str(folder / "ref.sqlite"), write_example(folder / "mission"))
    cli.ok("config", "apply", str(cli.mission_file))
    cli.ok("run")
    return newest_content(cli)


ENOSPC, EIO = errno.ENOSPC, errno.EIO
#: (call, n, errno, where, what the n-th call on a file under the mission's ``where``
#: folder is in the example's pass). Ingest runs alone in the main thread; during the
#: jobs, outputs are fsynced on the executor's threads, so those faults count calls in
#: one folder only, whose order does not depend on thread timing.
SCENARIOS = [
    ("link", 1, ENOSPC, "", "ingest: the first link into L0"),
    ("link", 4, EIO, "", "ingest: the fourth link into L0"),
    ("link", 7, ENOSPC, "", "job: the first output linked into L1"),
    ("fsync", 1, ENOSPC, "", "ingest: the new folder L0, before the links"),
    ("fsync", 2, EIO, "", "ingest: the first incoming file, before its link"),
    ("fsync", 8, EIO, "", "ingest: the product folder, after the batch's links"),
    ("fsync", 9, EIO, "", "ingest: incoming, after the batch's unlinks"),
    ("fsync", 1, ENOSPC, "data/.dbproc-staging", "job: a code's output, before promoting"),
    ("fsync", 1, EIO, "data/L2", "job: the new folder L2/2016, before the first L2 link"),
    ("fsync", 3, EIO, "data/L2", "job: the product folder L2/2016/01, after the link"),
]
PG_SCENARIOS = {
    ("link", 7, ""),
    ("fsync", 8, ""),
    ("fsync", 1, "data/.dbproc-staging"),
    ("fsync", 3, "data/L2"),
}


def _params() -> list[Any]:
    out = []
    for call, n, err, where, _what in SCENARIOS:
        name = f"{call}{n}-{errno.errorcode[err]}" + (f"-{Path(where).name}" if where else "")
        out.append(pytest.param("sqlite", call, n, err, where, id=f"sqlite-{name}"))
        if (call, n, where) in PG_SCENARIOS:
            out.append(
                pytest.param(
                    "postgresql",
                    call,
                    n,
                    err,
                    where,
                    id=f"postgresql-{name}",
                    marks=pytest.mark.postgres,
                )
            )
    return out


@pytest.fixture
def backend_cli(request: pytest.FixtureRequest, tmp_path: Path) -> CliHarness:
    from tests.conftest import drop_pg_schema, make_pg_schema_url

    if request.node.callspec.params["backend"] == "sqlite":
        db = str(tmp_path / "mission.sqlite")
    else:
        db, schema = make_pg_schema_url()
        request.addfinalizer(lambda: drop_pg_schema(schema))
    cli = CliHarness(db, write_example(tmp_path / "mission"))
    cli.ok("config", "apply", str(cli.mission_file))
    return cli


def _after_failure_then_repair(
    cli: CliHarness, originals: dict[str, str], reference: dict[tuple[str, str, str], str]
) -> None:
    assert_consistent(cli, originals, settled=False)
    later = cli.run("--json", "run")
    assert later.exit_code == 0, later.output
    assert_consistent(cli, originals)
    # what an ingest error kept out was built without it, then rebuilt with it: the
    # newest files are what an uninterrupted run makes
    assert newest_content(cli) == reference


@pytest.mark.parametrize(("backend", "call", "n", "err", "where"), _params())
def test_write_error_during_a_pass(
    backend_cli: CliHarness,
    monkeypatch: pytest.MonkeyPatch,
    reference: dict[tuple[str, str, str], str],
    backend: str,
    call: str,
    n: int,
    err: int,
    where: str,
) -> None:
    cli = backend_cli
    originals = incoming_files(cli)
    with injected(monkeypatch, Fault(call, n, err, cli.mission_dir / where)) as fault:
        result = cli.run("--json", "run")
    assert fault.fired, f"os.{call} was called only {fault.calls} times"
    assert result.exit_code == 3, result.output
    assert os.strerror(err) in result.output
    assert "Traceback" not in result.output
    _after_failure_then_repair(cli, originals, reference)


@pytest.mark.parametrize("n", [1, 3])
def test_write_error_copying_from_another_filesystem(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reference: dict[tuple[str, str, str], str],
    n: int,
) -> None:
    """Incoming on another filesystem (tmpfs): files are copied into staging with
    os.write; ENOSPC in the middle of a copy leaves no partial file anywhere. (SQLite
    only: the database plays no part in the copy.)"""
    applied = CliHarness(str(tmp_path / "mission.sqlite"), write_example(tmp_path / "mission"))
    applied.ok("config", "apply", str(applied.mission_file))
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(applied.root).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test folder")
    elsewhere = Path(os.environ.get("DBPROC_TEST_SHM", str(shm))) / f"in-{os.getpid()}-{n}"
    elsewhere.mkdir()
    try:
        for f in applied.incoming.iterdir():
            (elsewhere / f.name).write_bytes(f.read_bytes())
            os.utime(elsewhere / f.name, (f.stat().st_atime, f.stat().st_mtime))
            f.unlink()
        edit_mission(
            applied.mission_file, lambda doc: doc["mission"].update(incoming=str(elsewhere))
        )
        applied.ok("config", "apply", str(applied.mission_file))
        applied.incoming = elsewhere
        originals = incoming_files(applied)
        with injected(monkeypatch, Fault("write", n, errno.ENOSPC, applied.root)) as fault:
            result = applied.run("--json", "run")
        assert fault.fired and "/.dbproc-staging/" in fault.fired
        assert result.exit_code == 3, result.output
        _after_failure_then_repair(applied, originals, reference)
    finally:
        for f in elsewhere.iterdir():
            f.unlink()
        elsewhere.rmdir()


@pytest.mark.parametrize("limit_kib", [200, 600, 1000])  # in ingest, early and late jobs
def test_database_that_cannot_grow_fails_the_pass_and_the_next_repairs(
    tmp_path: Path, reference: dict[tuple[str, str, str], str], limit_kib: int
) -> None:
    """RLIMIT_FSIZE stops every file of the pass from growing past the limit: SQLite's
    database and write-ahead log (EFBIG: 'database or disk is full'), the codes' outputs
    and logs. The pass fails wherever that happens first; the next pass repairs."""
    applied = CliHarness(str(tmp_path / "mission.sqlite"), write_example(tmp_path / "mission"))
    applied.ok("config", "apply", str(applied.mission_file))
    originals = incoming_files(applied)
    limit = limit_kib * 1024

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    failed = subprocess.run(
        dbproc_argv(applied, "run"), capture_output=True, timeout=120, preexec_fn=cap
    )
    stderr = failed.stderr.decode(errors="replace")
    assert failed.returncode in (1, 3), stderr
    assert "Traceback" not in stderr
    assert "disk I/O error" in stderr or "full" in stderr
    later = applied.run("--json", "run")
    assert later.exit_code == 0, later.output
    assert_consistent(applied, originals)
    assert newest_content(applied) == reference


def test_output_that_cannot_be_placed_stays_promoting_until_it_can(
    applied: CliHarness,
    monkeypatch: pytest.MonkeyPatch,
    reference: dict[tuple[str, str, str], str],
) -> None:
    """The disk stays full for two passes: finished runs stay ``promoting`` with their
    staged output (nothing is recomputed, nothing is thrown away); the first pass after
    the disk has room again places and records them."""
    import json

    originals = incoming_files(applied)
    l1 = applied.root / "L1"
    with injected(monkeypatch, Fault("link", 1, errno.ENOSPC, l1, every=True)):
        first = applied.run("--json", "run")
        assert first.exit_code == 3, first.output
        assert_consistent(applied, originals, settled=False)
        promoting = applied.json("runs", "--status", "promoting")
        assert len(promoting) == 4
        second = applied.run("--json", "run")
        assert second.exit_code == 0, second.output
        recovery = json.loads(second.stdout)["recovery"]
        assert sorted(recovery["still_promoting"]) == sorted(r["id"] for r in promoting)
        assert applied.json("runs", "--status", "promoting") == promoting
        assert_consistent(applied, originals, settled=False)
    third = applied.run("--json", "run")
    assert third.exit_code == 0, third.output
    assert sorted(json.loads(third.stdout)["recovery"]["rolled_forward"]) == sorted(
        r["id"] for r in promoting
    )
    assert_consistent(applied, originals)
    assert newest_content(applied) == reference
    l0_to_l1 = [r for r in applied.json("runs", "--limit", "0") if r["process"] == "L0_to_L1"]
    assert len(l0_to_l1) == 4  # none was computed twice
