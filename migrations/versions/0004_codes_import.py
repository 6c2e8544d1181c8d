"""Imports from dbprocessing: the import record and the releases it brought.

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
    op.create_table(
        "dbprocessing_release",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dbprocessing_release")),
        sa.UniqueConstraint("name", name=op.f("uq_dbprocessing_release_name")),
    )
    op.create_table(
        "dbprocessing_release_file",
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["file.id"], name=op.f("fk_dbprocessing_release_file_file_id_file")
        ),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["dbprocessing_release.id"],
            name=op.f("fk_dbprocessing_release_file_release_id_dbprocessing_release"),
        ),
        sa.PrimaryKeyConstraint("release_id", "file_id", name=op.f("pk_dbprocessing_release_file")),
    )
    with op.batch_alter_table("dbprocessing_release_file", schema=None) as batch_op:
        batch_op.create_index("ix_dbprocessing_release_file_file_id", ["file_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dbprocessing_release_file", schema=None) as batch_op:
        batch_op.drop_index("ix_dbprocessing_release_file_file_id")
    op.drop_table("dbprocessing_release_file")
    op.drop_table("dbprocessing_release")
    op.drop_table("dbprocessing_import")
