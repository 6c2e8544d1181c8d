"""The ingest pass, rejects and inspect, end to end through the CLI, on both backends."""

from __future__ import annotations

import hashlib
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from dbproc.api import Archive
from dbproc.control.passes import PassOptions, run_pass
from dbproc.db.engine import make_session_factory
from dbproc.examples import example_dir
from tests.helpers import CliHarness, by_name, drop, dump_database, edit_mission, tree_state

EXAMPLE = example_dir() / "incoming"
RAW = sorted(p.name for p in EXAMPLE.iterdir())
L0_FIRST = [n for n in RAW if n.startswith("testDB_000_")]
L0_SECOND = [n for n in RAW if n.startswith("testDB_001_")]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ingest(cli: CliHarness, code: int = 0) -> dict[str, Any]:
    """One ``dbproc ingest --json``; the ingest part of the report."""
    report = cli.json("ingest", code=code)
    assert report["exit_code"] == code
    return report["ingest"]  # type: ignore[no-any-return]


def add_products(cli: CliHarness, **products: dict[str, Any]) -> None:
    edit_mission(cli.mission_file, lambda doc: doc["products"].update(products))
    cli.ok("config", "apply", str(cli.mission_file))


def write_inspector(cli: CliHarness, name: str, source: str) -> None:
    (cli.mission_dir / "codes" / "inspectors" / name).write_text(textwrap.dedent(source))


def incoming(cli: CliHarness) -> list[str]:
    return sorted(os.listdir(cli.incoming))


def rejected_dir(cli: CliHarness) -> Path:
    return cli.errors / "rejected"


def rejects(cli: CliHarness, *args: str) -> dict[str, dict[str, Any]]:
    return by_name(cli.json("rejects", *args))


def file_rows(cli: CliHarness) -> list[tuple[Any, ...]]:
    return dump_database(cli.db)["file"]


# -- the normal case ----------------------------------------------------------------------


def test_ingest_places_registers_and_empties_incoming(applied: CliHarness) -> None:
    report = applied.json("ingest")
    assert report["exit_code"] == 0
    assert report["ingest"]["counts"] == {
        "ingested": 6,
        "absorbed": 0,
        "rejected": 0,
        "skipped": 0,
        "errors": 0,
    }
    assert incoming(applied) == []
    files = by_name(applied.json("files"))
    assert sorted(files) == RAW
    for name in RAW:
        row = files[name]
        assert Path(row["path"]) == applied.root / "L0" / name
        assert Path(row["path"]).read_bytes() == (EXAMPLE / name).read_bytes()
        assert row["sha256"] == sha256(EXAMPLE / name)
    second = files["testDB_000_001.raw"]
    assert {k: second[k] for k in ("product", "date", "version", "newest", "keywords")} == {
        "product": "L0_first",
        "date": "2016-01-02",
        "version": "1.0.0",
        "newest": True,
        "keywords": {"nnn": "001"},
    }
    assert second["metadata"] == {"apid": "000", "first_line": "Second Part."}
    assert files["testDB_001_000.raw"]["product"] == "L0_second"
    # a second pass finds nothing and changes no record
    before = file_rows(applied)
    assert ingest(applied)["counts"]["ingested"] == 0
    assert file_rows(applied) == before


def test_summary_fits_one_screen(applied: CliHarness) -> None:
    for n in range(8):
        drop(applied.incoming, f"junk_{n}.bin", f"junk {n}\n")
    result = applied.ok("ingest", code=3)
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "ingest: 6 ingested, 0 absorbed (already registered), "
        "8 rejected, 0 left for later, 0 failed"
    )
    assert lines[1] == (
        "  rejected junk_0.bin: no product claims it: its name matches no product's format"
    )
    assert lines[-1] == "  ... and 3 more (dbproc rejects)"
    assert len(lines) == 7


# -- metadata -----------------------------------------------------------------------------

HK_INSPECTOR = """
    import os


    def inspect(path, **args):
        name = os.path.basename(path)
        with open(path, encoding="utf-8") as fh:
            fields = dict(line.strip().split("=", 1) for line in fh if "=" in line)
        return {
            "date": name[3:7] + "-" + name[7:9] + "-" + name[9:11],
            "metadata": {
                "temperature_K": float(fields["temperature_K"]),
                "mode": fields["mode"],
                "safe": fields["safe"] == "yes",
            },
        }
"""
HK = {"level": 0, "dir": "HK/{Y}", "format": "hk_{Y}{m}{d}.txt", "inspector": "inspectors/hk.py"}


def test_metadata_is_stored_shown_and_filterable(applied: CliHarness) -> None:
    write_inspector(applied, "hk.py", HK_INSPECTOR)
    add_products(applied, HK=HK)
    values = [(0.0158, "science", "no"), (0.0201, "science", "yes"), (0.5, "survey", "no")]
    for day, (temperature, mode, safe) in enumerate(values, 1):
        drop(
            applied.incoming,
            f"hk_2016010{day}.txt",
            f"temperature_K={temperature}\nmode={mode}\nsafe={safe}\n",
        )
    ingest(applied)
    files = by_name(applied.json("files", "--product", "HK"))
    assert files["hk_20160101.txt"]["metadata"] == {
        "temperature_K": 0.0158,
        "mode": "science",
        "safe": False,
    }
    assert files["hk_20160103.txt"]["path"] == str(applied.root / "HK/2016/hk_20160103.txt")

    def where(*filters: str) -> list[str]:
        args = [a for f in filters for a in ("--where", f)]
        return sorted(r["filename"] for r in applied.json("files", *args))

    assert where("temperature_K<0.02") == ["hk_20160101.txt"]
    assert where("temperature_K>=0.0201") == ["hk_20160102.txt", "hk_20160103.txt"]
    assert where("temperature_K=0.5") == ["hk_20160103.txt"]
    assert where("mode=science", "safe=true") == ["hk_20160102.txt"]
    assert where("mode!=science") == ["hk_20160103.txt"]
    assert where("apid=001") == L0_SECOND  # the example inspector's metadata
    assert where("first_line=Third Part.") == ["testDB_000_002.raw"]
    assert where("nosuchkey=1") == []
    bad = applied.run("files", "--where", "temperature_K")
    assert bad.exit_code == 2 and "--where 'temperature_K': write KEY=VALUE" in bad.stderr


# -- the incoming folder rules ------------------------------------------------------------


def test_hidden_part_and_tmp_files_are_left_in_place(applied: CliHarness) -> None:
    waiting = [".testDB_000_004.raw", "testDB_000_004.raw.part", "testDB_000_005.raw.tmp"]
    for name in waiting:
        drop(applied.incoming, name, "still arriving\n")
    report = ingest(applied)
    assert report["counts"]["ingested"] == 6
    assert {s["filename"] for s in report["skipped"]} == set(waiting)
    assert incoming(applied) == sorted(waiting)
    assert applied.json("rejects") == []
    # the producer renames it when complete: the next pass takes it
    (applied.incoming / "testDB_000_004.raw.part").rename(applied.incoming / "testDB_000_004.raw")
    assert [r["filename"] for r in ingest(applied)["ingested"]] == ["testDB_000_004.raw"]


def test_young_stable_file_is_taken_by_the_same_pass(applied: CliHarness) -> None:
    def mutate(doc: dict[str, Any]) -> None:
        doc["ingest"] = {"settle_seconds": 600, "settle_check_seconds": 0.05}

    edit_mission(applied.mission_file, mutate)
    applied.ok("config", "apply", str(applied.mission_file))
    drop(applied.incoming, "testDB_000_004.raw", "Fifth Part.\n", age=0)
    report = ingest(applied)
    assert "testDB_000_004.raw" in {r["filename"] for r in report["ingested"]}
    assert report["counts"]["ingested"] == 7 and incoming(applied) == []


def _pass_with_sleep(cli: CliHarness, sleep: Any) -> dict[str, Any]:
    """An ingest pass through the API whose settle-check sleep is ``sleep``."""
    archive = Archive(cli.db)
    try:
        report = run_pass(
            archive.engine,
            make_session_factory(archive.engine),
            "ingest",
            PassOptions(ingest=True, process=False, sleep=sleep),
        )
    finally:
        archive.close()
    assert report.ingest is not None
    return report.ingest.as_json()


def test_files_changing_during_the_settle_check_are_left_for_later(applied: CliHarness) -> None:
    growing = drop(applied.incoming, "testDB_000_004.raw", "Fifth", age=0)
    touched = drop(applied.incoming, "testDB_000_005.raw", "Sixth Part.\n", age=0)
    drop(applied.incoming, "testDB_000_006.raw", "Seventh Part.\n", age=0)
    sleeps: list[float] = []

    def producer_still_writing(seconds: float) -> None:
        sleeps.append(seconds)
        with growing.open("ab") as fh:
            fh.write(b" Part.\n")
        later = touched.stat().st_mtime_ns + 1_000_000
        os.utime(touched, ns=(later, later))

    report = _pass_with_sleep(applied, producer_still_writing)
    assert sleeps == [1.0]  # one settle check per pass, not one per file
    assert {s["filename"]: s["why"] for s in report["skipped"]} == {
        "testDB_000_004.raw": "still being written (size or mtime changed)",
        "testDB_000_005.raw": "still being written (size or mtime changed)",
    }
    taken = {r["filename"] for r in report["ingested"]}
    assert "testDB_000_006.raw" in taken and len(taken) == 7
    assert incoming(applied) == ["testDB_000_004.raw", "testDB_000_005.raw"]
    # next pass: unchanged now, so taken
    sleeps.clear()
    again = _pass_with_sleep(applied, sleeps.append)
    assert sleeps == [1.0]
    assert {r["filename"] for r in again["ingested"]} == {
        "testDB_000_004.raw",
        "testDB_000_005.raw",
    }
    files = by_name(applied.json("files"))
    assert Path(files["testDB_000_004.raw"]["path"]).read_text() == "Fifth Part.\n"


def test_old_files_need_no_settle_wait(applied: CliHarness) -> None:
    sleeps: list[float] = []
    report = _pass_with_sleep(applied, sleeps.append)
    assert sleeps == [] and report["counts"]["ingested"] == 6


# -- symlinks -----------------------------------------------------------------------------


def test_symlink_to_a_file_in_its_product_folder_is_registered_in_place(
    applied: CliHarness,
) -> None:
    target_abs = drop(applied.root / "L0", "testDB_000_004.raw", "Fifth Part.\n")
    target_rel = drop(applied.root / "L0", "testDB_000_005.raw", "Sixth Part.\n")
    os.symlink(target_abs, applied.incoming / "testDB_000_004.raw")
    os.symlink("../L0/testDB_000_005.raw", applied.incoming / "testDB_000_005.raw")
    inode = target_abs.stat().st_ino
    report = ingest(applied)
    assert report["counts"]["ingested"] == 8
    assert incoming(applied) == []
    files = by_name(applied.json("files"))
    for target in (target_abs, target_rel):
        row = files[target.name]
        assert row["path"] == str(target) and row["sha256"] == sha256(target)
        assert target.is_file() and not target.is_symlink()
    assert target_abs.stat().st_ino == inode  # registered in place, not copied
    # a link to a registered file is absorbed
    os.symlink(target_abs, applied.incoming / "testDB_000_004.raw")
    before = file_rows(applied)
    again = ingest(applied)
    assert again["absorbed"] == ["testDB_000_004.raw"] and incoming(applied) == []
    assert file_rows(applied) == before and target_abs.read_text() == "Fifth Part.\n"


def test_symlinks_that_cannot_be_registered_in_place_are_rejected(
    applied: CliHarness, tmp_path: Path
) -> None:
    elsewhere = drop(tmp_path / "elsewhere", "testDB_000_004.raw", "Fifth Part.\n")
    in_folder = drop(applied.root / "L0", "other_name.raw", "Sixth Part.\n")
    os.symlink(elsewhere, applied.incoming / "testDB_000_004.raw")
    os.symlink(tmp_path / "missing.raw", applied.incoming / "testDB_000_005.raw")
    os.symlink(in_folder, applied.incoming / "testDB_000_006.raw")
    report = ingest(applied, code=3)
    assert report["counts"]["ingested"] == 6
    reasons = {r["filename"]: r for r in report["rejected"]}
    assert {r["reason"] for r in reasons.values()} == {"bad_symlink"}
    assert "not in the product folder" in reasons["testDB_000_004.raw"]["message"]
    assert "which is not a file" in reasons["testDB_000_005.raw"]["message"]
    assert "name differs" in reasons["testDB_000_006.raw"]["message"]
    assert incoming(applied) == []
    for name in ("testDB_000_004.raw", "testDB_000_005.raw", "testDB_000_006.raw"):
        assert (rejected_dir(applied) / name).is_symlink()  # the link moved, not its target
    assert elsewhere.read_text() == "Fifth Part.\n" and in_folder.read_text() == "Sixth Part.\n"
    assert set(rejects(applied)) == set(reasons)


# -- re-deliveries and conflicts ----------------------------------------------------------


def test_identical_redelivery_is_absorbed(applied: CliHarness) -> None:
    ingest(applied)
    before = file_rows(applied)
    drop(applied.incoming, "testDB_000_002.raw", (EXAMPLE / "testDB_000_002.raw").read_bytes())
    report = ingest(applied)
    assert report["absorbed"] == ["testDB_000_002.raw"] and report["counts"]["ingested"] == 0
    assert incoming(applied) == [] and file_rows(applied) == before
    assert applied.json("rejects") == []


def test_conflicting_redelivery_is_rejected_and_registered_file_kept(
    applied: CliHarness,
) -> None:
    ingest(applied)
    registered = applied.root / "L0" / "testDB_000_002.raw"
    original = registered.read_bytes()
    before = file_rows(applied)
    drop(applied.incoming, "testDB_000_002.raw", "A corrected third part.\n")
    report = ingest(applied, code=3)
    (reject,) = report["rejected"]
    assert reject["reason"] == "conflict"
    assert "a different file called testDB_000_002.raw is registered" in reject["message"]
    assert registered.read_bytes() == original
    assert file_rows(applied) == before
    assert (rejected_dir(applied) / "testDB_000_002.raw").read_text() == (
        "A corrected third part.\n"
    )
    assert incoming(applied) == []


def test_same_identity_twice_in_one_pass_first_wins(applied: CliHarness) -> None:
    add_products(applied, Daily={"level": 0, "dir": "daily", "format": "daily_{Y}{b}{d}.txt"})
    drop(applied.incoming, "daily_2016JAN01.txt", "first\n")
    drop(applied.incoming, "daily_2016Jan01.txt", "second\n")
    report = ingest(applied, code=3)
    assert "daily_2016JAN01.txt" in {r["filename"] for r in report["ingested"]}
    (reject,) = report["rejected"]
    assert reject["filename"] == "daily_2016Jan01.txt" and reject["reason"] == "conflict"
    assert (
        "same product (Daily), date, keywords and version (1.0.0) as registered file "
        "daily_2016JAN01.txt"
    ) in reject["message"]
    assert (applied.root / "daily" / "daily_2016JAN01.txt").read_text() == "first\n"
    assert not (applied.root / "daily" / "daily_2016Jan01.txt").exists()


def test_unregistered_file_at_the_destination_is_never_overwritten(applied: CliHarness) -> None:
    stray = drop(applied.root / "L0", "testDB_000_004.raw", "stray bytes\n")
    leftover = drop(applied.root / "L0", "testDB_000_005.raw", "Sixth Part.\n")
    drop(applied.incoming, "testDB_000_004.raw", "Fifth Part.\n")
    drop(applied.incoming, "testDB_000_005.raw", "Sixth Part.\n")
    report = ingest(applied, code=3)
    (reject,) = report["rejected"]
    assert reject["filename"] == "testDB_000_004.raw" and reject["reason"] == "conflict"
    assert "already holds a different file" in reject["message"]
    assert stray.read_text() == "stray bytes\n"
    # same bytes at the destination: a leftover of a crashed pass, adopted
    files = by_name(applied.json("files"))
    assert files["testDB_000_005.raw"]["path"] == str(leftover)
    assert "testDB_000_004.raw" not in files


# -- rejects --------------------------------------------------------------------------------


def test_name_matching_no_format_is_rejected_with_record_and_sidecar(
    applied: CliHarness,
) -> None:
    drop(applied.incoming, "notes.txt", "not a data file\n")
    report = ingest(applied, code=3)
    assert report["counts"]["ingested"] == 6
    (reject,) = report["rejected"]
    assert reject == {
        "filename": "notes.txt",
        "reason": "no_product",
        "message": "no product claims it: its name matches no product's format",
        "stored": str(rejected_dir(applied) / "notes.txt"),
    }
    assert (rejected_dir(applied) / "notes.txt").read_text() == "not a data file\n"
    sidecar = (rejected_dir(applied) / "notes.txt.reason").read_text()
    assert "file: notes.txt\n" in sidecar and "reason: no_product\n" in sidecar
    listed = rejects(applied)["notes.txt"]
    assert listed["reason"] == "no_product" and listed["present"] is True
    assert listed["size"] == len("not a data file\n") and listed["retried_at"] is None
    assert "notes.txt" in applied.ok("rejects").stdout
    assert incoming(applied) == []


def test_inspector_saying_none_is_rejected(applied: CliHarness) -> None:
    drop(applied.incoming, "testDB_000_abc.raw", "matches the format, not the inspector\n")
    (reject,) = ingest(applied, code=3)["rejected"]
    assert reject["reason"] == "no_product"
    assert reject["message"] == "no product claims it: the inspectors of L0_first returned None"


def test_a_file_claimed_by_two_products_is_rejected_naming_both(applied: CliHarness) -> None:
    twin = {
        "level": 0,
        "dir": "L0twin",
        "format": "testDB_000_{nnn}.raw",
        "inspector": "inspectors/l0.py:inspect",
        "inspector_args": {"apid": "000"},
    }
    add_products(applied, L0_twin=twin)
    report = ingest(applied, code=3)
    assert sorted(r["filename"] for r in report["ingested"]) == L0_SECOND
    assert sorted(r["filename"] for r in report["rejected"]) == L0_FIRST
    for reject in report["rejected"]:
        assert reject["reason"] == "ambiguous"
        assert reject["message"].startswith("claimed by several products: L0_first, L0_twin;")
    detail = rejects(applied)["testDB_000_000.raw"]["detail"]
    assert "L0_first" in detail and "L0_twin" in detail  # what each inspector said


BAD_INSPECTORS = """
    import pathlib

    with pathlib.Path(__file__).with_name("bad.loads").open("a") as fh:
        fh.write("loaded\\n")


    def good(path, **args):
        return {"date": "2016-01-01", "metadata": {"args": args}}


    def raises(path, **args):
        raise RuntimeError("header checksum mismatch")


    def interval(path, **args):
        return {"date": "2016-01-01", "start": "2016-01-02T00:00:00",
                "stop": "2016-01-01T00:00:00"}


    def not_a_dict(path, **args):
        return "2016-01-01"


    def bad_version(path, **args):
        return {"date": "2016-01-01", "version": "one"}


    def bad_metadata(path, **args):
        return {"date": "2016-01-01", "metadata": {"t": object()}}


    def no_date(path, **args):
        return {"version": "1.0.0"}


    def bad_keyword(path, **args):
        return {"date": "2016-01-01", "keywords": {"nnn": "999"}}


    def quits(path, **args):
        raise SystemExit(1)
"""
BAD = {
    "raises": "raised RuntimeError('header checksum mismatch')",
    "interval": "returned an invalid result: start 2016-01-02 00:00:00 is not before stop",
    "not_a_dict": "returned an invalid result: expected a dict or None, got str",
    "bad_version": "returned an invalid result: 'version': 'one' is not a version",
    "bad_metadata": "returned an invalid result: 'metadata' is not JSON-able",
    "no_date": "returned an invalid result: 'date' is required",
    "bad_keyword": "returned an invalid result: keyword nnn='999' disagrees with '001'",
    "quits": "raised SystemExit(1)",
}


def test_inspector_errors_are_rejects_naming_the_inspector_and_reason(
    applied: CliHarness,
) -> None:
    write_inspector(applied, "bad.py", BAD_INSPECTORS)
    products = {
        f"E_{fn}": {
            "level": 0,
            "dir": f"E/{fn}",
            "format": f"e_{fn}_{{nnn}}.dat",
            "inspector": f"inspectors/bad.py:{fn}",
            "inspector_args": {"gain": 2},
        }
        for fn in [*BAD, "good"]
    }
    add_products(applied, **products)
    (applied.mission_dir / "codes" / "inspectors" / "bad.loads").unlink(missing_ok=True)
    for fn in [*BAD, "good"]:
        for n in (1, 2):
            drop(applied.incoming, f"e_{fn}_00{n}.dat", "payload\n")
    report = ingest(applied, code=3)
    ingested = {r["filename"] for r in report["ingested"]}
    assert {"e_good_001.dat", "e_good_002.dat"} <= ingested
    by_file = {r["filename"]: r for r in report["rejected"]}
    assert len(by_file) == 2 * len(BAD)
    for fn, fragment in BAD.items():
        reject = by_file[f"e_{fn}_001.dat"]
        assert reject["reason"] == "inspector_error"
        assert reject["message"].startswith(f"inspector inspectors/bad.py:{fn} of product E_{fn} ")
        assert fragment in reject["message"], reject["message"]
    assert (
        "RuntimeError: header checksum mismatch" in rejects(applied)["e_raises_001.dat"]["detail"]
    )
    # one module, ten products, twenty files: loaded once in the pass
    loads = applied.mission_dir / "codes" / "inspectors" / "bad.loads"
    assert loads.read_text() == "loaded\n"
    good = by_name(applied.json("files", "--product", "E_good"))
    assert good["e_good_001.dat"]["metadata"] == {"args": {"gain": 2}}


def test_rejects_retry_after_fixing_the_mission(applied: CliHarness) -> None:
    drop(applied.incoming, "hk_20160101.txt", "temperature_K=0.1\nmode=safe\nsafe=yes\n")
    ingest(applied, code=3)
    assert rejects(applied)["hk_20160101.txt"]["reason"] == "no_product"
    write_inspector(applied, "hk.py", HK_INSPECTOR)
    add_products(applied, HK=HK)
    result = applied.json("rejects", "retry", "hk_20160101.txt")
    assert result == {"moved": ["hk_20160101.txt"], "skipped": []}
    assert incoming(applied) == ["hk_20160101.txt"]
    assert sorted(os.listdir(rejected_dir(applied))) == []  # file and sidecar gone
    assert applied.json("rejects") == []
    (retried,) = applied.json("rejects", "--all")
    assert retried["retried_at"] is not None and retried["present"] is False
    report = ingest(applied)
    assert [r["filename"] for r in report["ingested"]] == ["hk_20160101.txt"]
    assert (
        by_name(applied.json("files", "--product", "HK"))["hk_20160101.txt"]["metadata"]["mode"]
        == "safe"
    )


def test_rejects_retry_names_suffixes_and_refusals(applied: CliHarness) -> None:
    drop(applied.incoming, "notes.txt", "one\n")
    drop(applied.incoming, "other.txt", "other\n")
    ingest(applied, code=3)
    drop(applied.incoming, "notes.txt", "two\n")
    ingest(applied, code=3)
    listed = applied.json("rejects")
    stored = {Path(r["stored"]).name: Path(r["stored"]).read_text() for r in listed}
    assert stored == {"notes.txt": "one\n", "notes.txt.1": "two\n", "other.txt": "other\n"}
    assert (rejected_dir(applied) / "notes.txt.1.reason").is_file()
    unknown = applied.run("rejects", "retry", "nope.txt")
    assert unknown.exit_code == 2 and "no pending reject called nope.txt" in unknown.stderr
    result = applied.json("rejects", "retry", "notes.txt")
    assert result["moved"] == ["notes.txt"]
    assert result["skipped"] == [f"notes.txt: {applied.incoming / 'notes.txt'} already exists"]
    assert (applied.incoming / "notes.txt").read_text() == "one\n"
    assert sorted(r["stored"].rsplit("/", 1)[1] for r in applied.json("rejects")) == [
        "notes.txt.1",
        "other.txt",
    ]
    result = applied.json("rejects", "retry", "notes.txt.1")  # by stored name
    assert result["skipped"] and not result["moved"]  # incoming still holds notes.txt
    result = applied.json("rejects", "retry")
    assert result["moved"] == ["other.txt"]


# -- names ----------------------------------------------------------------------------------


def test_names_with_spaces_and_non_ascii_letters(applied: CliHarness) -> None:
    add_products(
        applied,
        Station={
            "level": 0,
            "dir": "Stationsdaten/Köln {Y}",
            "format": "Messung Köln {Y}-{m}-{d}.csv",
        },
    )
    name = "Messung Köln 2016-01-05.csv"
    drop(applied.incoming, name, "Zeit;Wert\n")
    drop(applied.incoming, "Protokoll für Juni.pdf", "%PDF\n")
    report = ingest(applied, code=3)
    files = by_name(applied.json("files", "--product", "Station"))
    assert files[name]["path"] == str(applied.root / "Stationsdaten" / "Köln 2016" / name)
    assert files[name]["date"] == "2016-01-05"
    assert Path(files[name]["path"]).read_text() == "Zeit;Wert\n"
    assert [r["filename"] for r in report["rejected"]] == ["Protokoll für Juni.pdf"]
    assert name in applied.ok("files").stdout
    moved = applied.json("rejects", "retry", "Protokoll für Juni.pdf")["moved"]
    assert moved == ["Protokoll für Juni.pdf"] and incoming(applied) == moved


def test_hostile_names_are_rejected_cleanly_and_never_lost(applied: CliHarness) -> None:
    raw_dir = os.fsencode(applied.incoming)
    with open(raw_dir + b"/bad\xff name.raw", "wb") as fh:
        fh.write(b"latin-1 name\n")
    os.utime(raw_dir + b"/bad\xff name.raw", (0, 0))  # old: no settle wait
    drop(applied.incoming, "line\nbreak.raw", "newline\n")
    drop(applied.incoming, "tab\there.raw", "tab\n")
    long_name = "x" * 251 + ".raw"  # 255 bytes: the longest name a file system allows
    drop(applied.incoming, long_name, "long one\n")
    shown = applied.json("inspect", os.fsdecode(raw_dir + b"/bad\xff name.raw"), code=3)
    assert shown["reason"] == "bad_name" and shown["claimed_by"] is None
    assert shown["file"] == str(applied.incoming / "bad\\xff name.raw")
    result = applied.run("--json", "ingest")
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    listed = rejects(applied)
    assert listed["bad\\xff name.raw"]["reason"] == "bad_name"
    assert "not valid UTF-8" in listed["bad\\xff name.raw"]["message"]
    assert listed["line\\x0abreak.raw"]["reason"] == "bad_name"
    assert listed["tab\\x09here.raw"]["reason"] == "bad_name"
    assert listed[long_name]["reason"] == "no_product"
    assert all(r["present"] for r in listed.values())
    contents = {
        "bad\\xff name.raw": "latin-1 name\n",
        "line\\x0abreak.raw": "newline\n",
        "tab\\x09here.raw": "tab\n",
        long_name: "long one\n",
    }
    for name, text in contents.items():
        stored = Path(listed[name]["stored"])
        assert stored.read_text() == text
        assert stored.with_name(stored.name + ".reason").is_file()
    assert len(Path(listed[long_name]["stored"]).name) == 248  # room left for ".reason"
    assert incoming(applied) == []
    # the same long name again gets a numbered suffix and still fits
    drop(applied.incoming, long_name, "long two\n")
    ingest(applied, code=3)
    stored = [Path(r["stored"]) for r in applied.json("rejects") if r["filename"] == long_name]
    assert [p.read_text() for p in stored] == ["long one\n", "long two\n"]
    assert stored[1].name == "x" * 246 + ".1"
    # retry moves them back under their original names (issue 12)
    result = applied.json("rejects", "retry", "bad\\xff name.raw", long_name)
    assert sorted(result["moved"]) == sorted(["bad\\xff name.raw", long_name])
    with open(raw_dir + b"/bad\xff name.raw", "rb") as fh:
        assert fh.read() == b"latin-1 name\n"
    assert (applied.incoming / long_name).read_text() == "long one\n"


# -- inspect --------------------------------------------------------------------------------


def test_inspect_shows_who_claims_a_file_and_changes_nothing(applied: CliHarness) -> None:
    db_before, tree_before = dump_database(applied.db), tree_state(applied.mission_dir)
    path = applied.incoming / "testDB_000_001.raw"
    result = applied.json("inspect", str(path))
    assert result["claimed_by"] == "L0_first" and result["file"] == str(path)
    assert result["answers"] == {
        "L0_first": {
            "product": "L0_first",
            "date": "2016-01-02",
            "start": "2016-01-02T00:00:00Z",
            "stop": "2016-01-03T00:00:00Z",
            "version": "1.0.0",
            "keywords": {"nnn": "001"},
            "metadata": {"apid": "000", "first_line": "Second Part."},
        }
    }
    assert result["format_mismatch"] == ["L0_second", "L1", "L2"]
    text = applied.ok("inspect", str(path)).stdout
    assert text.splitlines()[1:] == [
        "claimed by: L0_first",
        "L0_first:",
        "  date: 2016-01-02",
        "  start: 2016-01-02T00:00:00Z",
        "  stop: 2016-01-03T00:00:00Z",
        "  version: 1.0.0",
        '  keywords: {"nnn": "001"}',
        '  metadata: {"apid": "000", "first_line": "Second Part."}',
        "not asked (the name does not match their format): L0_second, L1, L2",
    ]
    assert dump_database(applied.db) == db_before
    assert tree_state(applied.mission_dir) == tree_before


def test_inspect_shows_ambiguity_errors_and_refusals(applied: CliHarness, tmp_path: Path) -> None:
    write_inspector(applied, "bad.py", BAD_INSPECTORS)
    add_products(
        applied,
        L0_twin={
            "level": 0,
            "dir": "L0twin",
            "format": "testDB_000_{nnn}.raw",
            "inspector": "inspectors/l0.py",
        },
        E_raises={
            "level": 0,
            "dir": "E",
            "format": "e_{nnn}.dat",
            "inspector": "inspectors/bad.py:raises",
        },
    )
    ambiguous = applied.json("inspect", str(applied.incoming / "testDB_000_001.raw"), code=3)
    assert ambiguous["claimed_by"] is None and ambiguous["reason"] == "ambiguous"
    assert set(ambiguous["answers"]) == {"L0_first", "L0_twin"}
    failing = drop(tmp_path, "e_001.dat", "x")
    result = applied.json("inspect", str(failing), code=3)
    assert result["reason"] == "inspector_error"
    assert "header checksum mismatch" in result["answers"]["E_raises"]["error"]
    assert (
        "RuntimeError: header checksum mismatch"
        in applied.ok("inspect", str(failing), code=3).stdout
    )
    nobody = drop(tmp_path, "readme.txt", "x")
    text = applied.ok("inspect", str(nobody), code=3).stdout
    assert "not ingestible: no product claims it" in text
    assert applied.run("inspect", str(tmp_path / "absent.dat")).exit_code == 2


def test_incoming_folder_missing_exits_3_naming_it(applied: CliHarness) -> None:
    for name in RAW:
        (applied.incoming / name).unlink()
    applied.incoming.rmdir()  # an unmounted share
    report = ingest(applied, code=3)
    assert report["counts"]["ingested"] == 0
    assert str(applied.incoming) in report["errors"][0]["error"]
    assert "does not exist" in applied.run("ingest").stdout


@pytest.mark.parametrize("command", ["ingest", "rejects", "files"])
def test_commands_need_an_applied_mission(cli: CliHarness, command: str) -> None:
    result = cli.run(command)
    assert result.exit_code == 5 and "Traceback" not in result.output


@pytest.fixture
def other_filesystem(tmp_path: Path) -> Any:
    """A folder on another file system than tmp_path (/dev/shm), removed afterwards."""
    import shutil
    import uuid

    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system at /dev/shm")
    folder = shm / f"dbproc-test-{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_incoming_on_another_file_system_is_copied_safely(
    cli: CliHarness, other_filesystem: Path
) -> None:
    remote = other_filesystem / "incoming"

    def mutate(doc: dict[str, Any]) -> None:
        doc["mission"]["incoming"] = str(remote)

    edit_mission(cli.mission_file, mutate)
    remote.mkdir()  # outside the root: dbproc never creates it (contract section 10)
    cli.ok("config", "apply", str(cli.mission_file))
    for name in RAW:
        drop(remote, name, (EXAMPLE / name).read_bytes())
    drop(remote, "notes.txt", "no product\n")
    report = cli.json("ingest", code=3)["ingest"]
    assert report["counts"]["ingested"] == 6 and os.listdir(remote) == []
    for row in cli.json("files"):
        placed = Path(row["path"])
        assert placed.parent == cli.root / "L0" and sha256(placed) == row["sha256"]
        assert placed.stat().st_dev != other_filesystem.stat().st_dev
    stored = rejected_dir(cli) / "notes.txt"  # errors/ is on the root's file system
    assert stored.read_text() == "no product\n"
    assert not any((cli.root / ".dbproc-staging").rglob("*.part"))
    assert cli.json("rejects", "retry")["moved"] == ["notes.txt"]
    assert (remote / "notes.txt").read_text() == "no product\n" and not stored.exists()


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_worked_example_of_docs_inspectors_md_works(cli: CliHarness) -> None:
    import re

    text = (DOCS / "inspectors.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- doc-test: (\w+) (.+?) -->\n```\w*\n(.*?)```", text, re.S)
    assert [b[0] for b in blocks] == ["file", "file", "append", "output"]
    shown = ""
    for action, target, body in blocks:
        if action == "file":
            path = cli.mission_dir / target
            path.write_text(body, encoding="utf-8")
            os.utime(path, (0, 0))
        elif action == "append":
            with (cli.mission_dir / target).open("a", encoding="utf-8") as fh:
                fh.write("\n" + body)
        else:
            shown = body
    cli.ok("config", "apply", str(cli.mission_file))
    sample = cli.incoming / "rbspa_mag_l0_20160101.txt"
    printed = cli.ok("inspect", str(sample)).stdout
    assert printed.splitlines()[1:] == shown.splitlines()[2:]  # after "$ ..." and "file:"
    report = ingest(cli)
    assert "rbspa_mag_l0_20160101.txt" in {r["filename"] for r in report["ingested"]}
    (row,) = cli.json("files", "--where", "sensor_temperature_K>290", "--where", "firmware=4.2")
    assert row["path"] == str(cli.root / "mag/l0/2016/rbspa_mag_l0_20160101.txt")
    assert row["keywords"] == {"sc": "rbspa"} and row["stop"] == "2016-01-01T23:59:59Z"


def test_a_file_that_cannot_be_placed_stays_in_incoming(applied: CliHarness) -> None:
    blocker = drop(applied.root, "L0", "a file where the product folder should be\n")
    report = ingest(applied, code=3)
    assert report["counts"] == {
        "ingested": 0,
        "absorbed": 0,
        "rejected": 0,
        "skipped": 0,
        "errors": 6,
    }
    assert {e["filename"] for e in report["errors"]} == set(RAW)
    assert all("Not a directory" in e["error"] for e in report["errors"])
    assert incoming(applied) == RAW and applied.json("files") == []
    assert applied.json("rejects") == []
    text = applied.ok("ingest", code=3).stdout
    assert "(left in incoming)" in text and "... and 1 more failed (see the log)" in text
    blocker.unlink()
    assert ingest(applied)["counts"]["ingested"] == 6


# -- batches ------------------------------------------------------------------------------

VERSIONED = {"level": 0, "dir": "ver/{Y}", "format": "ver_{Y}{b}{d}_v{VERSION}.txt"}


@pytest.mark.parametrize("batch", [2, 200])
def test_versions_across_and_within_batches_keep_one_newest(
    applied: CliHarness, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    import dbproc.ingest.ingestor

    monkeypatch.setattr(dbproc.ingest.ingestor, "BATCH_FILES", batch)
    add_products(applied, Ver=VERSIONED)
    names = [f"ver_2016Jan0{d}_v{v}.txt" for d in (1, 2) for v in ("1.0.0", "1.1.0", "1.0.1")]
    for name in names:
        drop(applied.incoming, name, f"{name}\n")
    # the same identity as ver_2016Jan01_v1.1.0.txt under another name; it sorts first
    drop(applied.incoming, "ver_2016JAN01_v1.1.0.txt", "ver_2016JAN01_v1.1.0.txt\n")
    report = ingest(applied, code=3)
    names = [n.replace("Jan01_v1.1.0", "JAN01_v1.1.0") for n in names]
    assert sorted(r["filename"] for r in report["ingested"] if r["product"] == "Ver") == sorted(
        names
    )
    (reject,) = report["rejected"]
    assert reject["filename"] == "ver_2016Jan01_v1.1.0.txt" and reject["reason"] == "conflict"
    assert "as registered file ver_2016JAN01_v1.1.0.txt" in reject["message"]
    rows = applied.json("files", "--product", "Ver", "--all-versions")
    newest = sorted(r["filename"] for r in rows if r["newest"])
    assert newest == ["ver_2016JAN01_v1.1.0.txt", "ver_2016Jan02_v1.1.0.txt"]
    assert incoming(applied) == []
    # a later, higher version takes over; a lower one arrives as an old version
    drop(applied.incoming, "ver_2016Jan01_v2.0.0.txt", "two\n")
    drop(applied.incoming, "ver_2016Jan02_v1.0.2.txt", "old\n")
    ingest(applied)
    rows = by_name(applied.json("files", "--product", "Ver", "--all-versions"))
    assert rows["ver_2016Jan01_v2.0.0.txt"]["newest"] is True
    assert rows["ver_2016JAN01_v1.1.0.txt"]["newest"] is False
    assert rows["ver_2016Jan02_v1.0.2.txt"]["newest"] is False
    assert rows["ver_2016Jan02_v1.1.0.txt"]["newest"] is True
    # every registered file is where its record says, byte for byte
    for row in rows.values():
        assert Path(row["path"]).read_text() in (f"{row['filename']}\n", "two\n", "old\n")


WIDE_INSPECTOR = """
    import os


    def inspect(path, **args):
        day = os.path.basename(path)[5:13]
        date = day[:4] + "-" + day[4:6] + "-" + day[6:]
        return {"date": date, "start": date + "T00:00:00", "stop": date + "T00:00:00"}
"""


def test_a_batch_settled_one_by_one_still_widens_the_product_span(
    applied: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that meets a registration made meanwhile is rolled back and settled file
    by file; the span the rolled-back batch had recorded must be recorded again."""
    import dbproc.ingest.batch
    from dbproc.db.files import IdentityTaken

    inspector = WIDE_INSPECTOR.replace(
        '"stop": date + "T00:00:00"', '"stop": date[:8] + "28T00:00:00"'
    )
    write_inspector(applied, "wide.py", inspector)
    wide = {
        "level": 0,
        "dir": "wide",
        "format": "wide_{Y}{m}{d}.dat",
        "inspector": "inspectors/wide.py",
    }
    add_products(applied, Wide=wide)
    for day in ("20160101", "20160102"):
        drop(applied.incoming, f"wide_{day}.dat", day)
    real = dbproc.ingest.batch.register_file
    calls: list[str] = []

    def meets_a_registration_made_meanwhile(*args: Any, **kwargs: Any) -> int:
        calls.append(kwargs["filename"])
        if kwargs["filename"] == "wide_20160102.dat":  # wide_20160101's span is noted by now
            raise IdentityTaken(kwargs["filename"])
        return real(*args, **kwargs)

    monkeypatch.setattr(dbproc.ingest.batch, "register_file", meets_a_registration_made_meanwhile)
    report = ingest(applied)
    assert "wide_20160101.dat" in calls  # registered in the batch, then rolled back
    assert len(report["ingested"]) == len(RAW) + 2  # all settled one by one
    from sqlalchemy import select

    from dbproc.db.models import Product

    with Archive(applied.db) as archive, archive.reading() as session:
        span = session.scalar(select(Product.max_span_seconds).where(Product.name == "Wide"))
    assert span is not None and span >= 26 * 86400, f"the span was not widened again: {span}"
