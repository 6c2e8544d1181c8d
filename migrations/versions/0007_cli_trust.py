"""The name a rejected file had in incoming, so ``rejects retry`` restores it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reject") as batch:
        batch.add_column(sa.Column("incoming_name", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reject") as batch:
        batch.drop_column("incoming_name")
