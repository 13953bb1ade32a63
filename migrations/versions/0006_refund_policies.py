"""refund policies and the credit hold: what a refund or cancellation does to a milestone

milestone_definitions.refund_policy (keep | claw_back | revoke) and credit_hold_days;
customer_milestones.order_id (the qualifying order), reversed_at and revoked_at;
effects.hold_reason (why a held effect waits, when it is not the review queue).

Every change is an ALTER TABLE ADD/DROP COLUMN, on SQLite too (3.35+ drops columns natively): a
batch rebuild would drop and recreate the table, and with foreign keys on, dropping
customer_milestones or milestone_definitions deletes every effect and milestone under them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import plugin.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

HELD_WITH_REASON = "status = 'held' AND hold_reason IS NOT NULL"
ORDER_FK = "fk_customer_milestones_order_id_orders"
ADDED = (
    ("milestone_definitions", "refund_policy"),
    ("milestone_definitions", "credit_hold_days"),
    ("customer_milestones", "order_id"),
    ("customer_milestones", "reversed_at"),
    ("customer_milestones", "revoked_at"),
    ("effects", "hold_reason"),
)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.add_column("milestone_definitions",
                  sa.Column("refund_policy", sa.String(length=20), server_default="keep", nullable=False))
    op.add_column("milestone_definitions", sa.Column("credit_hold_days", sa.Integer(), nullable=True))
    if _sqlite():  # SQLite adds a reference only with the column itself
        op.execute("ALTER TABLE customer_milestones ADD COLUMN order_id INTEGER REFERENCES orders (id) ON DELETE SET NULL")
    else:
        op.add_column("customer_milestones", sa.Column("order_id", sa.BigInteger(), nullable=True))
        op.create_foreign_key(ORDER_FK, "customer_milestones", "orders", ["order_id"], ["id"], ondelete="SET NULL")
    op.add_column("customer_milestones", sa.Column("reversed_at", plugin.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column("customer_milestones", sa.Column("revoked_at", plugin.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column("effects", sa.Column("hold_reason", sa.String(length=20), nullable=True))
    op.create_index("ix_effects_held", "effects", ["next_attempt_at"], unique=False,
                    postgresql_where=sa.text(HELD_WITH_REASON), sqlite_where=sa.text(HELD_WITH_REASON))


def downgrade() -> None:
    op.drop_index("ix_effects_held", table_name="effects")
    if _sqlite():
        for table, column in reversed(ADDED):
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        return
    op.drop_constraint(ORDER_FK, "customer_milestones", type_="foreignkey")
    for table, column in reversed(ADDED):
        op.drop_column(table, column)
