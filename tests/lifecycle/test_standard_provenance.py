"""PROV and RO-Crate exports (interface.md §17), read back with the standard tools."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CliHarness

prov_model = pytest.importorskip("prov.model")
prov = pytest.importorskip("prov")


def _local(name: Any) -> str:
    return str(name.localpart)


def _relations(doc: Any, kind: Any) -> set[tuple[str, ...]]:
    return {tuple(_local(a) for a in r.args[:2] if a is not None) for r in doc.get_records(kind)}


def _lineage_edges(cli: CliHarness) -> set[tuple[str, str]]:
    edges: set[tuple[str, str]] = set()
    for f in cli.json("files", "--all-versions"):
        data = cli.json("lineage", f["filename"], "--all")
        edges |= {(child, parent) for parent, child in data["edges"]}
    return edges


def test_prov_json_of_the_whole_mission_matches_lineage(built: CliHarness) -> None:
    text = built.ok("export", "prov", "--all").stdout
    doc = prov.read(io.StringIO(text), format="json")
    files = {f["filename"]: f for f in built.json("files", "--all-versions")}
    entities = {
        _local(e.identifier): e
        for e in doc.get_records(prov_model.ProvEntity)
        if _local(e.identifier) in files
    }
    assert set(entities) == set(files)
    for name, entity in entities.items():
        attrs = {str(k.localpart): v for k, v in entity.attributes}
        assert (attrs["product"], attrs["date"], attrs["version"], attrs["sha256"]) == (
            files[name]["product"],
            files[name]["date"],
            files[name]["version"],
            files[name]["sha256"],
        )
    assert _relations(doc, prov_model.ProvDerivation) == _lineage_edges(built)
    generated = _relations(doc, prov_model.ProvGeneration)
    built_files = {n for n, f in files.items() if f["made_by"] is not None}
    assert {g[0] for g in generated} == built_files
    runs = {_local(a.identifier) for a in doc.get_records(prov_model.ProvActivity)}
    l2_log = [r for r in built.json("runs") if r["process"] == "L2_log"]
    assert {str(r["id"]) for r in l2_log} <= runs  # RUN steps are activities too
    used = _relations(doc, prov_model.ProvUsage)
    for run in l2_log:
        inputs = {e for a, e in used if a == str(run["id"])}
        assert inputs and {files[e]["product"] for e in inputs} == {"L2"}
    for child, parent in _lineage_edges(built):  # each link is a use by the making run
        run = str(files[child]["run_id"])
        assert (run, parent) in used
    associations = _relations(doc, prov_model.ProvAssociation)
    assert {a[0] for a in associations} == runs
    for activity in doc.get_records(prov_model.ProvActivity):
        assert activity.get_startTime() is not None and activity.get_endTime() is not None


@pytest.mark.parametrize("fmt", ["xml", "rdf"])
def test_prov_xml_and_rdf_read_back(built: CliHarness, fmt: str) -> None:
    pytest.importorskip("lxml" if fmt == "xml" else "rdflib")
    text = built.ok("export", "prov", "--all", "--format", fmt).stdout
    kwargs = {"rdf_format": "turtle"} if fmt == "rdf" else {}
    doc = prov.read(io.StringIO(text), format=fmt, **kwargs)
    assert _relations(doc, prov_model.ProvDerivation) == _lineage_edges(built)


def test_prov_of_one_file_with_depth_and_provn(built: CliHarness) -> None:
    target = "testDB_20160104_v1.0.0.rot"
    doc = prov.read(
        io.StringIO(built.ok("export", "prov", target, "--depth", "1").stdout), format="json"
    )
    names = {
        _local(e.identifier)
        for e in doc.get_records(prov_model.ProvEntity)
        if not _local(e.identifier).endswith(".plan")
    }
    assert names == {target, "testDB_20160104_v1.0.0.cat"}
    provn = built.ok("export", "prov", target, "--format", "provn").stdout
    assert provn.startswith("document") and "wasDerivedFrom(file:" in provn
    out = built.mission_dir / "prov.json"
    built.ok("export", "prov", "--product", "L1", "-o", str(out))
    assert json.loads(out.read_text())["entity"]
    assert built.run("export", "prov").exit_code == 2
    assert built.run("export", "prov", "no-such-file").exit_code == 2


# -- RO-Crate -----------------------------------------------------------------------------

CONTEXT_11 = "https://w3id.org/ro/crate/1.1/context"


def _warm_validator_cache(cache: Path) -> None:
    """Put the RO-Crate JSON-LD context into the validator's HTTP cache, so it validates
    offline. The body is the context copy ro-crate-py ships (RO-Crate 1.3, a superset of
    the 1.1 terms), served for the 1.1 URL through an in-process adapter: nothing goes on
    the network."""
    import requests
    import requests_cache
    import rocrate
    import urllib3
    from requests.adapters import BaseAdapter

    body = (Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld").read_bytes()

    class Vendored(BaseAdapter):
        def send(self, request: Any, **kwargs: Any) -> requests.Response:
            response = requests.Response()
            response.status_code, response.reason = 200, "OK"
            response.headers["Content-Type"] = "application/ld+json"
            response.raw = urllib3.HTTPResponse(
                body=io.BytesIO(body),
                headers=dict(response.headers),
                status=200,
                preload_content=False,
                request_url=request.url,
            )
            response.url, response.request = request.url, request
            return response

        def close(self) -> None:
            pass

    session = requests_cache.CachedSession(
        str(cache),
        backend="sqlite",
        expire_after=-1,
        allowable_codes=(200, 302, 404),
        allowable_methods=("GET",),
    )
    session.mount("https://", Vendored())
    assert (
        session.get(
            CONTEXT_11, headers={"Accept": "application/ld+json, application/json"}
        ).status_code
        == 200
    )
    session.close()


def test_rocrate_is_a_valid_process_run_crate(built: CliHarness, tmp_path: Path) -> None:
    pytest.importorskip("rocrate")
    target = "testDB_20160104_v1.0.0.rot"
    crate = tmp_path / "crate"
    made = built.json("export", "rocrate", target, "--to", str(crate))
    graph = {
        e["@id"]: e for e in json.loads((crate / "ro-crate-metadata.json").read_text())["@graph"]
    }
    actions = [e for e in graph.values() if e["@type"] == "CreateAction"]
    lineage = built.json("lineage", target, "--up", "--all")
    made_by_code = [a for a in lineage["ancestors"] if a["code"]] + [lineage]
    assert len(actions) == made["actions"] == len(made_by_code)
    for action in actions:
        assert {"instrument", "object", "result", "startTime", "endTime", "actionStatus"} <= set(
            action
        )
        assert graph[action["instrument"]["@id"]]["@type"] == "SoftwareApplication"
    results = {graph[r["@id"]]["name"] for a in actions for r in a["result"]}
    assert results == {a["filename"] for a in made_by_code}
    assert (crate / "data" / "L2" / target).read_bytes() == Path(lineage["path"]).read_bytes()
    assert built.run("export", "rocrate", target, "--to", str(crate)).exit_code == 2

    services = pytest.importorskip("rocrate_validator.services")
    models = pytest.importorskip("rocrate_validator.models")
    cache = tmp_path / "validator-cache"
    _warm_validator_cache(cache)
    settings = services.ValidationSettings(
        rocrate_uri=str(crate),
        profile_identifier="process-run-crate",
        requirement_severity=models.Severity.REQUIRED,
        offline=True,
        cache_path=cache,
    )
    result = services.validate(settings)
    assert not result.has_issues(), [i.message for i in result.get_issues()]


def test_prov_json_is_the_document_the_prov_package_builds(built: CliHarness) -> None:
    from dbproc.api import Archive
    from dbproc.provenance import graph, prov_export

    with Archive(built.db) as archive, archive.reading() as session:
        start = graph.select_files(session, everything=True)
        loaded = graph.load_graph(session, start, everything=True)
    ours = prov.read(io.StringIO(prov_export.export(loaded, "json")), format="json")
    theirs = prov_export.build_document(loaded)
    assert ours == theirs
    assert prov.read(io.StringIO(prov_export.serialize(theirs, "json")), format="json") == ours
