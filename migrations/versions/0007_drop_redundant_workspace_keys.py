"""drop the workspace foreign keys that another key already implies (orders, identities, milestones)

``orders``, ``customer_identities`` and ``customer_milestones`` carry ``workspace_id`` for the
queries that filter by workspace, and each row also references its connection or its customer,
which belong to that workspace. The direct ``workspace_id → workspaces`` key adds nothing a
referenced row does not already guarantee: a workspace is deleted through its connections and
customers (``ON DELETE CASCADE`` all the way down), and a row cannot reference a connection or
customer that does not exist. What it did add is a per-row check on every insert — a third of
the foreign-key work of a history backfill (a million orders, hundreds of thousands of
milestones). The columns and their indexes stay.

On SQLite the keys are left in place: dropping a constraint there means rebuilding the table,
and with foreign keys on, dropping ``customer_milestones`` to rebuild it would delete the effects
under it. The embedded database is not where a million-row import runs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 06:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KEYS = (
    ("orders", "fk_orders_workspace_id_workspaces"),
    ("customer_identities", "fk_customer_identities_workspace_id_workspaces"),
    ("customer_milestones", "fk_customer_milestones_workspace_id_workspaces"),
)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if _sqlite():
        return
    for table, name in KEYS:
        op.drop_constraint(name, table, type_="foreignkey")


def downgrade() -> None:
    if _sqlite():
        return
    for table, name in KEYS:
        op.create_foreign_key(name, table, "workspaces", ["workspace_id"], ["id"], ondelete="CASCADE")
