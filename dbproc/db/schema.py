"""Schema migration through Alembic, and the check every command makes before it starts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

from dbproc.db.engine import display_url
from dbproc.errors import DatabaseError, SchemaMissing, SchemaNotAtHead


def migrations_dir() -> Path:
    """Where the Alembic scripts are (installed as ``dbproc.migrations``)."""
    spec = importlib.util.find_spec("dbproc.migrations")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    candidate = Path(__file__).resolve().parents[2] / "migrations"
    if candidate.is_dir():
        return candidate
    raise DatabaseError(
        "dbproc's migration scripts are missing from this installation; reinstall dbproc"
    )


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at dbproc's scripts, reusing ``connection`` when given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision this dbproc knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(bind: Engine | Connection) -> str | None:
    """The database's revision (None for an empty database)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return current_revision(conn)
    return MigrationContext.configure(bind).get_current_revision()


def has_tables(conn: Connection) -> bool:
    """True when the database holds any table besides Alembic's own."""
    return bool(set(inspect(conn).get_table_names()) - {"alembic_version"})


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate to ``revision``; return (revision before, revision after)."""
    before = current_revision(engine)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    return before, current_revision(engine) or ""


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate down to ``revision`` (``base`` empties the database)."""
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), revision)


def ensure_current(bind: Engine | Connection) -> None:
    """Raise unless the schema is at this dbproc's head revision (exit 5 otherwise)."""
    current = current_revision(bind)
    head = head_revision()
    if current == head:
        return
    where = display_url(bind.engine.url)
    if current is None:
        raise SchemaMissing(
            f"database {where} holds no dbproc mission; "
            "run `dbproc config apply MISSION.toml` first"
        )
    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        raise DatabaseError(
            f"database {where} is at revision {current}, which this dbproc "
            "does not know: it was written by a newer dbproc; upgrade dbproc"
        )
    raise SchemaNotAtHead(
        f"database {where} has schema revision {current}, older than "
        f"this dbproc ({head}); run `dbproc db upgrade`"
    )
