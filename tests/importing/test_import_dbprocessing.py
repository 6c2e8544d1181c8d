"""``dbproc import-dbprocessing`` on a real dbprocessing archive, SQLite and PostgreSQL:
check clean, lineage equal to the old link tables file by file, plan limited to the old
queue, versions continuing, dry run changing nothing, a rerun resuming."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import text

from dbproc.api import Archive
from tests.faults.invariants import engine_of
from tests.helpers import CliHarness, by_name, drop, dump_database, tree_state
from tests.importing.conftest import FIXTURE, OldArchive, import_args

MISSING = "dbpfix_L0_20160102_v1.0.0.dat"


def _imported(cli: CliHarness, old: OldArchive, tmp_path: Path) -> dict[str, object]:
    report = cli.json(*import_args(old, tmp_path / "new" / "mission.toml"))
    assert isinstance(report, dict)
    return report


def test_dry_run_prints_report_and_mission_and_changes_nothing(
    cli: CliHarness, old: OldArchive, tmp_path: Path
) -> None:
    mission = tmp_path / "new" / "mission.toml"
    before = tree_state(old.root)
    report = cli.json(*import_args(old, mission, "--dry-run"))
    assert report["dry_run"] is True
    assert report["counts"]["files to import"] == 22
    assert report["missing_files"] == [MISSING]
    doc = tomllib.loads(report["mission"])
    codes = doc["processes"]["mag_L0toL1"]["code"]
    assert [(c["path"], c["version"]) for c in codes] == [
        ("scripts/l0_to_l1.py", "1.0.0"),
        ("scripts/l0_to_l1_v2.py", "1.1.0"),
    ]
    problems = " ".join(u["problem"] + u["done"] for u in report["untranslated"])
    for needle in (
        "{QACODE}",
        "{MILLI}",
        "'-q'",
        "without {VERSION}",
        "dbpfix_L2_{Y}{m}{d}_v{VERSION}.dat",
    ):
        assert needle in problems, needle
    assert all(u["todo"] for u in report["untranslated"])
    conf = FIXTURE / "source" / "mission.conf"
    with_ini = cli.json(*import_args(old, mission, "--dry-run", "--config", str(conf)))
    assert with_ini["counts"]["INI sections read"] == 11
    assert with_ini["untranslated"] == report["untranslated"]  # the INI matches the DB
    text = cli.ok(*import_args(old, mission, "--dry-run")).stdout
    assert "[[processes.mag_L0toL1.code]]" in text and MISSING in text
    assert not mission.parent.exists()
    assert tree_state(old.root) == before
    if "postgresql" not in cli.db:
        assert not Path(cli.db).exists()
    else:
        assert dump_database(cli.db) == {}


def test_after_import_check_is_clean_and_lineage_matches_file_by_file(
    cli: CliHarness, old: OldArchive, tmp_path: Path
) -> None:
    before = tree_state(old.root)
    report = _imported(cli, old, tmp_path)
    assert report["counts"]["files imported"] == 22
    assert report["missing_files"] == [MISSING]
    assert tree_state(old.root) == before  # nothing moved, copied or written in the archive
    check = cli.json("check")
    assert check["problems"] == [] and check["exit_code"] == 0
    files = by_name(cli.json("files", "--all-versions"))
    old_files = {r[1]: r for r in old.rows("SELECT file_id, filename FROM file")}
    assert set(files) == set(old_files)
    names = {fid: name for name, (fid, _) in old_files.items()}
    parents: dict[str, set[str]] = {n: set() for n in old_files}
    for source, result in old.rows("SELECT source_file, resulting_file FROM filefilelink"):
        parents[names[result]].add(names[source])
    codes = {
        names[f]: (path, f"{i}.{q}.{r}")
        for f, path, i, q, r in old.rows(
            "SELECT l.resulting_file, c.relative_path || '/' || c.filename, c.interface_version, "
            "c.quality_version, c.revision_version FROM filecodelink l JOIN code c "
            "ON c.code_id = l.source_code"
        )
    }
    for name in old_files:
        lineage = cli.json("lineage", name)
        assert set(lineage["parents"]) == parents[name], name
        if name in codes:
            assert lineage["code"]["path"].endswith(codes[name][0]), name
            assert lineage["code"]["version"] == codes[name][1], name
        else:
            assert lineage["code"] is None, name
        row = files[name]
        if name == MISSING:
            assert row["on_disk"] is False and row["newest"] is False
            continue
        data = Path(row["path"]).read_bytes()
        assert row["sha256"] == hashlib.sha256(data).hexdigest(), name
        assert Path(row["path"]).is_relative_to(old.root)


def test_plan_holds_only_what_the_old_queue_held(
    cli: CliHarness, old: OldArchive, tmp_path: Path
) -> None:
    _imported(cli, old, tmp_path)
    queued = old.rows("SELECT f.filename FROM processqueue q JOIN file f USING (file_id)")
    assert queued == [("dbpfix_L0_20160107_v1.0.0.dat",)]
    plan = {(p["process"], p["date"]): p for p in cli.json("plan")}
    # the queued L0 of 2016-01-07 is in the windows of the L1 of 01-06 and 01-07 only
    assert set(plan) == {("mag_L0toL1", "2016-01-06"), ("mag_L0toL1", "2016-01-07")}
    for p in plan.values():
        assert "dbpfix_L0_20160107_v1.0.0.dat" in p["inputs"]
        assert p["version"] == "1.1.0"
    explained = cli.json("explain", "--product", "dbpfix_mag_L1", "--date", "2016-01-05")
    item = explained["decisions"][0] if "decisions" in explained else explained
    assert item["code"]["version"] == "1.1.0"  # the second era's code builds 2016-01-05


def test_a_new_day_continues_the_version_sequences(
    cli: CliHarness, old: OldArchive, tmp_path: Path
) -> None:
    _imported(cli, old, tmp_path)
    drop(old.root / "incoming", "dbpfix_L0_20160108_v1.0.0.dat", "raw packets of 2016-01-08\n")
    result = cli.json("run")
    assert result["exit_code"] == 0, result
    files = by_name(cli.json("files"))
    assert files["dbpfix_L0_20160108_v1.0.0.dat"]["path"].endswith(
        "/L0/dbpfix_L0_20160108_v1.0.0.dat"
    )
    assert "dbpfix_L1_20160108_v1.0.0.dat" in files
    assert "dbpfix_L1_20160107_v1.1.0.dat" in files  # one quality step past the old 1.0.0
    assert "dbpfix_L1_20160106_v1.1.0.dat" in files
    l1 = Path(files["dbpfix_L1_20160107_v1.1.0.dat"]["path"]).read_text()
    assert l1.startswith("L1 era 2\n")  # built by the second code, with its arguments
    assert "dbpfix_L2_20160107_v1.1.0.dat" in files  # the proposed format, versioned
    assert "dbpfix_L2_20160105.dat" in files  # untouched dates keep their old names
    assert "saw dbpfix_L2_20160108_v1.0.0.dat" in (old.root / "run.log").read_text()
    assert cli.json("plan") == []
    assert cli.json("check")["problems"] == []


def test_releases_are_kept(cli: CliHarness, old: OldArchive, tmp_path: Path) -> None:
    report = _imported(cli, old, tmp_path)
    assert report["counts"]["releases"] == 1 and report["counts"]["release files"] == 14
    expected = {
        name: sorted(
            f
            for f, n in old.rows(
                "SELECT file.filename, release.release_num FROM release "
                "JOIN file ON file.file_id = release.file_id"
            )
            if n == name
        )
        for (name,) in old.rows("SELECT DISTINCT release_num FROM release")
    }
    releases = cli.json("release", "list")
    assert sorted(r["name"] for r in releases) == sorted(expected)
    for name, filenames in expected.items():  # dbprocessing's releases are dbproc releases
        shown = cli.json("release", "show", name)
        assert sorted(f["filename"] for f in shown) == filenames
    # immutable like any release: making it again is refused
    assert cli.run("release", "create", next(iter(expected))).exit_code == 2


def test_an_interrupted_import_resumes_and_a_rerun_changes_nothing(
    cli: CliHarness, old: OldArchive, tmp_path: Path
) -> None:
    mission = tmp_path / "new" / "mission.toml"
    ticks: list[int] = []

    def progress(total: int, _done: int):  # type: ignore[no-untyped-def]
        def tick(n: int) -> None:
            ticks.append(n)
            if len(ticks) == 2:
                raise KeyboardInterrupt

        return tick

    with Archive(cli.db) as archive, pytest.raises(KeyboardInterrupt):
        archive.import_dbprocessing(
            old.source, mission, old_root=old.root, batch=5, progress=progress
        )
    assert len(dump_database(cli.db)["file"]) == 10  # two batches were committed
    report = cli.json(*import_args(old, mission))
    assert report["counts"]["files already imported (skipped)"] == 10
    assert report["counts"]["files imported"] == 12
    assert cli.json("check")["problems"] == []
    assert {(p["process"], p["date"]) for p in cli.json("plan")} == {
        ("mag_L0toL1", "2016-01-06"),
        ("mag_L0toL1", "2016-01-07"),
    }
    before = {
        k: v
        for k, v in dump_database(cli.db).items()
        if k not in ("dbprocessing_import", "pass_record", "event")  # its pass and pass.finished
    }
    again = cli.json(*import_args(old, mission))
    assert again["counts"]["files already imported (skipped)"] == 22
    after = {
        k: v
        for k, v in dump_database(cli.db).items()
        if k not in ("dbprocessing_import", "pass_record", "event")  # its pass and pass.finished
    }
    assert after == before


def test_two_files_with_one_identity_are_reported_not_both_imported(
    cli: CliHarness, old: OldArchive, tmp_path: Path
) -> None:
    if "postgresql" in cli.db:
        pytest.skip("the duplicate is made in the SQLite original")
    import sqlite3

    twin = "dbpfix_L1_20160101_v1.0.0_copy.dat"
    with sqlite3.connect(old.sqlite) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(file)") if r[1] != "file_id"]
        listed = ", ".join(columns)
        picked = ", ".join("? AS filename" if c == "filename" else c for c in columns)
        conn.execute(
            f"INSERT INTO file ({listed}) SELECT {picked} FROM file "  # noqa: S608
            "WHERE filename = 'dbpfix_L1_20160101_v1.0.0.dat'",
            (twin,),
        )
    (old.root / "L1" / "2016" / twin).write_text("a twin\n")
    report = _imported(cli, old, tmp_path)
    assert report["counts"]["files imported"] == 22
    notes = [u for u in report["untranslated"] if u["what"] == twin]
    assert notes and "dbpfix_L1_20160101_v1.0.0.dat" in notes[0]["problem"]
    assert twin not in by_name(cli.json("files", "--all-versions"))


def test_the_coverage_summary_counts_the_imported_files(
    cli: CliHarness, old: OldArchive, tmp_path: Path
) -> None:
    """The dashboard's coverage grid and ``status`` read the per-day summary: after an
    import it holds what the file table holds, as after ingesting."""
    _imported(cli, old, tmp_path)
    with engine_of(cli) as engine, engine.connect() as conn:
        from_files = conn.execute(
            text(
                "SELECT product_id, date, COUNT(*), "
                "SUM(CASE WHEN is_newest THEN 1 ELSE 0 END) FROM file "
                "GROUP BY product_id, date ORDER BY product_id, date"
            )
        ).all()
        summary = conn.execute(
            text(
                "SELECT product_id, date, files, slots FROM coverage_day ORDER BY product_id, date"
            )
        ).all()
    assert from_files and [tuple(r) for r in summary] == [tuple(r) for r in from_files]
