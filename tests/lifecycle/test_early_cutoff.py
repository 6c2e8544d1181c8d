"""Early cutoff (interface.md §17): a rebuild with the newest version's bytes registers
nothing new, and its consumers are not rebuilt."""

from __future__ import annotations

from tests.helpers import CliHarness
from tests.lifecycle.conftest import run_statuses, set_code

APPEND = """import sys
*inputs, output = sys.argv[1:]
with open(output, "wb") as out:
    for name in inputs:
        out.write(open(name, "rb").read())
    out.write(b"calibrated\\n")
"""


def _names(cli: CliHarness, product: str) -> set[str]:
    return {f["filename"] for f in cli.json("files", "--product", product, "--all-versions")}


def test_a_code_bump_that_changes_nothing_rebuilds_l1_but_not_l2(built: CliHarness) -> None:
    set_code(built, "L0_to_L1", proc_early_cutoff=True)
    l1, l2 = _names(built, "L1"), _names(built, "L2")
    set_code(built, "L0_to_L1", version="1.1.0")
    report = built.json("run")
    statuses = run_statuses(report)
    assert statuses, "the code bump rebuilt nothing"
    assert {p for p, _d, _s in statuses} == {"L0_to_L1"}
    assert {s for _p, _d, s in statuses} == {"unchanged"}
    assert _names(built, "L1") == l1 and _names(built, "L2") == l2
    assert built.json("plan") == []
    target = sorted(n for n in l1 if "20160102" in n)[-1]
    explained = built.json("explain", target)
    assert explained["up_to_date"] is True
    assert "reproduced identically by code 1.1.0 on" in explained["evidence"][0]
    text = built.ok("explain", target).stdout
    assert "reproduced identically by code 1.1.0" in text
    lineage = built.json("lineage", target)
    assert [r["code"]["version"] for r in lineage["reproduced_by"]] == ["1.1.0"]
    assert lineage["reproduced_by"][0]["inputs"]
    runs = built.json("runs", "--status", "unchanged")
    assert len(runs) == len(statuses)


def test_a_code_bump_that_changes_bytes_rebuilds_both(built: CliHarness) -> None:
    set_code(built, "L0_to_L1", proc_early_cutoff=True)
    (built.mission_dir / "codes" / "scripts" / "append.py").write_text(APPEND)
    l1, l2 = _names(built, "L1"), _names(built, "L2")
    set_code(built, "L0_to_L1", version="1.1.0", path="scripts/append.py")
    statuses = run_statuses(built.json("run"))
    by_process = {p for p, _d, _s in statuses}
    assert by_process == {"L0_to_L1", "L1_to_L2", "L2_log"}
    assert {s for _p, _d, s in statuses} == {"succeeded"}
    assert len(_names(built, "L1") - l1) == len(l1)
    assert len(_names(built, "L2") - l2) == len(l2)


def test_without_early_cutoff_an_identical_rebuild_is_a_new_version(built: CliHarness) -> None:
    l2 = _names(built, "L2")
    set_code(built, "L0_to_L1", version="1.1.0")
    statuses = run_statuses(built.json("run"))
    assert "unchanged" not in {s for _p, _d, s in statuses}
    assert len(_names(built, "L2") - l2) == len(l2)


def test_early_cutoff_is_exported_and_checked(built: CliHarness) -> None:
    set_code(built, "L0_to_L1", proc_early_cutoff=True)
    assert "early_cutoff = true" in built.ok("config", "export").stdout

    def bad(doc: dict[str, object]) -> None:
        doc["processes"]["L0_to_L1"]["early_cutoff"] = "yes"  # type: ignore[index]

    from tests.helpers import edit_mission

    broken = edit_mission(built.mission_file, bad, name="broken.toml")
    result = built.run("config", "apply", str(broken))
    assert result.exit_code == 2
    assert "early_cutoff" in result.stderr


def test_prov_export_shows_the_reproduction(built: CliHarness) -> None:
    import io

    import pytest

    prov = pytest.importorskip("prov")
    prov_model = pytest.importorskip("prov.model")
    from dbproc.api import Archive
    from dbproc.provenance import graph, prov_export

    set_code(built, "L0_to_L1", proc_early_cutoff=True)
    set_code(built, "L0_to_L1", version="1.1.0")
    built.ok("run")
    target = "testDB_20160102_v1.0.0.cat"
    run = built.json("lineage", target)["reproduced_by"][0]["run"]
    doc = prov.read(io.StringIO(built.ok("export", "prov", target).stdout), format="json")
    influences = [
        (r.args[0].localpart, r.args[1].localpart)
        for r in doc.get_records(prov_model.ProvInfluence)
    ]
    assert influences == [(target, str(run))]
    with Archive(built.db) as archive, archive.reading() as session:
        loaded = graph.load_graph(
            session, graph.select_files(session, everything=True), everything=True
        )
    ours = prov.read(io.StringIO(prov_export.export(loaded, "json")), format="json")
    assert ours == prov_export.build_document(loaded)
