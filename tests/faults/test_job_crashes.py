"""SIGKILL a ``dbproc run`` at each step of the job-commit order (reliability.md B4).

For each crash point of a pass and of a job's commit, at its 1st, 2nd and 3rd hit, a real
``dbproc run`` subprocess kills itself there (``DBPROC_CRASH_AT``). Then a recovery pass
runs and a third pass. Afterwards the archive is exactly what an uninterrupted run makes
(same files, same bytes, one version of each output), every invariant of
:mod:`tests.faults.invariants` holds, a run caught in ``promoting`` was rolled forward
(not recomputed), a run caught before it was recorded was abandoned and built again
once, and the third pass changes nothing.

``pass.flagged`` is reached once per pass, so only its 1st hit exists. The crash passes
run with ``--jobs 1`` so that the n-th hit names one run; the soak covers concurrency.
PostgreSQL runs every point at its 2nd hit (the 1st and 3rd are the same code path).
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from dbproc.examples import write_example
from dbproc.faults import CRASH_POINTS
from tests.faults.invariants import (
    assert_consistent,
    content_state,
    dump_without_passes,
    incoming_files,
)
from tests.faults.procs import run_crashing
from tests.helpers import CliHarness, tree_state

JOB_POINTS = [p for p in CRASH_POINTS if p.startswith("job.")]
SCENARIOS = [("pass.flagged", 1)] + [(p, n) for p in JOB_POINTS for n in (1, 2, 3)]
PG_SCENARIOS = [("pass.flagged", 1)] + [(p, 2) for p in JOB_POINTS]


def _params() -> list[object]:
    out: list[object] = []
    for point, hit in SCENARIOS:
        out.append(pytest.param("sqlite", point, hit, id=f"sqlite-{point}-{hit}"))
    for point, hit in PG_SCENARIOS:
        out.append(
            pytest.param(
                "postgresql", point, hit, id=f"postgresql-{point}-{hit}", marks=pytest.mark.postgres
            )
        )
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """What an uninterrupted run makes: filename -> (path, sha256)."""
    folder = tmp_path_factory.mktemp("reference")
    cli = CliHarness(str(folder / "ref.sqlite"), write_example(folder / "mission"))
    cli.ok("config", "apply", str(cli.mission_file))
    cli.ok("run")
    return content_state(cli)


@pytest.fixture
def backend_cli(request: pytest.FixtureRequest, tmp_path: Path) -> CliHarness:
    from tests.conftest import drop_pg_schema, make_pg_schema_url

    backend = request.node.callspec.params["backend"]
    if backend == "sqlite":
        db = str(tmp_path / "mission.sqlite")
    else:
        db, schema = make_pg_schema_url()
        request.addfinalizer(lambda: drop_pg_schema(schema))
    cli = CliHarness(db, write_example(tmp_path / "mission"))
    cli.ok("config", "apply", str(cli.mission_file))
    return cli


def _key(run: object) -> tuple[int, object, str]:
    return (run.process_id, run.date, run.slot)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("backend", "point", "hit"), _params())
def test_sigkill_at_a_crash_point_then_recovery(
    backend_cli: CliHarness,
    reference: dict[str, tuple[str, str]],
    backend: str,
    point: str,
    hit: int,
) -> None:
    cli = backend_cli
    originals = incoming_files(cli)
    crashed = run_crashing(cli, point, hit, "run", "--jobs", "1")
    assert crashed.returncode == -signal.SIGKILL, (
        f"the pass did not die at {point}:{hit} (exit {crashed.returncode})\n"
        + crashed.stderr.decode(errors="replace")
    )
    status = cli.json("status")
    assert status["lock"]["held"] is False and status["lock"]["stale"] is True

    recovery = cli.run("--json", "run")
    assert recovery.exit_code == 0, recovery.output
    assert "taking over and recovering" in recovery.stderr
    facts = assert_consistent(cli, originals)
    assert content_state(cli) == reference

    runs = facts["runs"]
    per_key = Counter(_key(r) for r in runs.values() if r.status == "succeeded")
    assert set(per_key.values()) == {1}, "an output key was built twice"
    statuses = Counter(r.status for r in runs.values())
    first_pass = sorted((r for r in runs.values() if r.pass_id == 1), key=lambda r: r.id)
    abandoned = [r for r in runs.values() if r.status == "abandoned"]
    # every abandoned run was started by the killed pass and built once by the recovery
    for run in abandoned:
        assert run.pass_id == 1
        again = [r for r in runs.values() if _key(r) == _key(run)]
        assert sorted(r.status for r in again) == ["abandoned", "succeeded"]
    assert statuses == {"succeeded": 12} | ({"abandoned": len(abandoned)} if abandoned else {})
    # A freed slot is refilled before the run that freed it is recorded, so with --jobs 1
    # the killed pass had at most the crashed run and the one refilling its slot in
    # flight: at most two runs lose their compute, never a file.
    if point == "pass.flagged":
        assert not first_pass
    elif point == "job.queued":
        # the run just queued is abandoned; from the second start on, so is the
        # finished-but-unrecorded run whose slot it took
        assert first_pass[-1].status == "abandoned"
        assert len(abandoned) == (1 if hit == 1 else 2)
    elif point in ("job.promoting", "job.placed"):
        # the hit-th output is rolled forward by the recovery, not recomputed; only the
        # run refilling its slot is abandoned
        recorded = [r for r in first_pass if r.status == "succeeded"]
        assert len(recorded) == hit
        assert len(abandoned) <= 1
    else:
        # recorded already: only the run refilling its slot can be lost
        assert len([r for r in first_pass if r.status == "succeeded"]) >= hit
        assert len(abandoned) <= 1

    # a third pass changes nothing
    db_before, tree_before = dump_without_passes(cli.db), tree_state(cli.mission_dir)
    third = cli.json("run")
    assert third["exit_code"] == 0
    assert third["ingest"]["counts"]["ingested"] == 0
    assert third["process"]["counts"] == {"runs": 0}
    assert not third["takeovers"]
    assert dump_without_passes(cli.db) == db_before
    assert tree_state(cli.mission_dir) == tree_before


def test_the_matrix_covers_every_pass_and_job_crash_point() -> None:
    covered = {p for p, _ in SCENARIOS}
    ingest = {p for p in CRASH_POINTS if p.startswith(("ingest.", "reject."))}
    notify = {p for p in CRASH_POINTS if p.startswith("notify.")}  # tests/feed/test_notify.py
    # ingest points: test_ingest_crashes.py
    assert covered | ingest | notify == set(CRASH_POINTS)
    assert {p for p, _ in PG_SCENARIOS} == covered


def test_an_uninterrupted_run_leaves_no_queue_behind(applied: CliHarness) -> None:
    """Regression: rows queued by a pass's own outputs (and dated rows of a process
    planned in full) outlived the pass, so the next pass re-planned them and changed
    the database although nothing had happened."""
    from tests.helpers import drop

    originals = incoming_files(applied)
    applied.ok("run")
    assert_consistent(applied, originals)  # includes: nothing pending
    drop(applied.incoming, "testDB_000_004.raw", "Fifth Part.\n")
    applied.ok("run")
    assert_consistent(applied)
    before = dump_without_passes(applied.db)
    assert applied.json("run")["process"]["counts"] == {"runs": 0}
    assert dump_without_passes(applied.db) == before


def test_every_crash_point_in_the_code_is_known_and_every_known_one_is_in_the_code() -> None:
    import re

    import dbproc

    found: set[str] = set()
    for path in Path(dbproc.__file__).parent.rglob("*.py"):
        found.update(re.findall(r'crash_point\("([a-z._]+)"\)', path.read_text()))
    assert found == set(CRASH_POINTS)


@pytest.mark.parametrize("point", ["job.placed", "job.recorded", "job.queued"])
def test_a_crash_during_recovery_is_recovered_too(
    tmp_path: Path, reference: dict[str, tuple[str, str]], point: str
) -> None:
    """The pass that recovers a crash crashes itself, at the same step of a recovered or
    a new build; the pass after it still ends in the uninterrupted state. (SQLite.)"""
    cli = CliHarness(str(tmp_path / "mission.sqlite"), write_example(tmp_path / "mission"))
    cli.ok("config", "apply", str(cli.mission_file))
    originals = incoming_files(cli)
    for _ in range(2):
        crashed = run_crashing(cli, point, 1, "run", "--jobs", "1")
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode(errors="replace")
    result = cli.run("--json", "run")
    assert result.exit_code == 0, result.output
    assert_consistent(cli, originals)
    assert content_state(cli) == reference
    assert cli.json("run")["process"]["counts"] == {"runs": 0}


def test_an_unset_crash_point_does_nothing_and_keeps_no_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unset, a crash point is one lookup: it counts nothing (its cost is in scripts/bench,
    not timed here)."""
    from dbproc import faults

    monkeypatch.delenv(faults.ENV_VAR, raising=False)
    monkeypatch.setattr(faults, "_hits", {})
    for _ in range(1000):
        faults.crash_point("job.placed")
    assert faults._hits == {}
    monkeypatch.setenv(faults.ENV_VAR, "job.recorded:5")
    faults.crash_point("job.placed")  # another point: still nothing counted
    assert faults._hits == {}
