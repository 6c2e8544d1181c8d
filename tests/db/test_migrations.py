"""Migrations: up/down/up on both backends, and the models agree with the migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from dbproc.db import schema
from dbproc.db.engine import create_db_engine
from dbproc.db.models import Base


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = create_db_engine(db_url)
    assert schema.current_revision(engine) is None
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {
        "mission",
        "product",
        "process",
        "code",
        "file",
        "file_link",
        "run",
        "pass_record",
        "reject",
        "pending",
        "forced_rebuild",
    } <= tables
    schema.downgrade(engine, "base")
    assert schema.current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
    engine.dispose()


def test_models_match_migrations(db_url: str) -> None:
    """Fails when a model is edited without a migration (or the other way round)."""
    engine = create_db_engine(db_url)
    schema.upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


def test_drift_test_can_fail(db_url: str) -> None:
    """The drift comparison does see a difference when one exists."""
    engine = create_db_engine(db_url)
    schema.upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE stray (id INTEGER PRIMARY KEY)")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert any(d[0] == "remove_table" for d in diff)


def test_the_head_every_command_checks_is_the_newest_migration() -> None:
    assert schema.script_head_revision() == schema.HEAD


def test_the_models_alone_make_the_newest_file_index_partial(db_url: str) -> None:
    """``create_all`` of the models (tests only) makes ``uq_file_newest`` partial, as the
    migration does, on each backend: several versions of a (product, date, slot) may
    exist, one of them the newest. On PostgreSQL the WHERE is added as the table is
    created, so that the models do not load SQLAlchemy's PostgreSQL dialect on SQLite."""
    engine = create_db_engine(db_url)
    Base.metadata.create_all(engine)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            definition = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_file_newest'"
                " AND schemaname = current_schema()"
            ).scalar_one()
        else:
            definition = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'uq_file_newest'"
            ).scalar_one()
    engine.dispose()
    assert "UNIQUE" in definition.upper() and "WHERE is_newest" in definition
