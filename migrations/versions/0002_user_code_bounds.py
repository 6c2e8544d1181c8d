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
    op.add_column("product", sa.Column("inspector_timeout", sa.Float(), nullable=True))
    op.add_column("pass_record", sa.Column("activity", sa.Text(), nullable=True))


def downgrade() -> None:
    # plain ALTER TABLE (SQLite >= 3.35 too): a batch copy of `product` would trip the
    # foreign keys that point at it
    op.execute("ALTER TABLE pass_record DROP COLUMN activity")
    op.execute("ALTER TABLE product DROP COLUMN inspector_timeout")
