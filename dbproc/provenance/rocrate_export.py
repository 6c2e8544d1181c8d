"""``dbproc export rocrate``: a file and its ancestors as an RO-Crate conforming to the
Process Run Crate profile (https://w3id.org/ro/wfrun/process/0.5), with ``rocrate``
(ro-crate-py). Each file on disk is copied into the crate under ``data/PRODUCT/``; each
run is a ``CreateAction`` (``instrument`` its code, ``object`` its inputs, ``result`` its
output, ``startTime``/``endTime``, ``actionStatus``). Needs ``dbproc[provenance]``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbproc.errors import UsageError
from dbproc.provenance.graph import FileNode, ProvGraph, run_inputs
from dbproc.records import Record

PROFILE = "https://w3id.org/ro/wfrun/process/0.5"
STATUS = {
    "succeeded": "http://schema.org/CompletedActionStatus",
    "unchanged": "http://schema.org/CompletedActionStatus",
}
FAILED_STATUS = "http://schema.org/FailedActionStatus"


def _iso(value: dt.datetime | None) -> str | None:
    return f"{value:%Y-%m-%dT%H:%M:%SZ}" if value else None


def _rocrate() -> Any:
    try:
        from rocrate import rocrate
    except ImportError:  # pragma: no cover - depends on the installation
        raise UsageError(
            "exporting an RO-Crate needs the `rocrate` package: pip install 'dbproc[provenance]'"
        ) from None
    return rocrate


def _file_properties(f: FileNode) -> dict[str, Any]:
    return {
        "name": f.filename,
        "encodingFormat": "application/octet-stream",
        "contentSize": str(f.size),
        "sha256": f.sha256,
        "version": f.version,
        "dateCreated": f.date.isoformat(),
        "about": f.product,
        "description": f"{f.product} file for {f.date} version {f.version}",
    }


@dataclass(frozen=True)
class CrateWritten(Record):
    """An RO-Crate written: its metadata file, how many files and runs it describes, and
    the profile it conforms to."""

    metadata: Path
    files: int
    actions: int
    profile: str


def write_crate(graph: ProvGraph, target: Path) -> CrateWritten:
    """Write the crate of ``graph`` into folder ``target``; refuses a non-empty folder."""
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{target} is not empty; give a new or empty folder to --to")
    rocrate = _rocrate()
    from rocrate.model import ContextEntity

    crate = rocrate.ROCrate(version="1.1")  # Process Run Crate 0.5 builds on RO-Crate 1.1
    crate.name = f"Provenance of {graph.mission} files"
    crate.description = "Files, the runs that made them and the codes that ran (dbproc)"
    crate.license = "https://spdx.org/licenses/CC-BY-4.0"
    profile = crate.add(
        ContextEntity(
            crate,
            PROFILE,
            properties={"@type": "CreativeWork", "name": "Process Run Crate", "version": "0.5"},
        )
    )
    crate.root_dataset["conformsTo"] = profile
    target.mkdir(parents=True, exist_ok=True)
    entities = _add_files(crate, graph)
    actions = _add_actions(crate, graph, entities, _add_codes(crate, graph))
    crate.write(target)
    return CrateWritten(target / "ro-crate-metadata.json", len(entities), actions, PROFILE)


def _add_files(crate: Any, graph: ProvGraph) -> dict[int, Any]:
    """Add each file, copied when on disk, else described; the crate entities by file id."""
    from rocrate.model import ContextEntity

    entities: dict[int, Any] = {}
    for f in sorted(graph.files.values(), key=lambda f: f.filename):
        source = Path(f.path)
        if source.is_file():
            dest = f"data/{f.product}/{f.filename}"
            entities[f.id] = crate.add_file(source, dest_path=dest, properties=_file_properties(f))
        else:  # purged or missing: described, not copied
            entities[f.id] = crate.add(
                ContextEntity(
                    crate,
                    f"#file-{f.filename}",
                    properties={
                        "@type": "CreativeWork",
                        **_file_properties(f),
                        "creativeWorkStatus": f.state,
                    },
                )
            )
    return entities


def _add_codes(crate: Any, graph: ProvGraph) -> dict[int, Any]:
    """Add each code as a ``SoftwareApplication``; the crate entities by code id."""
    from rocrate.model import SoftwareApplication

    tools = {}
    for code in graph.codes.values():
        tools[code.id] = crate.add(
            SoftwareApplication(
                crate,
                f"#code-{code.process}-{code.version}",
                properties={
                    "name": f"{code.process} {code.version}",
                    "softwareVersion": code.version,
                    "url": Path(code.path).as_uri(),
                },
            )
        )
    return tools


def _add_actions(
    crate: Any, graph: ProvGraph, entities: dict[int, Any], tools: dict[int, Any]
) -> int:
    """Add each run of a known code as a ``CreateAction``; how many were added."""
    outputs = {f.run_id: f.id for f in graph.files.values() if f.run_id is not None}
    actions = 0
    for run in sorted(graph.runs.values(), key=lambda r: r.id):
        if run.code_id not in tools or run.status == "unchanged":  # reproductions: no result
            continue
        output = outputs.get(run.id)
        properties: dict[str, Any] = {
            "name": f"{run.process} {run.date} (run {run.id})",
            "actionStatus": STATUS.get(run.status, FAILED_STATUS),
        }
        if run.started:
            properties["startTime"] = _iso(run.started)
        if run.ended:
            properties["endTime"] = _iso(run.ended)
        crate.add_action(
            tools[run.code_id],
            identifier=f"#run-{run.id}",
            object=[entities[i] for i in run_inputs(graph, run, output)],
            result=[entities[output]] if output is not None else [],
            properties=properties,
        )
        actions += 1
    return actions
