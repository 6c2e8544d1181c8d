"""Schema migration through Alembic, and the check every command makes before it starts."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from dbproc.db.engine import display_url
from dbproc.errors import DatabaseError, SchemaMissing, SchemaNotAtHead

if TYPE_CHECKING:
    from alembic.config import Config

#: The newest migration in ``migrations/versions`` (a test keeps the two equal). Every
#: command checks the database against it with one query, without importing Alembic,
#: which only ``config apply`` on an empty database, ``db upgrade`` and ``db current`` load.
HEAD = "0008"


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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision this dbproc knows."""
    return HEAD


def script_head_revision() -> str:
    """The head revision of the migration scripts (what :data:`HEAD` must say)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(bind: Engine | Connection) -> str | None:
    """The database's revision (None for an empty database)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return current_revision(conn)
    if not inspect(bind).has_table("alembic_version"):
        return None
    try:
        rows = bind.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError as exc:
        raise DatabaseError(f"cannot read the schema revision: {exc}") from exc
    if len(rows) > 1:
        raise DatabaseError(
            f"the database holds several schema revisions ({rows}); "
            "it was migrated by hand: fix its alembic_version table"
        )
    return rows[0] if rows else None


def has_tables(conn: Connection) -> bool:
    """True when the database holds any table besides Alembic's own."""
    return bool(set(inspect(conn).get_table_names()) - {"alembic_version"})


def create(conn: Connection) -> None:
    """Create the schema on an empty database inside ``conn``'s transaction."""
    from alembic import command

    command.upgrade(alembic_config(conn), "head")


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate to ``revision``; return (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    return before, current_revision(engine) or ""


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate down to ``revision`` (``base`` empties the database)."""
    from alembic import command

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
    from alembic.script import ScriptDirectory

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
