"""The review gate and the change feed: review states and verdicts, events, notifier
cursors (contract §13, §14).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from dbproc.migrations.ops import drop_column
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no table copy: see dbproc.migrations.ops.drop_column)
    op.add_column(
        "product", sa.Column("review", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("file", sa.Column("review", sa.String(length=16), nullable=True))
    op.create_table(
        "review_verdict",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("by", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "verdict IN ('pass', 'semipass', 'fail')", name=op.f("ck_review_verdict_verdict")
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["file.id"], name=op.f("fk_review_verdict_file_id_file")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_verdict")),
    )
    with op.batch_alter_table("review_verdict", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_verdict_file_id"), ["file_id"], unique=False)
    op.create_table(
        "event",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("time", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("product", sa.String(length=100), nullable=True),
        sa.Column("date", sa.Date(), nullable=True),
        sa.Column("version", sa.String(length=40), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("detail", JSON_TYPE, nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_event")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index("ix_event_time", ["time"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_filename"), ["filename"], unique=False)
    op.create_table(
        "notify_cursor",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("retry_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_notify_cursor")),
    )


def downgrade() -> None:
    op.drop_table("notify_cursor")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_filename"))
        batch_op.drop_index(batch_op.f("ix_event_kind"))
        batch_op.drop_index("ix_event_time")
    op.drop_table("event")
    with op.batch_alter_table("review_verdict", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_verdict_file_id"))
    op.drop_table("review_verdict")
    drop_column("file", "review")
    drop_column("product", "review")
