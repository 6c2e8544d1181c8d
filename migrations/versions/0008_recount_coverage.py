"""Count the coverage summary again from ``file``: an import from dbprocessing before this
revision registered its files without it, so the dashboard's coverage grid and totals, and
``status``'s file counts, which read it, showed nothing for them. No schema change.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from dbproc.db.coverage import rebuild_coverage

    rebuild_coverage(op.get_bind())


def downgrade() -> None:
    """Nothing to undo: the summary is right for the schema of 0007 too."""
