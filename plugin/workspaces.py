"""Creating a workspace with its admin token and the default catalogue."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.engine.conditions import parse_condition
from plugin.milestones.catalogue import CELEBRATION_TEMPLATES, DEFAULT_DEFINITIONS
from plugin.models import MilestoneDefinition, Workspace


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_workspace(
    session: Session,
    name: str,
    *,
    admin_token: str | None = None,
    timezone: str = "UTC",
    currency: str = "USD",
    slug: str | None = None,
) -> tuple[Workspace, str]:
    """A new workspace with the default catalogue. Returns it and its admin token."""
    token = admin_token or secrets.token_urlsafe(32)
    workspace = Workspace(
        id=uuid.uuid4(),
        name=name,
        slug=slug or _slug(name),
        timezone=timezone,
        currency=currency,
        admin_token_hash=token_hash(token),
        settings={},
    )
    session.add(workspace)
    session.flush()
    install_default_catalogue(session, workspace)
    return workspace, token


def find_workspace(session: Session, reference: str) -> Workspace | None:
    """The workspace whose id or slug ``reference`` is."""
    try:
        by_id = session.get(Workspace, uuid.UUID(reference))
    except ValueError:
        by_id = None
    return by_id or session.scalar(select(Workspace).where(Workspace.slug == reference))


def install_default_catalogue(session: Session, workspace: Workspace) -> int:
    existing = set(
        session.execute(select(MilestoneDefinition.key).where(MilestoneDefinition.workspace_id == workspace.id)).scalars()
    )
    added = 0
    for order, spec in enumerate(DEFAULT_DEFINITIONS):
        if spec["key"] in existing:
            continue
        parse_condition(spec["condition"])  # the catalogue must always be valid
        session.add(
            MilestoneDefinition(
                workspace_id=workspace.id,
                key=spec["key"],
                type=spec["type"],
                name=spec["name"],
                condition=spec["condition"],
                celebration_template=CELEBRATION_TEMPLATES.get(spec["key"]),
                enabled=True,
                recognition=[_with_currency(a, workspace.currency) for a in spec["recognition"]],
                requires_review=spec.get("requires_review", False),
                escalate=spec.get("escalate", False),
                significant=spec.get("significant", False),
                sort_order=order,
            )
        )
        added += 1
    session.flush()
    return added


def _with_currency(action: dict, currency: str) -> dict:
    if action.get("kind") == "store_credit" and "currency" not in action:
        return {**action, "currency": currency}
    return dict(action)


def _slug(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "workspace"
    return f"{base}-{secrets.token_hex(3)}"
