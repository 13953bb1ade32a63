"""Shopify store credit through the Admin GraphQL API, faked with the docs' own shapes.

Request and answer shapes:
https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/storeCreditAccountCredit
https://shopify.dev/docs/api/admin-graphql/2025-07/objects/StoreCreditAccountCreditTransaction
https://shopify.dev/docs/api/admin-graphql/latest/objects/StoreCreditAccount
https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits
https://shopify.dev/docs/api/usage/response-codes
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import responses

from connectors.errors import ConnectorError
from connectors.payloads import Money, StoreCredit
from connectors.shopify import ShopifyConnector, ShopifySettings

BASE = "https://shopify.test"
GRAPHQL = f"{BASE}/admin/api/2025-07/graphql.json"
TRANSACTION_ID = "gid://shopify/StoreCreditAccountCreditTransaction/1069"
ACCOUNT_ID = "gid://shopify/StoreCreditAccount/316863792"


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


def credit(**overrides: Any) -> StoreCredit:
    fields: dict[str, Any] = {
        "idempotency_key": "effect-25-credit",
        "customer_external_id": "544365967",
        "amount": Money(Decimal("10.00"), "USD"),
        "reason": "25th order",
    }
    return StoreCredit(**{**fields, **overrides})


def sent(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


# The "Credit an amount to a store credit account by customer ID" example's answer, with the
# transaction's id and createdAt selected too.
CREDITED = {
    "data": {
        "storeCreditAccountCredit": {
            "storeCreditAccountTransaction": {
                "id": TRANSACTION_ID,
                "amount": {"amount": "10.0", "currencyCode": "USD"},
                "createdAt": "2026-11-21T15:30:12Z",
                "account": {"id": ACCOUNT_ID, "balance": {"amount": "59.99", "currencyCode": "USD"}},
            },
            "userErrors": [],
        }
    },
    "extensions": {
        "cost": {
            "requestedQueryCost": 10,
            "actualQueryCost": 10,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0},
        }
    },
}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def test_credit_sends_amount_and_currency_as_strings(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json=CREDITED)

    result = connector().apply_store_credit(credit())

    body = sent(mocked.calls[0])
    assert "storeCreditAccountCredit(id: $id, creditInput: $creditInput)" in body["query"]
    assert body["variables"] == {
        "id": "gid://shopify/Customer/544365967",
        "creditInput": {"creditAmount": {"amount": "10.00", "currencyCode": "USD"}},
    }
    assert mocked.calls[0].request.headers["X-Shopify-Access-Token"] == "shpat_test_token"
    assert result.external_id == TRANSACTION_ID
    assert result.detail == {
        "account_id": ACCOUNT_ID,
        "balance": "59.99",
        "currency": "USD",
        "created_at": "2026-11-21T15:30:12Z",
    }


def test_credit_sends_its_expiry_in_utc(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json=CREDITED)
    paris = timezone(timedelta(hours=1))

    connector().apply_store_credit(credit(expires_at=datetime(2027, 1, 1, 1, 0, tzinfo=paris)))

    assert sent(mocked.calls[0])["variables"]["creditInput"]["expiresAt"] == "2027-01-01T00:00:00+00:00"


def test_credit_asks_shopify_to_notify_only_where_the_version_has_notify(mocked: responses.RequestsMock) -> None:
    # notify arrived in 2026-01: https://shopify.dev/changelog/store-credit-notify-flag
    mocked.post(f"{BASE}/admin/api/2026-01/graphql.json", json=CREDITED)
    mocked.post(GRAPHQL, json=CREDITED)

    connector(api_version="2026-01").apply_store_credit(credit(notify=True))
    connector().apply_store_credit(credit(notify=True))

    assert sent(mocked.calls[0])["variables"]["creditInput"]["notify"] is True
    assert "notify" not in sent(mocked.calls[1])["variables"]["creditInput"]


def test_default_host_is_the_shop_domain(mocked: responses.RequestsMock) -> None:
    mocked.post("https://growthcorp.myshopify.com/admin/api/2025-07/graphql.json", json=CREDITED)

    result = connector(base_url=None).apply_store_credit(credit())

    assert result.external_id == TRANSACTION_ID


def test_a_customer_gid_is_sent_as_is(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json=CREDITED)

    connector().apply_store_credit(credit(customer_external_id="gid://shopify/Customer/7"))

    assert sent(mocked.calls[0])["variables"]["id"] == "gid://shopify/Customer/7"


def test_user_errors_are_permanent_with_their_messages(mocked: responses.RequestsMock) -> None:
    # "Crediting a negative amount returns an error" example on the mutation page.
    mocked.post(
        GRAPHQL,
        json={
            "data": {
                "storeCreditAccountCredit": {
                    "storeCreditAccountTransaction": None,
                    "userErrors": [
                        {
                            "field": ["creditInput", "creditAmount", "amount"],
                            "message": "A positive amount must be used to credit a store credit account.",
                            "code": "NEGATIVE_OR_ZERO_AMOUNT",
                        }
                    ],
                }
            }
        },
    )

    with pytest.raises(ConnectorError) as caught:
        connector().apply_store_credit(credit(amount=Money(Decimal("-5"), "USD")))

    assert caught.value.permanent is True
    assert "A positive amount must be used" in caught.value.message


def test_throttled_is_transient_and_waits_for_the_cost_bucket(mocked: responses.RequestsMock) -> None:
    mocked.post(
        GRAPHQL,
        json={
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
                }
            ],
            "extensions": {
                "cost": {
                    "requestedQueryCost": 752,
                    "actualQueryCost": None,
                    "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 666, "restoreRate": 50.0},
                }
            },
        },
    )

    with pytest.raises(ConnectorError) as caught:
        connector().apply_store_credit(credit())

    assert caught.value.permanent is False
    assert caught.value.retry_after == 2.0  # (752 - 666) / 50 = 1.72, rounded up


def test_throttled_without_cost_data_leaves_the_wait_to_the_job(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json={"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]})

    with pytest.raises(ConnectorError) as caught:
        connector().apply_store_credit(credit())

    assert caught.value.permanent is False
    assert caught.value.retry_after is None


def test_access_denied_graphql_error_is_permanent(mocked: responses.RequestsMock) -> None:
    mocked.post(
        GRAPHQL,
        json={
            "errors": [
                {
                    "message": "Access denied for storeCreditAccountCredit field.",
                    "extensions": {"code": "ACCESS_DENIED"},
                }
            ]
        },
    )

    with pytest.raises(ConnectorError) as caught:
        connector().apply_store_credit(credit())

    assert caught.value.permanent is True
    assert "Access denied" in caught.value.message


def test_internal_server_error_graphql_error_is_transient(mocked: responses.RequestsMock) -> None:
    mocked.post(
        GRAPHQL,
        json={"errors": [{"message": "Internal error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]},
    )

    with pytest.raises(ConnectorError) as caught:
        connector().apply_store_credit(credit())

    assert caught.value.permanent is False


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
        (404, {"errors": "Not Found"}),
    ],
)
def test_unauthorised_or_unknown_shop_is_permanent(
    mocked: responses.RequestsMock, status: int, body: dict[str, str]
) -> None:
    mocked.post(GRAPHQL, json=body, status=status)

    with pytest.raises(ConnectorError) as caught:
        connector().apply_store_credit(credit())

    assert caught.value.permanent is True
    assert caught.value.status == status


def test_429_is_transient_with_retry_after(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json={"errors": "Exceeded 2 calls per second"}, status=429, headers={"Retry-After": "2.0"})

    with pytest.raises(ConnectorError) as caught:
        connector().apply_store_credit(credit())

    assert caught.value.permanent is False
    assert caught.value.retry_after == 2.0


def test_5xx_is_transient(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, body="upstream failure", status=503)

    with pytest.raises(ConnectorError) as caught:
        connector().apply_store_credit(credit())

    assert caught.value.permanent is False
    assert caught.value.status == 503


def history(*transactions: dict[str, Any], currency: str = "USD") -> dict[str, Any]:
    """A customer's store credit accounts as the recent-credits query returns them."""
    return {
        "data": {
            "customer": {
                "storeCreditAccounts": {
                    "nodes": [
                        {
                            "id": ACCOUNT_ID,
                            "balance": {"amount": "59.99", "currencyCode": currency},
                            "transactions": {"nodes": list(transactions)},
                        }
                    ]
                }
            }
        }
    }


def transaction(number: int, amount: str, created_at: str, currency: str = "USD") -> dict[str, Any]:
    return {
        "id": f"gid://shopify/StoreCreditAccountCreditTransaction/{number}",
        "amount": {"amount": amount, "currencyCode": currency},
        "createdAt": created_at,
    }


SINCE = datetime(2026, 11, 21, 15, 30, 0, tzinfo=UTC)


def test_reconcile_finds_the_credit_a_crashed_attempt_applied(mocked: responses.RequestsMock) -> None:
    mocked.post(
        GRAPHQL,
        json=history(
            transaction(3, "5.0", "2026-11-21T15:30:40Z"),  # other amount
            transaction(2, "10.0", "2026-11-21T15:30:12Z"),  # ours
            transaction(1, "10.0", "2026-11-20T09:00:00Z"),  # same amount, a day earlier
        ),
    )

    found = connector().find_store_credit(credit(), since=SINCE)

    assert found is not None
    assert found.external_id == "gid://shopify/StoreCreditAccountCreditTransaction/2"
    assert found.detail["account_id"] == ACCOUNT_ID
    body = sent(mocked.calls[0])
    assert body["variables"] == {"customerId": "gid://shopify/Customer/544365967"}
    assert "storeCreditAccounts" in body["query"] and 'query: "type:credit"' in body["query"]


def test_reconcile_allows_for_a_little_clock_skew(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json=history(transaction(2, "10.00", "2026-11-21T15:28:30Z")))

    found = connector().find_store_credit(credit(), since=SINCE)

    assert found is not None and found.external_id == "gid://shopify/StoreCreditAccountCreditTransaction/2"


def test_reconcile_finds_nothing_when_no_matching_credit_is_recent(mocked: responses.RequestsMock) -> None:
    mocked.post(
        GRAPHQL,
        json=history(
            transaction(1, "10.0", "2026-11-21T15:20:00Z"),  # before since minus skew
            transaction(2, "10.0", "2026-11-21T15:31:00Z", currency="CAD"),  # other currency
            transaction(3, "25.0", "2026-11-21T15:31:00Z"),  # other amount
        ),
    )

    assert connector().find_store_credit(credit(), since=SINCE) is None


def test_reconcile_for_an_unknown_customer_finds_nothing(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json={"data": {"customer": None}})

    assert connector().find_store_credit(credit(), since=SINCE) is None


def test_check_connection_reads_the_shop_name(mocked: responses.RequestsMock) -> None:
    # https://shopify.dev/docs/api/admin-graphql/2025-07/queries/shop
    mocked.post(GRAPHQL, json={"data": {"shop": {"name": "GrowthCorp"}}})

    connector().check_connection()

    assert "shop { name }" in sent(mocked.calls[0])["query"]
    assert mocked.calls[0].request.headers["X-Shopify-Access-Token"] == "shpat_test_token"


def test_check_connection_with_a_bad_token_is_permanent(mocked: responses.RequestsMock) -> None:
    mocked.post(GRAPHQL, json={"errors": "[API] Invalid API key or access token"}, status=401)

    with pytest.raises(ConnectorError) as caught:
        connector().check_connection()

    assert caught.value.permanent is True


def test_settings_default_the_api_version_and_mark_secrets() -> None:
    loaded = ShopifySettings().load(
        {"shop_domain": "growthcorp.myshopify.com", "access_token": "shpat_x", "api_secret": "s"}
    )

    assert loaded["api_version"] == "2025-07"
    assert ShopifySettings.secret_fields() == {"access_token", "api_secret", "previous_api_secret"}


def test_settings_refuse_a_url_as_shop_domain() -> None:
    errors = ShopifySettings().validate(
        {"shop_domain": "https://growthcorp.myshopify.com/", "access_token": "shpat_x", "api_secret": "s"}
    )

    assert "shop_domain" in errors
