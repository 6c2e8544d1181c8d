"""Imports from dbprocessing: the import record (its releases become dbproc releases, 0005).

Several codes per process need no schema change: each is an active ``code`` row with its
own ``valid_from..valid_until``.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dbprocessing_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("queue_done", sa.Boolean(), nullable=False),
        sa.Column("report", JSON_TYPE, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dbprocessing_import")),
    )


def downgrade() -> None:
    op.drop_table("dbprocessing_import")
