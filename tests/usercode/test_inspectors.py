"""Hostile inspectors (contract section 10): each runs in a worker process, bounded by
``inspector_timeout``; a hang, a crash or a segfault refuses that file only."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

from tests.helpers import CliHarness, by_name, drop, edit_mission

HOSTILE = """
import ctypes, datetime, os, sys, time

def inspect(path, **args):
    name = os.path.basename(path)
    kind = name.split("_")[1]
    if kind == "hang":
        time.sleep(3600)
    if kind == "exit":
        os._exit(0)
    if kind == "segv":
        ctypes.string_at(0)
    if kind == "sysexit":
        sys.exit(3)
    if kind == "huge":
        return {"date": "2016-01-01", "metadata": {"blob": "x" * 200000}}
    if kind == "print":
        print("chatter " * 1000)
        os.write(1, b"raw chatter on fd 1\\n")
    return {"date": datetime.date(2016, 1, 1) + datetime.timedelta(days=int(name[-7:-4]))}
"""


def hostile_mission(cli: CliHarness, **ingest: Any) -> None:
    (cli.mission_dir / "codes" / "inspectors" / "hostile.py").write_text(textwrap.dedent(HOSTILE))

    def mutate(doc: dict[str, Any]) -> None:
        doc["products"]["H"] = {
            "level": 0,
            "dir": "H",
            "format": "h_{kind}_{nnn}.dat",
            "inspector": "inspectors/hostile.py",
            "inspector_timeout": 3,
        }
        doc.setdefault("ingest", {}).update(ingest)

    edit_mission(cli.mission_file, mutate)
    cli.ok("config", "apply", str(cli.mission_file))
    for raw in cli.incoming.iterdir():
        raw.unlink()


def test_a_hanging_and_a_crashing_file_are_refused_and_the_rest_ingested(
    cli: CliHarness,
) -> None:
    hostile_mission(cli)
    drop(cli.incoming, "h_hang_000.dat", "x")
    drop(cli.incoming, "h_exit_001.dat", "x")
    for n in range(100):
        drop(cli.incoming, f"h_good_{n:03d}.dat", f"good {n}\n")
    report = cli.json("ingest", code=3)["ingest"]
    assert report["counts"]["ingested"] == 100
    reasons = {r["filename"]: r["reason"] for r in report["rejected"]}
    assert reasons == {"h_hang_000.dat": "inspector_timeout", "h_exit_001.dat": "inspector_crashed"}
    messages = {r["filename"]: r["message"] for r in report["rejected"]}
    assert "3 s" in messages["h_hang_000.dat"]
    assert "exited with status 0" in messages["h_exit_001.dat"]
    assert sorted(os.listdir(cli.incoming)) == []
    again = cli.json("ingest")
    assert again["exit_code"] == 0 and again["ingest"]["counts"]["ingested"] == 0


def test_segfault_and_sys_exit_refuse_that_file_only(cli: CliHarness) -> None:
    hostile_mission(cli)
    for name in (
        "h_segv_000.dat",
        "h_sysexit_001.dat",
        "h_good_002.dat",
        "h_segv_003.dat",
        "h_good_004.dat",
    ):
        drop(cli.incoming, name, "x")
    report = cli.json("ingest", code=3)["ingest"]
    assert sorted(r["filename"] for r in report["ingested"]) == ["h_good_002.dat", "h_good_004.dat"]
    rejected = by_name(report["rejected"])
    assert rejected["h_segv_000.dat"]["reason"] == "inspector_crashed"
    assert "SIGSEGV" in rejected["h_segv_000.dat"]["message"]
    assert rejected["h_segv_003.dat"]["reason"] == "inspector_crashed"
    assert rejected["h_sysexit_001.dat"]["reason"] == "inspector_error"
    assert "SystemExit(3)" in rejected["h_sysexit_001.dat"]["message"]
    sidecar = cli.errors / "rejected" / "h_segv_000.dat.reason"
    assert "reason: inspector_crashed" in sidecar.read_text()


def test_an_oversized_answer_is_refused(cli: CliHarness) -> None:
    hostile_mission(cli, max_answer_bytes=100000)
    drop(cli.incoming, "h_huge_000.dat", "x")
    drop(cli.incoming, "h_good_001.dat", "x")
    report = cli.json("ingest", code=3)["ingest"]
    assert [r["filename"] for r in report["ingested"]] == ["h_good_001.dat"]
    (reject,) = report["rejected"]
    assert reject["reason"] == "inspector_error" and "max_answer_bytes" in reject["message"]


def test_what_an_inspector_prints_never_reaches_the_json(cli: CliHarness) -> None:
    hostile_mission(cli)
    drop(cli.incoming, "h_print_000.dat", "x")
    result = cli.ok("ingest", "--json")
    assert "chatter" not in result.stdout


def test_fifo_and_folder_in_incoming_are_refused_once(cli: CliHarness) -> None:
    hostile_mission(cli)
    os.mkfifo(cli.incoming / "h_good_000.dat")
    (cli.incoming / "a-folder").mkdir()
    (cli.incoming / "a-folder" / "inside.dat").write_text("x")
    drop(cli.incoming, "h_good_001.dat", "x")
    report = cli.json("ingest", code=3)["ingest"]
    assert [r["filename"] for r in report["ingested"]] == ["h_good_001.dat"]
    rejected = by_name(report["rejected"])
    assert {k: v["reason"] for k, v in rejected.items()} == {
        "h_good_000.dat": "not_a_file",
        "a-folder": "not_a_file",
    }
    assert (cli.errors / "rejected" / "a-folder" / "inside.dat").read_text() == "x"
    assert os.listdir(cli.incoming) == []
    assert cli.json("ingest")["exit_code"] == 0  # refused once, not on every pass


def test_zero_byte_files_are_refused_unless_allowed(cli: CliHarness) -> None:
    hostile_mission(cli)
    drop(cli.incoming, "h_good_000.dat", b"")
    report = cli.json("ingest", code=3)["ingest"]
    assert [r["reason"] for r in report["rejected"]] == ["empty"]
    assert "allow_empty" in report["rejected"][0]["message"]

    def allow(doc: dict[str, Any]) -> None:
        doc["ingest"]["allow_empty"] = True

    edit_mission(cli.mission_file, allow)
    cli.ok("config", "apply", str(cli.mission_file))
    drop(cli.incoming, "h_good_001.dat", b"")
    report = cli.json("ingest")["ingest"]
    assert [r["filename"] for r in report["ingested"]] == ["h_good_001.dat"]


def test_no_inspector_process_outlives_the_pass(cli: CliHarness) -> None:
    hostile_mission(cli)
    drop(cli.incoming, "h_good_000.dat", "x")
    cli.ok("ingest")
    mine = str(Path(__file__).parents[2] / "dbproc" / "ingest" / "inspector_worker.py")
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        ppid = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")
        )
        if ppid == os.getpid() and mine.encode() in cmdline:
            children.append(entry)
    assert children == []
