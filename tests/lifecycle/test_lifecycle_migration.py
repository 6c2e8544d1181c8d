"""Revision 0005 goes down and up again on a database full of rows, both backends."""

from __future__ import annotations

from dbproc.db import schema
from dbproc.db.engine import create_db_engine
from tests.helpers import CliHarness


def test_down_and_up_with_data(built: CliHarness) -> None:
    built.ok("release", "create", "v1")
    before = {f["filename"] for f in built.json("files", "--all-versions")}
    engine = create_db_engine(built.db)
    schema.downgrade(engine, "0001")
    assert schema.current_revision(engine) == "0001"
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
    engine.dispose()
    assert {f["filename"] for f in built.json("files", "--all-versions")} == before
    assert built.json("release", "list") == []  # releases went with their tables
    assert built.json("plan") == []
