"""Status without scans of ``file``: the partial index of the files waiting for a verdict,
and the coverage summary counted again from ``file`` (an import from dbprocessing before
this revision registered its files without it, so the dashboard's coverage grid and
totals, and ``status``'s file counts, which read it, showed nothing for them).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PENDING = "review = 'pending'"


def upgrade() -> None:
    from dbproc.db.coverage import rebuild_coverage

    op.create_index(
        "ix_file_review_pending",
        "file",
        ["review"],
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )
    rebuild_coverage(op.get_bind())


def downgrade() -> None:
    """The index goes; the summary stays (it is right for the schema of 0007 too)."""
    op.drop_index("ix_file_review_pending", table_name="file")
