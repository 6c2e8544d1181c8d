"""Random-kill soak: 30 passes, each SIGKILLed after a random 0-2 s, then one clean pass.

Before each pass a new raw file arrives (a new day, so each pass ingests, builds new
outputs and rebuilds the neighbours whose window now holds it). Kills land anywhere:
in start-up, ingest, a code, a commit, recovery. Then one clean pass, after which every
invariant of :mod:`tests.faults.invariants` holds, every newest output holds exactly the
bytes its recorded parents give (the L1 is their concatenation in input order, the L2 the
ROT13 of its L1), nothing is left to build, a further pass changes nothing, and
``dbproc check`` finds the disk and the database consistent.
"""

from __future__ import annotations

import codecs
import datetime as dt
import os
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dbproc.db.models import File, FileLink, Product
from dbproc.examples import write_example
from tests.faults.invariants import (
    assert_consistent,
    dump_without_passes,
    engine_of,
    incoming_files,
)
from tests.faults.procs import kill_group, spawn
from tests.helpers import CliHarness, drop, tree_state, use_test_code

PASSES = 30
MAX_DELAY = 2.0


def _deliver(cli: CliHarness, i: int) -> None:
    """A raw file for day 4 + i (APID 000), and every third pass one for APID 001."""
    drop(cli.incoming, f"testDB_000_{4 + i:03d}.raw", f"Part {4 + i} of 000.\n")
    if i % 3 == 0:
        drop(cli.incoming, f"testDB_001_{2 + i // 3:03d}.raw", f"Part {2 + i // 3} of 001.\n")


def _check_contents(cli: CliHarness) -> int:
    """Every newest L1 is the concatenation of its parents (APID 000 before 001, then by
    date), every newest L2 the ROT13 of its L1. Returns how many outputs were checked."""
    with engine_of(cli) as engine, Session(engine) as session:
        product = {p.id: p.name for p in session.scalars(select(Product))}
        files = {f.id: f for f in session.scalars(select(File))}
        parents: dict[int, list[int]] = {}
        for child, parent in session.execute(select(FileLink.child_id, FileLink.parent_id)):
            parents.setdefault(child, []).append(parent)
    order = {"L0_first": 0, "L0_second": 1}
    checked = 0
    for f in files.values():
        if not f.is_newest or product[f.product_id] not in ("L1", "L2"):
            continue
        mine = sorted(
            (files[p] for p in parents[f.id]),
            key=lambda p: (order.get(product[p.product_id], 9), p.date, p.filename),
        )
        data = (cli.root / f.path).read_bytes()
        if product[f.product_id] == "L1":
            expected = b"".join((cli.root / p.path).read_bytes() for p in mine)
        else:
            (source,) = mine
            expected = codecs.encode((cli.root / source.path).read_text(), "rot13").encode()
        assert data == expected, f"{f.filename} does not hold what its parents give"
        checked += 1
    return checked


def _soak(cli: CliHarness, seed: int, log: Path) -> tuple[dict[str, str], list[Any]]:
    """The killing loop (subprocesses, files and sleeps only: safe in a thread)."""
    rng = random.Random(seed)
    delivered: dict[str, str] = {}
    history: list[Any] = []
    for i in range(PASSES):
        _deliver(cli, i)
        delivered.update(incoming_files(cli))
        delay = rng.uniform(0, MAX_DELAY)
        proc = spawn(cli, "run", env={"BEHAVE_SLEEP": "0.15"}, log=log)
        started = time.monotonic()
        try:
            proc.wait(timeout=delay)
            ended = f"finished ({proc.returncode})"
        except subprocess.TimeoutExpired:  # still running: kill it now
            ended = "killed"
        finally:
            kill_group(proc)
        history.append((i, round(delay, 2), ended, round(time.monotonic() - started, 2)))
    return delivered, history


def _after(cli: CliHarness, delivered: dict[str, str], history: list[Any]) -> None:
    killed = sum(1 for h in history if h[2] == "killed")
    assert killed >= PASSES // 2, history  # most passes really were killed mid-way
    clean = cli.run("--json", "run", env={"BEHAVE_SLEEP": "0"})
    assert clean.exit_code == 0, f"{clean.output}\nhistory: {history}"
    facts = assert_consistent(cli, delivered)
    # every delivered file is registered, and every date has its L1 and L2
    names = set(facts["files"])
    assert set(delivered) <= names
    days = {dt.date(2016, 1, 1) + dt.timedelta(days=n) for n in range(4 + PASSES)}
    newest = {(f.product_id, f.date) for f in facts["files"].values() if f.is_newest}
    assert len({d for _p, d in newest}) >= len(days)
    assert _check_contents(cli) == 2 * len(days)
    assert cli.json("plan") == []
    # a further pass changes nothing; check finds nothing
    before, tree = dump_without_passes(cli.db), tree_state(cli.mission_dir)
    again = cli.json("run")
    assert again["process"]["counts"] == {"runs": 0}
    assert dump_without_passes(cli.db) == before
    assert tree_state(cli.mission_dir) == tree
    report = cli.json("check")
    assert report["problems"] == [] and report["exit_code"] == 0


@pytest.mark.slow
def test_random_kills_then_one_clean_pass(tmp_path: Path) -> None:
    """Both backends at once, one mission each (the loops mostly wait for their kill, so
    the two share the two cores well); then each is checked in turn."""
    from tests.conftest import drop_pg_schema, make_pg_schema_url, postgres_unreachable

    dbs = {"sqlite": str(tmp_path / "sqlite" / "mission.sqlite")}
    schema = None
    if postgres_unreachable() is None:
        dbs["postgresql"], schema = make_pg_schema_url()
    elif os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {postgres_unreachable()}")
    try:
        clis = {}
        for backend, db in dbs.items():
            cli = CliHarness(db, write_example(tmp_path / backend / "mission"))
            cli.ok("config", "apply", str(cli.mission_file))
            use_test_code(cli, "L0_to_L1", "sleep")  # every L1 build takes BEHAVE_SLEEP
            clis[backend] = cli
        with ThreadPoolExecutor(len(clis)) as pool:
            loops = {
                backend: pool.submit(_soak, cli, 20161101 + n, tmp_path / backend / "passes.log")
                for n, (backend, cli) in enumerate(clis.items())
            }
            results = {backend: loop.result() for backend, loop in loops.items()}
        for backend, cli in clis.items():
            _after(cli, *results[backend])
        if schema is None:
            pytest.skip("PostgreSQL unreachable: the soak ran on SQLite only")
    finally:
        if schema is not None:
            drop_pg_schema(schema)
