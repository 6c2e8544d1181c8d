"""Initial schema: mission, products, processes, codes, files, lineage, runs, passes.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("root_dir", sa.Text(), nullable=False),
        sa.Column("incoming_dir", sa.Text(), nullable=False),
        sa.Column("errors_dir", sa.Text(), nullable=False),
        sa.Column("codes_dir", sa.Text(), nullable=False),
        sa.Column("settings", JSON_TYPE, nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mission")),
        sa.UniqueConstraint("name", name=op.f("uq_mission_name")),
    )
    op.create_table(
        "pass_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("command", sa.String(length=20), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pid_start", sa.String(length=64), nullable=True),
        sa.Column("user", sa.String(length=100), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("summary", JSON_TYPE, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pass_record")),
    )
    with op.batch_alter_table("pass_record", schema=None) as batch_op:
        batch_op.create_index("ix_pass_record_state", ["state"], unique=False)

    op.create_table(
        "product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.Float(), nullable=False),
        sa.Column("dir", sa.Text(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("inspector", sa.Text(), nullable=True),
        sa.Column("inspector_args", JSON_TYPE, nullable=False),
        sa.Column("instrument", sa.String(length=100), nullable=True),
        sa.Column("satellite", sa.String(length=100), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("max_span_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product")),
        sa.UniqueConstraint("name", name=op.f("uq_product_name")),
    )
    op.create_table(
        "process",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("output_product_id", sa.Integer(), nullable=True),
        sa.Column("timebase", sa.String(length=8), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "timebase IN ('DAILY', 'FILE', 'RUN')", name=op.f("ck_process_timebase")
        ),
        sa.ForeignKeyConstraint(
            ["output_product_id"], ["product.id"], name=op.f("fk_process_output_product_id_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process")),
        sa.UniqueConstraint("name", name=op.f("uq_process_name")),
        sa.UniqueConstraint("output_product_id", name=op.f("uq_process_output_product_id")),
    )
    op.create_table(
        "reject",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("stored_name", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("rejected_at", sa.DateTime(), nullable=False),
        sa.Column("pass_id", sa.Integer(), nullable=True),
        sa.Column("retried_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pass_id"], ["pass_record.id"], name=op.f("fk_reject_pass_id_pass_record")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reject")),
    )
    op.create_table(
        "code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.Column("interface", sa.Integer(), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("output_interface", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("args", JSON_TYPE, nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("timeout", sa.Float(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "interface >= 1 AND quality >= 0 AND revision >= 0", name=op.f("ck_code_version")
        ),
        sa.CheckConstraint("output_interface >= 1", name=op.f("ck_code_output_interface")),
        sa.ForeignKeyConstraint(
            ["process_id"], ["process.id"], name=op.f("fk_code_process_id_process")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code")),
        sa.UniqueConstraint(
            "process_id",
            "interface",
            "quality",
            "revision",
            name=op.f("uq_code_process_id_interface_quality_revision"),
        ),
    )
    op.create_table(
        "forced_rebuild",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("slot", sa.String(length=255), nullable=False),
        sa.Column("bump", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["process_id"], ["process.id"], name=op.f("fk_forced_rebuild_process_id_process")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forced_rebuild")),
        sa.UniqueConstraint(
            "process_id", "date", "slot", name=op.f("uq_forced_rebuild_process_id_date_slot")
        ),
    )
    op.create_table(
        "pending",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["process_id"], ["process.id"], name=op.f("fk_pending_process_id_process")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending")),
    )
    with op.batch_alter_table("pending", schema=None) as batch_op:
        batch_op.create_index("ix_pending_process_id_date", ["process_id", "date"], unique=False)

    op.create_table(
        "process_input",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("before", sa.Integer(), nullable=False),
        sa.Column("after", sa.Integer(), nullable=False),
        sa.Column("optional", sa.Boolean(), nullable=False),
        sa.CheckConstraint('"before" >= 0 AND "after" >= 0', name=op.f("ck_process_input_window")),
        sa.ForeignKeyConstraint(
            ["process_id"], ["process.id"], name=op.f("fk_process_input_process_id_process")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_process_input_product_id_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_input")),
        sa.UniqueConstraint(
            "process_id", "product_id", name=op.f("uq_process_input_process_id_product_id")
        ),
    )
    with op.batch_alter_table("process_input", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_process_input_product_id"), ["product_id"], unique=False
        )

    op.create_table(
        "run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pass_id", sa.Integer(), nullable=True),
        sa.Column("process_id", sa.Integer(), nullable=False),
        sa.Column("code_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("slot", sa.String(length=255), nullable=False),
        sa.Column("output_filename", sa.String(length=255), nullable=True),
        sa.Column("output_version", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("bump", sa.String(length=16), nullable=True),
        sa.Column("build_key", sa.String(length=64), nullable=False),
        sa.Column("inputs", JSON_TYPE, nullable=False),
        sa.Column("argv", JSON_TYPE, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("signal", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("peak_memory_kb", sa.BigInteger(), nullable=True),
        sa.Column("stdout_tail", sa.Text(), nullable=True),
        sa.Column("stderr_tail", sa.Text(), nullable=True),
        sa.Column("run_root", sa.Text(), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("promoting", JSON_TYPE, nullable=True),
        sa.ForeignKeyConstraint(["code_id"], ["code.id"], name=op.f("fk_run_code_id_code")),
        sa.ForeignKeyConstraint(
            ["pass_id"], ["pass_record.id"], name=op.f("fk_run_pass_id_pass_record")
        ),
        sa.ForeignKeyConstraint(
            ["process_id"], ["process.id"], name=op.f("fk_run_process_id_process")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run")),
    )
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_build_key"), ["build_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_code_id"), ["code_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_pass_id"), ["pass_id"], unique=False)
        batch_op.create_index("ix_run_process_id_date", ["process_id", "date"], unique=False)
        batch_op.create_index("ix_run_status", ["status"], unique=False)

    op.create_table(
        "file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("stop", sa.DateTime(), nullable=False),
        sa.Column("interface", sa.Integer(), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("slot", sa.String(length=255), nullable=False),
        sa.Column("keywords", JSON_TYPE, nullable=False),
        sa.Column("metadata", JSON_TYPE, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.Column("code_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("is_newest", sa.Boolean(), nullable=False),
        sa.Column("on_disk", sa.Boolean(), nullable=False),
        sa.CheckConstraint('"start" < "stop"', name=op.f("ck_file_interval")),
        sa.CheckConstraint(
            "interface >= 1 AND quality >= 0 AND revision >= 0", name=op.f("ck_file_version")
        ),
        sa.ForeignKeyConstraint(["code_id"], ["code.id"], name=op.f("fk_file_code_id_code")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["product.id"], name=op.f("fk_file_product_id_product")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], name=op.f("fk_file_run_id_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file")),
        sa.UniqueConstraint("filename", name=op.f("uq_file_filename")),
        sa.UniqueConstraint(
            "product_id",
            "date",
            "slot",
            "interface",
            "quality",
            "revision",
            name="uq_file_identity",
        ),
    )
    with op.batch_alter_table("file", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_file_code_id"), ["code_id"], unique=False)
        batch_op.create_index("ix_file_product_id_date", ["product_id", "date"], unique=False)
        batch_op.create_index("ix_file_product_id_start", ["product_id", "start"], unique=False)
        batch_op.create_index(batch_op.f("ix_file_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            "uq_file_newest",
            ["product_id", "date", "slot"],
            unique=True,
            sqlite_where=sa.text("is_newest"),
            postgresql_where=sa.text("is_newest"),
        )

    op.create_table(
        "file_link",
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("child_id <> parent_id", name=op.f("ck_file_link_not_self")),
        sa.ForeignKeyConstraint(["child_id"], ["file.id"], name=op.f("fk_file_link_child_id_file")),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["file.id"], name=op.f("fk_file_link_parent_id_file")
        ),
        sa.PrimaryKeyConstraint("child_id", "parent_id", name=op.f("pk_file_link")),
    )
    with op.batch_alter_table("file_link", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_file_link_parent_id"), ["parent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("file_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_file_link_parent_id"))

    op.drop_table("file_link")
    with op.batch_alter_table("file", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_file_newest",
            sqlite_where=sa.text("is_newest"),
            postgresql_where=sa.text("is_newest"),
        )
        batch_op.drop_index(batch_op.f("ix_file_run_id"))
        batch_op.drop_index("ix_file_product_id_start")
        batch_op.drop_index("ix_file_product_id_date")
        batch_op.drop_index(batch_op.f("ix_file_code_id"))

    op.drop_table("file")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_index("ix_run_status")
        batch_op.drop_index("ix_run_process_id_date")
        batch_op.drop_index(batch_op.f("ix_run_pass_id"))
        batch_op.drop_index(batch_op.f("ix_run_code_id"))
        batch_op.drop_index(batch_op.f("ix_run_build_key"))

    op.drop_table("run")
    with op.batch_alter_table("process_input", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_process_input_product_id"))

    op.drop_table("process_input")
    with op.batch_alter_table("pending", schema=None) as batch_op:
        batch_op.drop_index("ix_pending_process_id_date")

    op.drop_table("pending")
    op.drop_table("forced_rebuild")
    op.drop_table("code")
    op.drop_table("reject")
    op.drop_table("process")
    op.drop_table("product")
    with op.batch_alter_table("pass_record", schema=None) as batch_op:
        batch_op.drop_index("ix_pass_record_state")

    op.drop_table("pass_record")
    op.drop_table("mission")
