"""Coverage summary: one row per (product, day) for the dashboard's coverage grid;
and ``forced_rebuild.retry_of_run_id`` for retries asked on the dashboard.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coverage_day",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("version_key", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_coverage_day_product_id_product")
        ),
        sa.PrimaryKeyConstraint("product_id", "date", name=op.f("pk_coverage_day")),
    )
    op.create_table(
        "coverage_month",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_coverage_month_product_id_product")
        ),
        sa.PrimaryKeyConstraint("product_id", "month", name=op.f("pk_coverage_month")),
    )
    with op.batch_alter_table("forced_rebuild") as batch:
        batch.add_column(sa.Column("retry_of_run_id", sa.Integer(), nullable=True))
    from dbproc.db.coverage import rebuild_coverage

    rebuild_coverage(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("forced_rebuild") as batch:
        batch.drop_column("retry_of_run_id")
    op.drop_table("coverage_month")
    op.drop_table("coverage_day")
