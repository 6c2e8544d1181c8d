"""The event feed (§14): what is recorded, the JSON Lines shape, --since/--kind/--limit,
and seq order under concurrent PostgreSQL writers."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from dbproc.db.engine import database_url
from dbproc.feed import events as events_module
from dbproc.feed.events import EventQuery, list_events, record_event
from tests.conftest import drop_pg_schema, make_pg_schema_url
from tests.helpers import CliHarness, drop, use_test_code

KEYS = {"seq", "time", "kind", "filename", "product", "date", "version", "run_id", "detail"}


def events(cli: CliHarness, *args: str) -> list[dict[str, Any]]:
    out = cli.ok("events", *args, "--json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_every_change_appends_its_event(applied: CliHarness) -> None:
    drop(applied.incoming, "junk.bin", "not a product")
    applied.ok("run", code=3)
    feed = events(applied)
    assert all(set(e) == KEYS for e in feed)
    seqs = [e["seq"] for e in feed]
    assert seqs == sorted(set(seqs))
    assert all(e["time"].endswith("Z") for e in feed)
    kinds = [e["kind"] for e in feed]
    assert kinds[0] == "config.applied" and kinds[-1] == "pass.finished"
    ingested = [e for e in feed if e["kind"] == "file.ingested"]
    assert {e["filename"] for e in ingested} == {
        f["filename"] for f in applied.json("files", "--product", "L0_first")
    } | {f["filename"] for f in applied.json("files", "--product", "L0_second")}
    built = {e["filename"]: e for e in feed if e["kind"] == "file.built"}
    made = {f["filename"]: f for f in applied.json("files", "--product", "L1")}
    assert set(made) <= set(built)
    one = next(iter(made))
    assert built[one]["product"] == "L1" and built[one]["run_id"] == made[one]["run_id"]
    assert built[one]["version"] == made[one]["version"]
    assert [e["filename"] for e in feed if e["kind"] == "file.rejected"] == ["junk.bin"]
    finished = feed[-1]
    assert finished["detail"]["summary"]["exit_code"] == 3

    assert events(applied, "--since", str(seqs[2])) == feed[3:]
    assert events(applied, "--kind", "file.rejected", "--kind", "pass.finished") == [
        e for e in feed if e["kind"] in ("file.rejected", "pass.finished")
    ]
    assert events(applied, "--limit", "2") == feed[:2]
    text_out = applied.ok("events").stdout.splitlines()
    assert len(text_out) == len(feed) and "pass.finished" in text_out[-1]


def test_failed_runs_and_applies_are_events(applied: CliHarness) -> None:
    use_test_code(applied, "L0_to_L1", "fail", when="20160102")
    applied.ok("run", code=3)
    failed = events(applied, "--kind", "run.failed")
    assert [e["date"] for e in failed] == ["2016-01-02"]
    assert failed[0]["run_id"] is not None and failed[0]["detail"]["exit_code"] == 7
    applied_events = events(applied, "--kind", "config.applied")
    assert len(applied_events) == 2  # the first apply and the code change
    applied.ok("config", "apply", str(applied.mission_file))  # no change: no event
    assert len(events(applied, "--kind", "config.applied")) == 2
    assert events(applied, "--since", str(10**9)) == []


def test_dry_runs_and_readers_write_no_events(applied: CliHarness) -> None:
    before = events(applied)
    applied.ok("config", "apply", "--dry-run", str(applied.mission_file))
    applied.ok("plan")
    assert events(applied) == before


def test_events_before_any_mission_says_so(tmp_path: Any) -> None:
    cli = CliHarness(str(tmp_path / "none.sqlite"), tmp_path / "m.toml")
    result = cli.run("events")
    assert result.exit_code in (2, 5) and "config apply" in result.stderr


# -- commit order on PostgreSQL ----------------------------------------------------------


@pytest.fixture
def pg_feed() -> Any:
    url, schema = make_pg_schema_url()
    from dbproc.db import schema as schema_module
    from dbproc.db.engine import create_db_engine

    engine = create_db_engine(url)
    schema_module.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_pg_schema(schema)


def _blocked_on_advisory_lock(engine: Any, pid: int) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE pid = :p AND locktype = 'advisory' "
                    "AND NOT granted"
                ),
                {"p": pid},
            ).scalar_one()
        )


def _slow_writer_then_fast_writer(engine: Any) -> tuple[list[int], list[int]]:
    """A takes a seq and holds its transaction; B writes while A is open. Returns
    (what a reader following with --since saw, every seq in the table)."""
    seen: list[int] = []

    def read() -> None:
        with engine.connect() as conn:
            since = seen[-1] if seen else 0
            seen.extend(e.seq for e in list_events(conn, EventQuery(since=since)))

    a = engine.connect()
    a.begin()
    record_event(a, "test.slow")
    b_pid: list[int] = []
    b_done = threading.Event()

    def fast() -> None:
        with engine.connect() as b:
            b_pid.append(b.execute(text("SELECT pg_backend_pid()")).scalar_one())
            b.commit()
            with b.begin():
                record_event(b, "test.fast")
        b_done.set()

    thread = threading.Thread(target=fast)
    thread.start()
    for _ in range(600):  # bounded: B either waits on the lock or has committed
        if b_done.is_set() or (b_pid and _blocked_on_advisory_lock(engine, b_pid[0])):
            break
        b_done.wait(0.05)
    read()  # a reader between the two commits
    a.commit()
    a.close()
    thread.join(timeout=60)
    read()
    with engine.connect() as conn:
        every = [e.seq for e in list_events(conn)]
    return seen, every


@pytest.mark.postgres
def test_a_writer_that_commits_later_never_hides_behind_a_reader(pg_feed: Any) -> None:
    seen, every = _slow_writer_then_fast_writer(pg_feed)
    assert seen == every and len(every) == 2


@pytest.mark.postgres
def test_without_the_lock_a_reader_would_skip(
    pg_feed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hazard is real: with the lock removed the same interleaving skips an event."""
    monkeypatch.setitem(events_module._INSERT_EVENTS.lead, "postgresql", "SELECT 1")
    seen, every = _slow_writer_then_fast_writer(pg_feed)
    assert len(every) == 2 and seen != every


@pytest.mark.postgres
def test_concurrent_writers_never_make_a_since_reader_skip(pg_feed: Any) -> None:
    writers, per_writer = 4, 40
    start = threading.Barrier(writers + 1)
    done = threading.Event()
    seen: list[int] = []

    def write(n: int) -> None:
        engine = create_engine(pg_feed.url)
        start.wait()
        for i in range(per_writer):
            with engine.begin() as conn:
                conn.execute(text("SELECT 1"))
                record_event(conn, "test.write", detail={"writer": n, "i": i})
                conn.execute(text("SELECT pg_sleep(0.001 * random())"))
        engine.dispose()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    start.wait()

    def read_until_done() -> None:
        while True:
            finished = done.is_set()
            with pg_feed.connect() as conn:
                since = seen[-1] if seen else 0
                seen.extend(e.seq for e in list_events(conn, EventQuery(since=since)))
            if finished:
                return

    reader = threading.Thread(target=read_until_done)
    reader.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    reader.join(timeout=120)
    with pg_feed.connect() as conn:
        every = [e.seq for e in list_events(conn)]
    assert len(every) == writers * per_writer
    assert seen == every


def test_seq_is_never_reused_after_pruning(db_url: str) -> None:
    from dbproc.db import schema as schema_module
    from dbproc.db.engine import create_db_engine

    engine = create_db_engine(database_url(db_url))
    schema_module.upgrade(engine)
    with engine.begin() as conn:
        for _ in range(3):
            record_event(conn, "test.one")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM event"))
        record_event(conn, "test.after")
    with engine.connect() as conn:
        assert [e.seq for e in list_events(conn)] == [4]
    engine.dispose()


def test_follow_prints_new_events_and_sigterm_ends_it_with_0(applied: CliHarness) -> None:
    import os
    import signal
    import subprocess
    import time

    from tests.faults.procs import dbproc_argv

    last = events(applied)[-1]["seq"]
    proc = subprocess.Popen(
        dbproc_argv(applied, "events", "--follow", "--json", "--since", str(last)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        applied.ok("run")
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())  # blocks until the pass's first event
        assert first["seq"] == last + 1 and first["kind"] == "file.ingested"
        os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            proc.stdout.read()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_retention_prunes_old_events_at_pass_end(applied: CliHarness) -> None:
    from dbproc.db.engine import create_db_engine

    applied.ok("run")
    feed = events(applied)
    old = [e["seq"] for e in feed[:5]]
    engine = create_db_engine(applied.db)
    with engine.begin() as conn:  # make five events 400 days old (the default keeps 365)
        conn.execute(
            text("UPDATE event SET time = :t WHERE seq <= :s"),
            {"t": "2000-01-01 00:00:00", "s": old[-1]},
        )
    engine.dispose()
    applied.ok("run")
    after = [e["seq"] for e in events(applied)]
    assert not set(old) & set(after)
    assert after[: len(feed) - 5] == [e["seq"] for e in feed[5:]]
