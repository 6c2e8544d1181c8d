"""User code bounds: a product's own inspector timeout; what a running pass is doing.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("product") as batch:
        batch.add_column(sa.Column("inspector_timeout", sa.Float(), nullable=True))
    with op.batch_alter_table("pass_record") as batch:
        batch.add_column(sa.Column("activity", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pass_record") as batch:
        batch.drop_column("activity")
    with op.batch_alter_table("product") as batch:
        batch.drop_column("inspector_timeout")
