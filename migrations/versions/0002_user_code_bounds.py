"""User code bounds: a product's own inspector timeout; what a running pass is doing.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from dbproc.migrations.ops import drop_column

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("product", sa.Column("inspector_timeout", sa.Float(), nullable=True))
    op.add_column("pass_record", sa.Column("activity", sa.Text(), nullable=True))


def downgrade() -> None:
    drop_column("pass_record", "activity")
    drop_column("product", "inspector_timeout")
