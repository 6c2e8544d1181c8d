"""Operations the migrations share."""

from __future__ import annotations

from alembic import op


def drop_column(table: str, column: str) -> None:
    """Drop a column in place. On SQLite (3.35+) a plain ALTER TABLE, not Alembic's batch
    copy: copying a table that other rows refer to (``product``, ``file``) drops it first,
    which the foreign keys dbproc enables refuse."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    else:
        op.drop_column(table, column)
