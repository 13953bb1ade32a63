"""Shopify's compliance webhooks: a redacted customer keeps counting, anonymously."""

from __future__ import annotations

import json

from sqlalchemy import select

from plugin.demo.shopify_payloads import signed_delivery
from plugin.models import Customer, CustomerMilestone, Effect, InboxDelivery
from tests.conftest import services_of
from tests.support import ALICE, SHOP_DOMAIN, SHOP_SECRET, metric, order, post_order


def _post(client, topic: str, payload: dict):
    body, headers = signed_delivery(payload, topic=topic, shop_domain=SHOP_DOMAIN, secret=SHOP_SECRET)
    return client.post("/webhooks/shopify", data=body, headers=headers)


def test_customers_redact_erases_personal_data_and_keeps_anonymous_counts(app, client, shop):
    for n in range(1, 4):
        post_order(client, order(n))
    services = services_of(app)
    response = _post(client, "customers/redact", {
        "shop_id": 954889, "shop_domain": SHOP_DOMAIN,
        "customer": {"id": ALICE.id, "email": ALICE.email, "phone": "555-625-1199"},
        "orders_to_redact": [900001, 900002, 900003],
    })
    assert response.status_code == 200
    with services.sessions() as session:
        customer = session.execute(select(Customer)).scalar_one()
        bodies = session.execute(select(InboxDelivery.body)).scalars().all()
        payloads = session.execute(select(Effect.payload)).scalars().all()
        milestones = session.execute(select(CustomerMilestone)).scalars().all()
        customer_id = customer.id
        assert (customer.email, customer.first_name, customer.last_name) == (None, None, None)
    assert not any(ALICE.email in body for body in bodies)
    assert not any(ALICE.email in json.dumps(p) for p in payloads)
    assert len(milestones) == 1  # the 1st order milestone is still counted, unattached to a person
    with services.sessions() as session:
        from plugin.models import CustomerMetric

        count = session.scalar(select(CustomerMetric.value).where(
            CustomerMetric.customer_id == customer_id, CustomerMetric.metric == "order_count"))
    assert count == 3
    assert metric(services, ALICE.email, "order_count") == 0  # nobody is findable by that email now


def test_shop_redact_marks_the_connection_and_erases_its_payloads(app, client, shop):
    post_order(client, order(1))
    assert _post(client, "shop/redact", {"shop_id": 954889, "shop_domain": SHOP_DOMAIN}).status_code == 200
    services = services_of(app)
    with services.sessions() as session:
        from plugin.models import Connection

        assert session.get(Connection, shop.id).status == "redacted"
        assert all("alice" not in b for b in session.execute(select(InboxDelivery.body)).scalars())
