"""The data life-cycle: early cutoff, reproductions, releases, purged files, cadence.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from dbproc.migrations.ops import drop_column
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN on every backend (no table copy; see dbproc.migrations.ops)
    op.add_column(
        "process",
        sa.Column("early_cutoff", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("product", sa.Column("cadence", sa.String(length=20), nullable=True))
    op.add_column("file", sa.Column("purged_at", sa.DateTime(), nullable=True))
    op.create_table(
        "reproduction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("code_id", sa.Integer(), nullable=False),
        sa.Column("reproduced_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["code_id"], ["code.id"], name=op.f("fk_reproduction_code_id_code")
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["file.id"], name=op.f("fk_reproduction_file_id_file")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], name=op.f("fk_reproduction_run_id_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reproduction")),
        sa.UniqueConstraint("run_id", name=op.f("uq_reproduction_run_id")),
    )
    with op.batch_alter_table("reproduction", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reproduction_file_id"), ["file_id"], unique=False)
    op.create_table(
        "release",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("products", JSON_TYPE, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_release")),
        sa.UniqueConstraint("name", name=op.f("uq_release_name")),
    )
    op.create_table(
        "release_file",
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["file.id"], name=op.f("fk_release_file_file_id_file")
        ),
        sa.ForeignKeyConstraint(
            ["release_id"], ["release.id"], name=op.f("fk_release_file_release_id_release")
        ),
        sa.PrimaryKeyConstraint("release_id", "file_id", name=op.f("pk_release_file")),
    )
    with op.batch_alter_table("release_file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_release_file_file_id"), ["file_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("release_file", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_file_file_id"))
    op.drop_table("release_file")
    op.drop_table("release")
    with op.batch_alter_table("reproduction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reproduction_file_id"))
    op.drop_table("reproduction")
    drop_column("file", "purged_at")
    drop_column("product", "cadence")
    drop_column("process", "early_cutoff")
