"""Shopify customer tags and single-customer discount codes, faked with the docs' own shapes.

Request and answer shapes:
https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/tagsAdd
https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/discountCodeBasicCreate
https://shopify.dev/docs/api/admin-graphql/2025-07/input-objects/DiscountCodeBasicInput
https://shopify.dev/docs/api/admin-graphql/2025-07/payloads/DiscountCodeBasicCreatePayload
https://shopify.dev/docs/api/admin-graphql/2025-07/queries/codeDiscountNodeByCode
https://shopify.dev/changelog/discount-eligibility-management (``context`` from 2025-10)
https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits
https://shopify.dev/docs/api/usage/response-codes
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import responses

from connectors.base import Capability
from connectors.errors import ConnectorError
from connectors.payloads import CustomerTag, DiscountCode, EffectResult, Money
from connectors.shopify import ShopifyConnector

BASE = "https://shopify.test"
GRAPHQL = f"{BASE}/admin/api/2025-07/graphql.json"
CUSTOMER = "gid://shopify/Customer/544365967"
DISCOUNT_ID = "gid://shopify/DiscountCodeNode/1057371222"
SINCE = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)


def connector(**settings: Any) -> ShopifyConnector:
    return ShopifyConnector(
        {
            "shop_domain": "growthcorp.myshopify.com",
            "access_token": "shpat_test_token",
            "api_secret": "webhook-secret",
            "base_url": BASE,
            **settings,
        }
    )


def sent(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


def tag(**overrides: Any) -> CustomerTag:
    fields: dict[str, Any] = {
        "idempotency_key": "effect-100-tag",
        "customer_external_id": "544365967",
        "customer_email": "bob@biller.com",
        "tags": ("VIP", "loyalty-tier-2"),
    }
    return CustomerTag(**{**fields, **overrides})


def discount(**overrides: Any) -> DiscountCode:
    """RHF's anniversary reward: 20% off, valid 7 days."""
    fields: dict[str, Any] = {
        "idempotency_key": "effect-anniversary-1y-discount",
        "customer_external_id": "544365967",
        "customer_email": "bob@biller.com",
        "code": "YEAR1-7QX2",
        "title": "Happy 1st anniversary: 20% off",
        "starts_at": SINCE,
        "ends_at": SINCE + timedelta(days=7),
        "percentage": Decimal("20"),
    }
    return DiscountCode(**{**fields, **overrides})


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def test_shopify_declares_tags_and_discount_codes() -> None:
    assert {Capability.ADD_CUSTOMER_TAG, Capability.CREATE_DISCOUNT_CODE} <= ShopifyConnector.capabilities


# --- tagsAdd -----------------------------------------------------------------------------------

# The "Add tags to a customer" example's answer.
TAGGED = {"data": {"tagsAdd": {"node": {"id": CUSTOMER}, "userErrors": []}}}


def test_tags_are_added_to_the_customer_gid(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json=TAGGED)

    result = connector().add_customer_tag(tag())

    body = sent(mocked.calls[0])
    assert "tagsAdd(id: $id, tags: $tags)" in body["query"]
    assert body["variables"] == {"id": CUSTOMER, "tags": ["VIP", "loyalty-tier-2"]}
    assert mocked.calls[0].request.headers["X-Shopify-Access-Token"] == "shpat_test_token"
    assert result == EffectResult(external_id=CUSTOMER, detail={"tags": ["VIP", "loyalty-tier-2"]})


def test_adding_the_same_tags_again_is_the_same_result(mocked: responses.RequestsMock) -> None:
    # tagsAdd keeps existing tags, so the runner performs it again after a crash (no reconcile).
    mocked.post(GRAPHQL, json=TAGGED)
    mocked.post(GRAPHQL, json=TAGGED)

    first = connector().add_customer_tag(tag())
    again = connector().add_customer_tag(tag())

    assert first == again


def test_tag_user_errors_are_permanent(mocked: responses.RequestsMock) -> None:
    # TagsAddPayload.userErrors is [UserError!]! (field, message); the message is illustrative.
    mocked.post(
        GRAPHQL,
        json={
            "data": {
                "tagsAdd": {
                    "node": None,
                    "userErrors": [{"field": ["id"], "message": "Customer does not exist"}],
                }
            }
        },
    )

    with pytest.raises(ConnectorError) as caught:
        connector().add_customer_tag(tag())

    assert caught.value.permanent is True
    assert "Customer does not exist" in caught.value.message


def test_no_tags_is_refused_before_calling_shopify(mocked: responses.RequestsMock) -> None:
    with pytest.raises(ConnectorError) as caught:
        connector().add_customer_tag(tag(tags=()))

    assert caught.value.permanent is True
    assert len(mocked.calls) == 0


# --- discountCodeBasicCreate ----------------------------------------------------------------------


def discount_node(
    *,
    title: str = "Happy 1st anniversary: 20% off",
    code: str = "YEAR1-7QX2",
    customers: list[str] | None = None,
    eligibility: str = "customerSelection",
) -> dict[str, Any]:
    """A DiscountCodeNode with the DiscountCodeBasic fields the connector selects."""
    return {
        "id": DISCOUNT_ID,
        "codeDiscount": {
            "title": title,
            "startsAt": "2026-11-21T15:30:00Z",
            "endsAt": "2026-11-28T15:30:00Z",
            "codes": {"nodes": [{"code": code}]},
            eligibility: {"customers": [{"id": c} for c in (customers or [CUSTOMER])]},
        },
    }


def created(node: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "data": {"discountCodeBasicCreate": {"codeDiscountNode": node or discount_node(), "userErrors": []}}
    }


def refused(*errors: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"discountCodeBasicCreate": {"codeDiscountNode": None, "userErrors": list(errors)}}}


CODE_TAKEN = {
    "field": ["basicCodeDiscount", "code"],
    "code": "TAKEN",
    "message": "Code must be unique. Please try a different code.",
}


def test_percentage_code_for_one_customer_once(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json=created())

    result = connector().create_discount_code(discount())

    body = sent(mocked.calls[0])
    assert "discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount)" in body["query"]
    assert body["variables"] == {
        "basicCodeDiscount": {
            "title": "Happy 1st anniversary: 20% off",
            "code": "YEAR1-7QX2",
            "startsAt": "2026-11-21T15:30:00+00:00",
            "endsAt": "2026-11-28T15:30:00+00:00",
            "customerSelection": {"customers": {"add": [CUSTOMER]}},
            "customerGets": {"value": {"percentage": 0.2}, "items": {"all": True}},
            "appliesOncePerCustomer": True,
            "usageLimit": 1,
        }
    }
    assert result == EffectResult(
        external_id=DISCOUNT_ID, detail={"code": "YEAR1-7QX2", "ends_at": "2026-11-28T15:30:00Z"}
    )


@pytest.mark.parametrize(("percent", "ratio"), [("20", 0.2), ("33.33", 0.3333), ("100", 1.0), ("0.5", 0.005)])
def test_our_percent_is_sent_as_shopifys_ratio(
    mocked: responses.RequestsMock, percent: str, ratio: float
) -> None:
    mocked.post(GRAPHQL, json=created())

    connector().create_discount_code(discount(percentage=Decimal(percent)))

    assert sent(mocked.calls[0])["variables"]["basicCodeDiscount"]["customerGets"]["value"] == {
        "percentage": ratio
    }


def test_fixed_amount_code_sends_the_amount_as_a_string(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json=created())

    connector().create_discount_code(discount(percentage=None, amount=Money(Decimal("10.00"), "USD")))

    gets = sent(mocked.calls[0])["variables"]["basicCodeDiscount"]["customerGets"]
    assert gets == {
        "value": {"discountAmount": {"amount": "10.00", "appliesOnEachItem": False}},
        "items": {"all": True},
    }


def test_dates_are_sent_in_utc_and_an_open_ended_code_has_no_end(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json=created())
    paris = timezone(timedelta(hours=1))

    connector().create_discount_code(
        discount(starts_at=datetime(2027, 1, 1, 1, 0, tzinfo=paris), ends_at=None)
    )

    basic = sent(mocked.calls[0])["variables"]["basicCodeDiscount"]
    assert basic["startsAt"] == "2027-01-01T00:00:00+00:00"
    assert "endsAt" not in basic


def test_from_2025_10_the_customer_goes_in_context(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE}/admin/api/2025-10/graphql.json", json=created(discount_node(eligibility="context")))

    result = connector(api_version="2025-10").create_discount_code(discount())

    body = sent(mocked.calls[0])
    assert body["variables"]["basicCodeDiscount"]["context"] == {"customers": {"add": [CUSTOMER]}}
    assert "customerSelection" not in body["variables"]["basicCodeDiscount"]
    assert "context { ... on DiscountCustomers" in body["query"]
    assert "customerSelection" not in body["query"]
    assert result.external_id == DISCOUNT_ID


@pytest.mark.parametrize(
    "changes",
    [
        {"percentage": Decimal("0")},
        {"percentage": Decimal("120")},
        {"percentage": Decimal("NaN")},
        {"percentage": None},
        {"amount": Money(Decimal("5"), "USD")},
        {"percentage": None, "amount": Money(Decimal("0"), "USD")},
    ],
)
def test_a_discount_that_cannot_be_valid_is_refused_before_calling_shopify(
    mocked: responses.RequestsMock, changes: dict[str, Any]
) -> None:
    with pytest.raises(ConnectorError) as caught:
        connector().create_discount_code(discount(**changes))

    assert caught.value.permanent is True
    assert len(mocked.calls) == 0


def test_a_taken_code_that_is_ours_is_the_discount_an_earlier_attempt_created(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(GRAPHQL, json=refused(CODE_TAKEN))
    mocked.post(GRAPHQL, json={"data": {"codeDiscountNodeByCode": discount_node()}})

    result = connector().create_discount_code(discount())

    lookup = sent(mocked.calls[1])
    assert "codeDiscountNodeByCode(code: $code)" in lookup["query"]
    assert lookup["variables"] == {"code": "YEAR1-7QX2"}
    assert result == EffectResult(
        external_id=DISCOUNT_ID,
        detail={"code": "YEAR1-7QX2", "ends_at": "2026-11-28T15:30:00Z", "reconciled": True},
    )


@pytest.mark.parametrize(
    "other",
    [
        discount_node(title="Staff 50% off"),
        discount_node(customers=["gid://shopify/Customer/1"]),
    ],
)
def test_a_taken_code_of_another_discount_is_permanent(
    mocked: responses.RequestsMock, other: dict[str, Any]
) -> None:
    mocked.post(GRAPHQL, json=refused(CODE_TAKEN))
    mocked.post(GRAPHQL, json={"data": {"codeDiscountNodeByCode": other}})

    with pytest.raises(ConnectorError) as caught:
        connector().create_discount_code(discount())

    assert caught.value.permanent is True
    assert "belongs to another discount" in caught.value.message


def test_other_discount_user_errors_are_permanent_without_a_lookup(mocked: responses.RequestsMock) -> None:
    mocked.post(
        GRAPHQL,
        json=refused(
            {
                "field": ["basicCodeDiscount", "endsAt"],
                "code": "INVALID",
                "message": "Ends at needs to be after starts_at",
            }
        ),
    )

    with pytest.raises(ConnectorError) as caught:
        connector().create_discount_code(discount())

    assert caught.value.permanent is True
    assert "Ends at needs to be after starts_at" in caught.value.message
    assert len(mocked.calls) == 1


def test_reconcile_finds_the_code_a_crashed_attempt_created(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json={"data": {"codeDiscountNodeByCode": discount_node()}})

    found = connector().find_discount_code(discount(), since=SINCE)

    assert found is not None and found.external_id == DISCOUNT_ID
    assert found.detail["reconciled"] is True


def test_reconcile_finds_nothing_for_an_unknown_code(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json={"data": {"codeDiscountNodeByCode": None}})

    assert connector().find_discount_code(discount(), since=SINCE) is None


# --- errors shared by every call -----------------------------------------------------------------

CALLS: dict[str, Callable[[ShopifyConnector], Any]] = {
    "tag": lambda c: c.add_customer_tag(tag()),
    "discount": lambda c: c.create_discount_code(discount()),
    "reconcile": lambda c: c.find_discount_code(discount(), since=SINCE),
}


@pytest.mark.parametrize("call", CALLS)
def test_throttled_is_transient_and_waits_for_the_cost_bucket(
    mocked: responses.RequestsMock, call: str
) -> None:
    mocked.post(
        GRAPHQL,
        json={
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {
                "cost": {
                    "requestedQueryCost": 10,
                    "actualQueryCost": None,
                    "throttleStatus": {
                        "maximumAvailable": 2000.0,
                        "currentlyAvailable": 4,
                        "restoreRate": 100.0,
                    },
                }
            },
        },
    )

    with pytest.raises(ConnectorError) as caught:
        CALLS[call](connector())

    assert caught.value.permanent is False
    assert caught.value.retry_after == 1.0


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    ("status", "body", "headers", "permanent", "retry_after"),
    [
        (
            401,
            {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"},
            {},
            True,
            None,
        ),
        (404, {"errors": "Not Found"}, {}, True, None),
        (429, {"errors": "Exceeded 2 calls per second"}, {"Retry-After": "2.0"}, False, 2.0),
        (503, {"errors": "Service Unavailable"}, {}, False, None),
    ],
)
def test_http_errors_map_to_permanent_or_retryable(
    mocked: responses.RequestsMock,
    call: str,
    status: int,
    body: dict[str, str],
    headers: dict[str, str],
    permanent: bool,
    retry_after: float | None,
) -> None:
    mocked.post(GRAPHQL, json=body, status=status, headers=headers)

    with pytest.raises(ConnectorError) as caught:
        CALLS[call](connector())

    assert (caught.value.status, caught.value.permanent, caught.value.retry_after) == (
        status,
        permanent,
        retry_after,
    )
