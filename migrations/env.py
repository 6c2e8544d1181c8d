"""Alembic environment for dbproc.

dbproc runs migrations through ``dbproc.db.schema`` and passes a live connection in
``config.attributes["connection"]``; the ``sqlalchemy.url`` option is used otherwise
(e.g. ``alembic -c migrations/alembic.ini -x db=URL upgrade head`` during development).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from dbproc.db.engine import create_db_engine
from dbproc.db.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("db") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database with -x db=URL")
    engine = create_db_engine(url)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("dbproc migrations run online only")
run_migrations_online()
