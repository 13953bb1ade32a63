"""Privacy requests from a platform: erase a customer's personal data, keep anonymous counts.

Shopify's mandatory compliance webhooks (https://shopify.dev/docs/apps/build/compliance/
privacy-law-compliance). Redaction removes names, email, free-form properties, the raw webhook
payloads that mention the customer and the personal parts of effect payloads; counters,
milestones and order amounts stay, unattached to a person, so dashboards still add up.
"""

from __future__ import annotations

import logging
import uuid
from typing import cast

from sqlalchemy import Table, delete, or_, select, update
from sqlalchemy.orm import Session

from plugin.db import utcnow
from plugin.events import CustomerRef
from plugin.models import (
    Connection,
    Customer,
    CustomerIdentity,
    CustomerMilestone,
    Effect,
    InboxDelivery,
    Order,
)
from plugin.models import effect as effect_status
from plugin.pipeline.customers import normalize_email

log = logging.getLogger(__name__)

REDACTED_BODY = '{"redacted": true}'
INBOX = cast(Table, InboxDelivery.__table__)


def _find(session: Session, connection_id: uuid.UUID, ref: CustomerRef) -> Customer | None:
    if ref.external_id:
        found = session.execute(
            select(Customer)
            .join(CustomerIdentity, CustomerIdentity.customer_id == Customer.id)
            .where(CustomerIdentity.connection_id == connection_id, CustomerIdentity.external_id == ref.external_id)
        ).scalar_one_or_none()
        if found is not None:
            return found
    email = normalize_email(ref.email)
    if not email:
        return None
    workspace_id = session.scalar(select(Connection.workspace_id).where(Connection.id == connection_id))
    return session.execute(
        select(Customer).where(Customer.workspace_id == workspace_id, Customer.email == email)
    ).scalar_one_or_none()


def redact_customer(
    session: Session, connection_id: uuid.UUID, ref: CustomerRef, order_external_ids: tuple[str, ...] = ()
) -> bool:
    customer = _find(session, connection_id, ref)
    needles = [n for n in (normalize_email(ref.email), *(f'"id":{o},' for o in order_external_ids)) if n]
    if customer is not None:
        needles.append(normalize_email(customer.email) or "")
        _erase(session, customer)
    _erase_payloads(session, connection_id, [n for n in needles if n])
    return customer is not None


def _erase(session: Session, customer: Customer) -> None:
    customer.email = None
    customer.first_name = customer.last_name = customer.company_name = None
    customer.owner_email = None
    customer.properties = {"redacted_at": utcnow().isoformat()}
    session.execute(delete(CustomerIdentity).where(CustomerIdentity.customer_id == customer.id))
    session.execute(update(Order).where(Order.customer_id == customer.id).values(line_items=[]))
    milestone_ids = select(CustomerMilestone.id).where(CustomerMilestone.customer_id == customer.id)
    session.execute(
        update(Effect)
        .where(Effect.milestone_id.in_(milestone_ids), Effect.status.in_(effect_status.OPEN_STATUSES + (effect_status.HELD,)))
        .values(status=effect_status.CANCELLED, last_error="customer data redacted on the platform's request")
    )
    session.execute(update(Effect).where(Effect.milestone_id.in_(milestone_ids)).values(payload={"redacted": True}))
    session.execute(update(CustomerMilestone).where(CustomerMilestone.customer_id == customer.id).values(context={}))


def _erase_payloads(session: Session, connection_id: uuid.UUID, needles: list[str]) -> None:
    if not needles:
        return
    session.execute(
        update(INBOX)
        .where(INBOX.c.connection_id == connection_id)
        .where(or_(*(INBOX.c.body.contains(needle) for needle in needles)))
        .values(body=REDACTED_BODY, headers={})
    )


def record_data_request(session: Session, connection_id: uuid.UUID, ref: CustomerRef, request_id: str | None) -> None:
    """Remember the request on the customer; the admin exports their data from the API."""
    customer = _find(session, connection_id, ref)
    log.info("data request %s for customer %s", request_id, customer.id if customer else "unknown")
    if customer is None:
        return
    requests = list((customer.properties or {}).get("data_requests", []))
    requests.append({"request_id": request_id, "received_at": utcnow().isoformat()})
    customer.properties = {**(customer.properties or {}), "data_requests": requests}


def redact_connection(session: Session, connection_id: uuid.UUID) -> None:
    """The shop is gone for good: erase every customer known only through it, and its payloads."""
    only_here = select(CustomerIdentity.customer_id).where(CustomerIdentity.connection_id == connection_id)
    elsewhere = select(CustomerIdentity.customer_id).where(CustomerIdentity.connection_id != connection_id)
    for customer in session.execute(
        select(Customer).where(Customer.id.in_(only_here), Customer.id.not_in(elsewhere))
    ).scalars():
        _erase(session, customer)
    session.execute(delete(CustomerIdentity).where(CustomerIdentity.connection_id == connection_id))
    session.execute(
        update(INBOX).where(INBOX.c.connection_id == connection_id).values(body=REDACTED_BODY, headers={})
    )
    session.execute(update(Connection).where(Connection.id == connection_id).values(status="redacted"))
