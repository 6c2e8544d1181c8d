"""``dbproc export prov``: the provenance graph as a W3C PROV document (``prov`` package).

Files are entities (``dbproc:product``, ``dbproc:date``, ``dbproc:version``,
``dbproc:sha256``), runs are activities (start and end times), codes are software agents
with a plan entity per code version; ``used``, ``wasGeneratedBy``, ``wasDerivedFrom`` and
``wasAssociatedWith`` link them; a run that reproduced a file identically (early cutoff)
``wasInfluencedBy`` it. Needs the optional extra ``dbproc[provenance]``.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dbproc.errors import UsageError
from dbproc.provenance.graph import FileNode, ProvGraph, run_inputs

if TYPE_CHECKING:
    from prov.model import ProvDocument

FORMATS = ("json", "provn", "xml", "rdf")
TERMS = "urn:dbproc:terms#"


def _file_attributes(f: FileNode) -> dict[str, Any]:
    """A file entity's attributes, the same in both writers (the prov package's and ours)."""
    return {
        "prov:label": f.filename,
        "dbproc:product": f.product,
        "dbproc:date": f.date.isoformat(),
        "dbproc:version": f.version,
        "dbproc:sha256": f.sha256,
        "dbproc:size": f.size,
        "dbproc:path": f.path,
        "dbproc:newest": f.newest,
        "dbproc:state": f.state,
    }


def _prov() -> Any:
    try:
        import prov.model
    except ImportError:  # pragma: no cover - depends on the installation
        raise UsageError(
            "exporting PROV needs the `prov` package: pip install 'dbproc[provenance]'"
        ) from None
    return prov.model


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None else None


def build_document(graph: ProvGraph) -> ProvDocument:
    """A PROV document of ``graph``."""
    model = _prov()
    doc = model.ProvDocument()
    base = f"urn:dbproc:{graph.mission}:"
    terms = doc.add_namespace("dbproc", TERMS)
    doc.add_namespace("file", base + "file:")
    doc.add_namespace("run", base + "run:")
    doc.add_namespace("code", base + "code:")
    entities = {}
    for f in graph.files.values():
        entities[f.id] = doc.entity(
            f"file:{f.filename}",
            {"prov:type": terms["File"], **_file_attributes(f)},
        )
    agents, plans = _code_agents(doc, graph, model.PROV)
    _run_activities(doc, graph, terms, entities, agents, plans)
    for parent, child in sorted(graph.links):
        run_id = graph.files[child].run_id
        activity = f"run:{run_id}" if run_id in graph.runs else None
        doc.wasDerivedFrom(entities[child], entities[parent], activity)
    for file_id, run_id in graph.reproductions:  # early cutoff: same bytes, no new entity
        doc.wasInfluencedBy(
            entities[file_id], f"run:{run_id}", None, {"dbproc:role": "reproduced identically"}
        )
    result: ProvDocument = doc
    return result


def _code_agents(doc: Any, graph: ProvGraph, prov_ns: Any) -> tuple[dict[int, Any], dict[int, Any]]:
    """Add each code as a software agent and its plan entity; (agents, plans) by code id."""
    agents, plans = {}, {}
    for code in graph.codes.values():
        ident = f"{code.process}-{code.version}"
        agents[code.id] = doc.agent(
            f"code:{ident}",
            {
                "prov:type": prov_ns["SoftwareAgent"],
                "prov:label": f"{code.process} {code.version}",
                "dbproc:process": code.process,
                "dbproc:version": code.version,
                "dbproc:path": code.path,
            },
        )
        plan_attrs = {"prov:type": prov_ns["Plan"], "dbproc:path": code.path}
        if code.sha256:
            plan_attrs["dbproc:sha256"] = code.sha256
        plans[code.id] = doc.entity(f"code:{ident}.plan", plan_attrs)
    return agents, plans


def _run_activities(
    doc: Any,
    graph: ProvGraph,
    terms: Any,
    entities: dict[int, Any],
    agents: dict[int, Any],
    plans: dict[int, Any],
) -> None:
    """Add each run as an activity with its association, usages and generation."""
    outputs = {f.run_id: f.id for f in graph.files.values() if f.run_id is not None}
    for run in graph.runs.values():
        activity = doc.activity(
            f"run:{run.id}",
            _utc(run.started),
            _utc(run.ended),
            {
                "prov:type": terms["Run"],
                "prov:label": f"{run.process} {run.date}",
                "dbproc:process": run.process,
                "dbproc:date": run.date.isoformat(),
                "dbproc:status": run.status,
            },
        )
        if run.code_id in agents:
            doc.wasAssociatedWith(activity, agents[run.code_id], plans[run.code_id])
        used = run_inputs(graph, run, outputs.get(run.id))
        for parent in used:
            doc.used(activity, entities[parent])
        output = outputs.get(run.id)
        if output is not None:
            doc.wasGeneratedBy(entities[output], activity, _utc(run.ended))


def export(graph: ProvGraph, fmt: str) -> str:
    """``graph`` as a PROV document in one of :data:`FORMATS`. PROV-JSON is written
    directly (the same document the ``prov`` package writes, tested to read back equal,
    at a fraction of the time); the other formats go through :func:`build_document`."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "json":
        # compact: the C encoder is many times faster than an indenting one
        return json.dumps(json_document(graph), separators=(",", ":")) + "\n"
    return serialize(build_document(graph), fmt)


def _qname(name: str) -> dict[str, str]:
    return {"$": name, "type": "prov:QUALIFIED_NAME"}


def _time(value: dt.datetime | None) -> str | None:
    return _utc(value).isoformat() if value is not None else None  # type: ignore[union-attr]


def json_document(graph: ProvGraph) -> dict[str, Any]:
    """PROV-JSON (https://www.w3.org/submissions/prov-json/) of ``graph``, as a dict."""
    base = f"urn:dbproc:{graph.mission}:"
    doc: dict[str, Any] = {
        "prefix": {
            "dbproc": TERMS,
            "file": base + "file:",
            "run": base + "run:",
            "code": base + "code:",
        },
        "entity": {},
        "agent": {},
        "activity": {},
        "used": {},
        "wasGeneratedBy": {},
        "wasDerivedFrom": {},
        "wasAssociatedWith": {},
        "wasInfluencedBy": {},
    }
    names = {f.id: f"file:{f.filename}" for f in graph.files.values()}
    for f in graph.files.values():
        doc["entity"][names[f.id]] = {
            "prov:type": _qname("dbproc:File"),
            **_file_attributes(f),
        }
    agents = _json_codes(doc, graph)
    blank = itertools.count(1)  # the number of each relation's blank id, shared by all kinds
    _json_runs(doc, graph, names, agents, blank)
    for parent, child in sorted(graph.links):
        derivation = {"prov:generatedEntity": names[child], "prov:usedEntity": names[parent]}
        run_id = graph.files[child].run_id
        if run_id in graph.runs:
            derivation["prov:activity"] = f"run:{run_id}"
        doc["wasDerivedFrom"][f"_:d{next(blank)}"] = derivation
    for file_id, run_id in graph.reproductions:  # early cutoff: same bytes, no new entity
        doc["wasInfluencedBy"][f"_:i{next(blank)}"] = {
            "prov:influencee": names[file_id],
            "prov:influencer": f"run:{run_id}",
            "dbproc:role": "reproduced identically",
        }
    return {k: v for k, v in doc.items() if v}


def _json_codes(doc: dict[str, Any], graph: ProvGraph) -> dict[int, str]:
    """Add each code's agent and plan entity to ``doc``; the agent names by code id."""
    agents = {}
    for code in graph.codes.values():
        ident = f"code:{code.process}-{code.version}"
        agents[code.id] = ident
        doc["agent"][ident] = {
            "prov:type": _qname("prov:SoftwareAgent"),
            "prov:label": f"{code.process} {code.version}",
            "dbproc:process": code.process,
            "dbproc:version": code.version,
            "dbproc:path": code.path,
        }
        plan: dict[str, Any] = {"prov:type": _qname("prov:Plan"), "dbproc:path": code.path}
        if code.sha256:
            plan["dbproc:sha256"] = code.sha256
        doc["entity"][ident + ".plan"] = plan
    return agents


def _json_runs(
    doc: dict[str, Any],
    graph: ProvGraph,
    names: dict[int, str],
    agents: dict[int, str],
    blank: Iterator[int],
) -> None:
    """Add each run's activity, association, usages and generation to ``doc``."""
    outputs = {f.run_id: f.id for f in graph.files.values() if f.run_id is not None}
    for run in graph.runs.values():
        ident = f"run:{run.id}"
        activity: dict[str, Any] = {
            "prov:type": _qname("dbproc:Run"),
            "prov:label": f"{run.process} {run.date}",
            "dbproc:process": run.process,
            "dbproc:date": run.date.isoformat(),
            "dbproc:status": run.status,
        }
        for key, value in (("prov:startTime", run.started), ("prov:endTime", run.ended)):
            if value is not None:
                activity[key] = _time(value)
        doc["activity"][ident] = activity
        if run.code_id in agents:
            doc["wasAssociatedWith"][f"_:a{next(blank)}"] = {
                "prov:activity": ident,
                "prov:agent": agents[run.code_id],
                "prov:plan": agents[run.code_id] + ".plan",
            }
        output = outputs.get(run.id)
        for parent in run_inputs(graph, run, output):
            doc["used"][f"_:u{next(blank)}"] = {
                "prov:activity": ident,
                "prov:entity": names[parent],
            }
        if output is not None:
            generation = {"prov:entity": names[output], "prov:activity": ident}
            if run.ended is not None:
                generation["prov:time"] = str(_time(run.ended))
            doc["wasGeneratedBy"][f"_:g{next(blank)}"] = generation


def serialize(doc: ProvDocument, fmt: str) -> str:
    """The document as text in one of :data:`FORMATS`."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "provn":
        return str(doc.get_provn()) + "\n"
    buffer = io.StringIO()
    try:
        if fmt == "rdf":
            doc.serialize(buffer, format="rdf", rdf_format="turtle")
        else:
            doc.serialize(buffer, format=fmt, indent=2)
    except ImportError as exc:  # lxml for xml, rdflib for rdf
        raise UsageError(
            f"--format {fmt} needs {exc.name or 'an optional package'}: "
            "pip install 'dbproc[provenance]'"
        ) from None
    return buffer.getvalue()
