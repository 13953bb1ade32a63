"""Every table, importable from one place (Alembic's env imports this for the metadata)."""

from plugin.models.admin_user import AdminUser
from plugin.models.backfill import BackfillRun as BackfillRun
from plugin.models.base import Base
from plugin.models.customer import Customer, CustomerIdentity, CustomerMetric, Order
from plugin.models.delivery import InboxDelivery
from plugin.models.effect import Effect
from plugin.models.milestone import CustomerMilestone, MilestoneDefinition, ScanRun
from plugin.models.workspace import Connection, Workspace

__all__ = [
    "AdminUser",
    "Base",
    "Connection",
    "Customer",
    "CustomerIdentity",
    "CustomerMetric",
    "CustomerMilestone",
    "Effect",
    "InboxDelivery",
    "MilestoneDefinition",
    "Order",
    "ScanRun",
    "Workspace",
]
