"""Fixtures of the database tests: a migrated mission database, on either backend."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dbproc.db.engine import create_db_engine, database_url
from dbproc.db.models import Code, Process, Product
from dbproc.db.schema import upgrade


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """:func:`mission_engine` on a scratch PostgreSQL schema, dropped afterwards."""
    from tests.conftest import drop_pg_schema, make_pg_schema_url

    url, schema = make_pg_schema_url()
    try:
        yield from mission_engine(url)
    finally:
        drop_pg_schema(schema)


def mission_engine(db_url: str) -> Iterator[Engine]:
    """An engine on a migrated database holding a product, a process and its code."""
    engine = create_db_engine(database_url(db_url), create=True)
    upgrade(engine)
    with Session(engine) as session:
        session.add(Product(id=2, name="L1", level=1.0, dir="L1", format="L1_{Y}{m}{d}.dat"))
        session.flush()
        session.add(Process(id=1, name="P", output_product_id=2, timebase="DAILY"))
        session.flush()
        session.add(
            Code(
                id=1,
                process_id=1,
                interface=1,
                quality=0,
                revision=0,
                path="code.py",
                registered_at=dt.datetime(2026, 12, 3),
            )
        )
        session.commit()
    yield engine
    engine.dispose()
