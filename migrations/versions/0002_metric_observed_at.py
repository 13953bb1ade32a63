"""customer_metrics.observed_at: absolute readings arriving out of order never move a counter back

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import plugin.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer_metrics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("observed_at", plugin.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_metrics", schema=None) as batch_op:
        batch_op.drop_column("observed_at")
