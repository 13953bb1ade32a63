"""customers.since_local/since_mmdd/since_dom and scan_runs: the daily anniversary scan

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import plugin.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("since_local", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("since_mmdd", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("since_dom", sa.SmallInteger(), nullable=True))
        batch_op.create_index("ix_customers_since_mmdd", ["workspace_id", "since_mmdd"], unique=False)
        batch_op.create_index("ix_customers_since_dom", ["workspace_id", "since_dom"], unique=False)
        batch_op.create_index("ix_customers_since_local", ["workspace_id", "since_local"], unique=False)
    op.create_table(
        "scan_runs",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("ran_at", plugin.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("candidates", sa.Integer(), nullable=False),
        sa.Column("awarded", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_scan_runs_workspace_id_workspaces"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "day", name=op.f("pk_scan_runs")),
    )


def downgrade() -> None:
    op.drop_table("scan_runs")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_since_local")
        batch_op.drop_index("ix_customers_since_dom")
        batch_op.drop_index("ix_customers_since_mmdd")
        batch_op.drop_column("since_dom")
        batch_op.drop_column("since_mmdd")
        batch_op.drop_column("since_local")
