"""The dashboard's HTTP side without a browser: the JSON API has the CLI's shapes, the
actions need the token (401/403 and nothing changes without it), errors are JSON."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select

from dbproc.db.coverage import rebuild_coverage, recount_coverage
from dbproc.db.engine import database_url
from dbproc.db.models import CoverageDay, CoverageMonth, ForcedRebuild, Product
from dbproc.web.server import BackgroundServer
from tests.helpers import CliHarness, drop, use_test_code
from tests.web.conftest import TOKEN, start_dashboard


def call(
    server: BackgroundServer,
    path: str,
    *,
    method: str = "GET",
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def test_api_shapes_are_the_clis(built: CliHarness, server: BackgroundServer) -> None:
    status, files = call(server, "/api/files?product=L1&date=2016-01-02")
    assert status == 200
    assert files == built.json(
        "files", "--product", "L1", "--since", "2016-01-02", "--until", "2016-01-02", "--json"
    )
    (one,) = files
    assert {"filename", "product", "date", "version", "path", "newest"} <= set(one)
    status, lineage = call(server, f"/api/lineage/{one['filename']}")
    assert status == 200 and lineage == built.json("lineage", one["filename"], "--json")
    assert lineage["parents"] and lineage["code"]["version"]
    status, state = call(server, "/api/status")
    assert status == 200 and state["mission"] == "testDB"
    assert state["files"] == built.json("status", "--json")["files"]
    status, events = call(server, "/api/events?since=0&limit=5")
    assert status == 200 and [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert len(events) == 5 and {"seq", "time", "kind"} <= set(events[0])
    status, later = call(server, f"/api/events?since={events[-1]['seq']}")
    assert status == 200 and later and later[0]["seq"] > events[-1]["seq"]
    assert all(e["time"].endswith("Z") for e in later)


def test_api_errors_are_json(server: BackgroundServer) -> None:
    status, body = call(server, "/api/lineage/no_such_file.cat")
    assert status == 404 and "no_such_file.cat" in body["error"]["message"]
    status, body = call(server, "/api/files?date=2016-13-01")
    assert status == 400 and body["error"]["kind"] == "usage"
    status, page = call(server, "/files/no_such_file.cat")
    assert status == 404 and "no_such_file.cat" in page


def _retries(cli: CliHarness) -> int:
    engine = create_engine(database_url(cli.db))
    with engine.connect() as conn:
        count = (
            conn.scalar(
                select(func.count())
                .select_from(ForcedRebuild)
                .where(ForcedRebuild.retry_of_run_id.is_not(None))
            )
            or 0
        )
    engine.dispose()
    return int(count)


def _failed_run(cli: CliHarness) -> int:
    use_test_code(cli, "L1_to_L2", "fail", when="20160102")
    cli.ok("reprocess", "--product", "L2", "--since", "2016-01-02", "--until", "2016-01-02")
    cli.ok("run", code=3)
    (run,) = cli.json("runs", "--failed", "--json")
    return int(run["id"])


def test_actions_need_the_token(built: CliHarness, token_file: Path) -> None:
    run_id = _failed_run(built)
    before = _retries(built)
    target = "testDB_20160102_v1.0.0.cat"
    read_only = start_dashboard(built)
    try:
        for path in (f"/api/runs/{run_id}/retry", f"/api/review/{target}"):
            for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
                status, body = call(
                    read_only, path, method="POST", body={"verdict": "pass"}, headers=headers
                )
                assert status == 403 and "read-only" in body["error"]["message"]
    finally:
        read_only.stop()
    acting = start_dashboard(built, token_file)
    try:
        path = f"/api/runs/{run_id}/retry"
        status, _ = call(acting, path, method="POST", body={})
        assert status == 401
        status, _ = call(
            acting,
            path,
            method="POST",
            body={},
            headers={"Authorization": "Bearer wrong-token-0123456789"},
        )
        assert status == 403
        status, _ = call(acting, path, method="POST", body={}, headers={"Authorization": TOKEN})
        assert status == 401  # not a bearer header
        assert _retries(built) == before  # nothing changed
        ok = {"Authorization": f"Bearer {TOKEN}"}
        status, body = call(acting, path, method="POST", body={"by": "ana"}, headers=ok)
        assert status == 200 and body["queued"] and "ana" in body["by"]
        assert _retries(built) == before + 1
        status, body = call(acting, "/api/runs/1/retry", method="POST", body={}, headers=ok)
        assert status == 409  # run 1 succeeded
        status, body = call(
            acting, f"/api/review/{target}", method="POST", body={"verdict": "pass"}, headers=ok
        )
        assert status == 409 and "review gate" in body["error"]["message"]
        status, body = call(
            acting, "/api/review/nope.cat", method="POST", body={"verdict": "pass"}, headers=ok
        )
        assert status == 404
        status, body = call(
            acting, f"/api/review/{target}", method="POST", body={"verdict": "maybe"}, headers=ok
        )
        assert status == 400
    finally:
        acting.stop()
    built.ok("run", code=3)  # the retry was made by the next pass (and failed again)
    assert len(built.json("runs", "--failed", "--json")) == 2
    built.ok("run")  # ... and is not retried again by itself
    assert len(built.json("runs", "--failed", "--json")) == 2


def _coverage(cli: CliHarness) -> dict[tuple[str, str], tuple[int, int, str]]:
    engine = create_engine(database_url(cli.db))
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Product.name,
                CoverageDay.date,
                CoverageDay.files,
                CoverageDay.slots,
                CoverageDay.version,
            ).join(Product, Product.id == CoverageDay.product_id)
        ).all()
    engine.dispose()
    return {(p, d.isoformat()): (f, s, v) for p, d, f, s, v in rows}


def test_coverage_summary_follows_the_files(built: CliHarness) -> None:
    """The summary equals what the file table says, after ingests, builds and rebuilds."""
    drop(built.incoming, "testDB_000_004.raw", "day five\n")
    built.ok("run")
    built.ok(
        "reprocess",
        "--product",
        "L1",
        "--since",
        "2016-01-03",
        "--until",
        "2016-01-03",
        "--bump",
        "quality",
    )
    built.ok("run")
    expected: dict[tuple[str, str], list[Any]] = {}
    for f in built.json("files", "--all-versions", "--json"):
        entry = expected.setdefault((f["product"], f["date"]), [0, 0, "0.0.0"])
        entry[0] += 1
        entry[1] += bool(f["newest"])
        if tuple(map(int, f["version"].split("."))) > tuple(map(int, entry[2].split("."))):
            entry[2] = f["version"]
    assert _coverage(built) == {k: tuple(v) for k, v in expected.items()}
    assert _coverage(built)[("L1", "2016-01-03")][0] >= 2
    months: dict[tuple[str, str], list[int]] = {}
    for (product, day), (files, slots, _v) in _coverage(built).items():
        entry = months.setdefault((product, day[:7] + "-01"), [0, 0, 0])
        entry[0] += 1
        entry[1] += files
        entry[2] += slots
    assert _months(built) == {k: tuple(v) for k, v in months.items()}
    # recomputing from the file table gives the same summaries
    before = (_coverage(built), _months(built))
    engine = create_engine(database_url(built.db))
    with engine.begin() as conn:
        rebuild_coverage(conn)
    with engine.begin() as conn:
        recount_coverage(conn, 1, [dt.date(2016, 1, 1), dt.date(2016, 1, 5)])
    engine.dispose()
    assert (_coverage(built), _months(built)) == before


def _months(cli: CliHarness) -> dict[tuple[str, str], tuple[int, int, int]]:
    engine = create_engine(database_url(cli.db))
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Product.name,
                CoverageMonth.month,
                CoverageMonth.days,
                CoverageMonth.files,
                CoverageMonth.slots,
            ).join(Product, Product.id == CoverageMonth.product_id)
        ).all()
    engine.dispose()
    return {(p, m.isoformat()): (d, f, s) for p, m, d, f, s in rows}


def test_the_overview_sees_the_pass_lock(built: CliHarness) -> None:
    """The dashboard's lock look-up (pg_locks on PostgreSQL) agrees with the real lock."""
    from dbproc.api import Archive
    from dbproc.control.os_lock import OsLock
    from dbproc.web import data

    archive = Archive(built.db)
    holder = OsLock(archive.engine)
    try:
        with archive.reading() as session:
            assert data.lock_state(archive.engine, session)["held"] is False
        assert holder.try_acquire()
        with archive.reading() as session:
            assert data.lock_state(archive.engine, session)["held"] is True
    finally:
        holder.release()
        archive.close()
