"""The database connection goes away mid-pass, and commits whose outcome is unknown.

- PostgreSQL: while a code runs, the test kills the pass's server backends with
  ``pg_terminate_backend`` (its pooled connection, its lock connection, or both). Losing
  a pooled connection is survived (the pool check-out sees the dropped socket and
  reconnects: db/engine.py). Losing the lock connection loses
  the advisory lock: the pass stops before its next commit (fencing), no other pass can
  slip in meanwhile, and the next pass recovers.
- Both backends: a statement fails with OperationalError at its n-th execution (the pass
  aborts, exit 1, no traceback), or a COMMIT succeeds on the server but the client sees
  an error (the outcome is unknown to the pass). The next pass repairs; no row is
  duplicated, nothing is lost, everything is built once.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from dbproc.examples import write_example
from tests.conftest import PG_URL
from tests.faults.invariants import (
    assert_consistent,
    incoming_files,
    newest_content,
)
from tests.faults.procs import spawn, wait_until
from tests.helpers import CliHarness, use_test_code


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str], str]:
    folder = tmp_path_factory.mktemp("reference")
    cli = CliHarness(str(folder / "ref.sqlite"), write_example(folder / "mission"))
    cli.ok("config", "apply", str(cli.mission_file))
    cli.ok("run")
    return newest_content(cli)


def _repaired(
    cli: CliHarness, originals: dict[str, str], reference: dict[tuple[str, str, str], str]
) -> dict[str, Any]:
    """The next pass succeeds; everything holds; a third pass builds nothing."""
    result = cli.run("--json", "run")
    assert result.exit_code == 0, result.output
    assert_consistent(cli, originals)
    assert newest_content(cli) == reference
    assert cli.json("run")["process"]["counts"] == {"runs": 0}
    return json.loads(result.stdout)  # type: ignore[no-any-return]


# -- PostgreSQL: the server drops the pass's connections ---------------------------------


def _local_ports(pid: int) -> set[int]:
    """Local TCP ports of the sockets process ``pid`` holds open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _idle(pid: int) -> bool:
    """Are the connections of client process ``pid`` all idle (no statement, no
    transaction open)?"""
    ports = _local_ports(pid)
    engine = create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            states = [
                state
                for port, state in conn.execute(
                    text(
                        "SELECT client_port, state FROM pg_stat_activity "
                        "WHERE application_name LIKE 'dbproc%'"
                    )
                )
                if port in ports
            ]
    finally:
        engine.dispose()
    return bool(states) and all(s == "idle" for s in states)


def _backends(pid: int) -> dict[str, list[int]]:
    """application_name -> server pids of the connections of client process ``pid``."""
    ports = _local_ports(pid)
    engine = create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT pid, application_name, client_port FROM pg_stat_activity "
                    "WHERE application_name LIKE 'dbproc%'"
                )
            ).all()
    finally:
        engine.dispose()
    out: dict[str, list[int]] = {}
    for backend, name, port in rows:
        if port in ports:
            out.setdefault(name, []).append(backend)
    return out


def _terminate(backends: list[int]) -> None:
    engine = create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            for backend in backends:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
            conn.commit()
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("which", ["dbproc", "dbproc-lock", "both"])
def test_server_drops_the_pass_connections_while_a_code_runs(
    tmp_path: Path, reference: dict[tuple[str, str, str], str], which: str
) -> None:
    from tests.conftest import drop_pg_schema, make_pg_schema_url

    db, schema = make_pg_schema_url()
    try:
        cli = CliHarness(db, write_example(tmp_path / "mission"))
        cli.ok("config", "apply", str(cli.mission_file))
        use_test_code(cli, "L0_to_L1", "sleep", when="20160102")
        originals = incoming_files(cli)
        log = tmp_path / "pass.log"
        proc = spawn(cli, "run", "--jobs", "1", env={"BEHAVE_SLEEP": "2"}, log=log)
        try:
            # the slow code runs and the build before it is recorded (a freed slot is
            # refilled before the result that freed it is recorded): the pass is now
            # waiting for the code, not talking to the database
            wait_until(
                lambda: (
                    any(r["date"] == "2016-01-02" for r in cli.json("runs", "--status", "running"))
                    and any(
                        r["date"] == "2016-01-01" for r in cli.json("runs", "--status", "succeeded")
                    )
                ),
                30,
                "the slow code to start",
            )
            # and the plan that recording queued is done: both connections sit idle
            wait_until(lambda: _idle(proc.pid), 30, "the pass's connections to be idle")
            conns = _backends(proc.pid)
            assert set(conns) == {"dbproc", "dbproc-lock"}, conns
            _terminate([b for name, pids in conns.items() for b in pids if which in (name, "both")])
            if which != "dbproc":
                # the advisory lock is gone with its connection, but the pass row still
                # names a live process on this host: no second pass slips in
                refused = cli.run("run")
                assert refused.exit_code == 4, refused.output
            returncode = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        output = log.read_text()
        assert "Traceback" not in output
        if which == "dbproc":
            assert returncode == 0, output  # a pooled connection is simply replaced
        else:
            assert returncode == 1, output
            assert "the pass lock was lost" in output
            assert "stopping this pass; the next pass recovers" in output
        report = _repaired(cli, originals, reference)
        if which != "dbproc":
            assert report["recovery"]["abandoned"] or report["takeovers"] == []
    finally:
        drop_pg_schema(schema)


# -- both backends: a statement fails, or a commit's outcome is unknown --------------------


class Failure:
    """Raise OperationalError at the n-th statement (before it runs) or the n-th COMMIT
    (after it ran on the server) of the pass's main thread, on every engine in this
    process. The heartbeat thread's own statements are not counted: when they were, a
    pass slower than the heartbeat's first beat (about a second) saw the failure land in
    the heartbeat, which only logs it."""

    def __init__(self, kind: str, n: int) -> None:
        self.kind, self.n = kind, n
        self.count = 0
        self.fired = False

    def hit(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False
        self.count += 1
        if self.count == self.n:
            self.fired = True
            return True
        return False

    @staticmethod
    def error(statement: str) -> OperationalError:
        return OperationalError(
            statement, {}, Exception("server closed the connection unexpectedly")
        )


@contextmanager
def failing(monkeypatch: pytest.MonkeyPatch, failure: Failure) -> Iterator[Failure]:
    if failure.kind == "statement":

        def before(conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
            if failure.hit():
                raise Failure.error(statement)

        event.listen(Engine, "before_cursor_execute", before)
        try:
            yield failure
        finally:
            event.remove(Engine, "before_cursor_execute", before)
        return
    real = Connection._commit_impl

    def commit_then_fail(self: Connection) -> None:
        real(self)
        if failure.hit():
            raise Failure.error("COMMIT")

    monkeypatch.setattr(Connection, "_commit_impl", commit_then_fail)
    try:
        yield failure
    finally:
        monkeypatch.setattr(Connection, "_commit_impl", real)


STATEMENTS = [3, 40, 160]  # early ingest, late ingest, in the builds
COMMITS = [1, 4, 9, 14]  # the pass row, an ingest, a run start, a build's record


def _cases() -> list[Any]:
    out = []
    for kind, ns in (("statement", STATEMENTS), ("commit", COMMITS)):
        for n in ns:
            out.append(pytest.param(kind, n, id=f"{kind}{n}"))
    return out


@pytest.mark.parametrize(("kind", "n"), _cases())
def test_failed_statement_or_unknown_commit_then_the_next_pass_repairs(
    applied: CliHarness,
    monkeypatch: pytest.MonkeyPatch,
    reference: dict[tuple[str, str, str], str],
    kind: str,
    n: int,
) -> None:
    originals = incoming_files(applied)
    with failing(monkeypatch, Failure(kind, n)) as failure:
        result = applied.run("--json", "run")
    assert failure.fired, f"only {failure.count} {kind}s in the pass"
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    # the failing statement may be the fence's check of the lock connection
    assert (
        "server closed the connection unexpectedly" in result.stderr
        or "the pass lock was lost" in result.stderr
    ), result.stderr
    _repaired(applied, originals, reference)
