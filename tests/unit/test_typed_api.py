"""The Python API answers with typed records, never bare dicts (issue 10)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
from pathlib import Path

from dbproc.api import Archive
from dbproc.records import OMIT, FileRecord, MadeBy, jsonable


def _public_methods() -> list[str]:
    return [
        name
        for name, member in inspect.getmembers(Archive, inspect.isfunction)
        if not name.startswith("_")
    ]


def test_no_archive_method_returns_a_bare_dict_or_any() -> None:
    loose = {}
    for name in _public_methods():
        annotation = str(inspect.signature(getattr(Archive, name)).return_annotation)
        if annotation.startswith(("dict[", "list[dict[", "Any")) or annotation == "Any":
            loose[name] = annotation
    assert not loose, f"Archive methods that answer with untyped data: {loose}"


def test_a_record_renders_once_for_json() -> None:
    record = FileRecord(
        filename="x_20160101_v1.0.0.cat",
        product="L1",
        date=dt.date(2016, 1, 1),
        version="1.0.0",
        path=Path("/data/x_20160101_v1.0.0.cat"),
        newest=True,
        start=dt.datetime(2016, 1, 1),
        stop=dt.datetime(2016, 1, 1, 23, 59, 59, 500000),
        size=3,
        sha256="ab",
        keywords={},
        metadata={"when": dt.date(2016, 1, 2)},
        on_disk=True,
        state="present",
        registered_at=None,
        made_by=MadeBy("L0_to_L1", "1.0.0"),
        run_id=7,
        review=None,
    )
    data = record.as_dict()
    assert list(data)[:3] == ["filename", "product", "date"]  # field order is key order
    assert data["date"] == "2016-01-01" and data["path"] == "/data/x_20160101_v1.0.0.cat"
    assert data["start"] == "2016-01-01T00:00:00Z"
    assert data["stop"] == "2016-01-01T23:59:59.500000Z"
    assert data["metadata"] == {"when": "2016-01-02"}
    assert data["made_by"] == {"process": "L0_to_L1", "code_version": "1.0.0"}
    assert json.loads(record.to_json()) == data == jsonable(record)
    assert record.date == dt.date(2016, 1, 1)  # the object stays typed


def test_an_omitted_field_is_not_a_key() -> None:
    from dbproc.provenance.lineage import LineageNode

    node = LineageNode("f", "P", "1.0.0", dt.date(2016, 1, 1), True, Path("/f"), None, None)
    assert node.depth is OMIT and "depth" not in node.as_dict()
    assert dataclasses.replace(node, depth=2).as_dict()["depth"] == 2
