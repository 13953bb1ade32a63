"""Taking store credit back, faked with the platforms' documented shapes.

Shopify: https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/storeCreditAccountDebit
(``StoreCreditAccountDebitInput.debitAmount``; ``StoreCreditAccountDebitPayload``; user error codes
https://shopify.dev/docs/api/admin-graphql/2025-07/enums/StoreCreditAccountDebitUserErrorCode;
transactions' ``event`` https://shopify.dev/docs/api/admin-graphql/2025-07/enums/StoreCreditSystemEvent).
WooCommerce: https://woocommerce.github.io/woocommerce-rest-api-docs/#retrieve-a-coupon and
#delete-a-coupon (``force=true``; an unknown id answers 404 ``woocommerce_rest_shop_coupon_invalid_id``).
Slack: https://docs.slack.dev/reference/methods/chat.postMessage for the CSM notice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import responses

from connectors.errors import ConnectorError
from connectors.payloads import CsmNotice, Money, StoreCreditDebit
from connectors.shopify import ShopifyConnector
from connectors.slack import SlackConnector
from connectors.woocommerce import WooCommerceConnector, credit_code

SHOPIFY = "https://shopify.test/admin/api/2025-07/graphql.json"
ACCOUNT = "gid://shopify/StoreCreditAccount/316863792"
WOO = "https://woo.test/shop/wp-json/wc/v3"
CREDIT_KEY = "9f3c0e4e-milestone"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def debit(**overrides: Any) -> StoreCreditDebit:
    fields: dict[str, Any] = {
        "idempotency_key": "credit-effect:clawback", "customer_external_id": "544365967",
        "amount": Money(Decimal("10.00"), "USD"), "reason": "25th Order reversed: order 1025 was cancelled",
        "credit_external_id": "gid://shopify/StoreCreditAccountCreditTransaction/1069",
        "credit_idempotency_key": CREDIT_KEY, "account_id": ACCOUNT,
    }
    return StoreCreditDebit(**{**fields, **overrides})


def shopify() -> ShopifyConnector:
    return ShopifyConnector({"shop_domain": "growthcorp.myshopify.com", "access_token": "shpat_test",
                             "api_secret": "s", "base_url": "https://shopify.test"})


def woo() -> WooCommerceConnector:
    return WooCommerceConnector({"store_url": "https://shop.example.com", "consumer_key": "ck_test",
                                 "consumer_secret": "cs_test", "base_url": "https://woo.test/shop"})


DEBITED = {"data": {"storeCreditAccountDebit": {
    "storeCreditAccountTransaction": {
        "id": "gid://shopify/StoreCreditAccountDebitTransaction/1070",
        "amount": {"amount": "-10.0", "currencyCode": "USD"},
        "createdAt": NOW.isoformat(),
        "account": {"id": ACCOUNT, "balance": {"amount": "5.0", "currencyCode": "USD"}},
    },
    "userErrors": [],
}}}


@responses.activate
def test_shopify_debits_the_credits_account_by_the_credits_amount():
    responses.post(SHOPIFY, json=DEBITED)
    result = shopify().debit_store_credit(debit())
    sent = json.loads(responses.calls[0].request.body)
    assert "storeCreditAccountDebit(id: $id, debitInput: $debitInput)" in sent["query"]
    assert sent["variables"] == {"id": ACCOUNT, "debitInput": {"debitAmount": {"amount": "10.00", "currencyCode": "USD"}}}
    assert result.external_id == "gid://shopify/StoreCreditAccountDebitTransaction/1070"
    assert result.detail["balance"] == "5.0"


@responses.activate
def test_shopify_debits_the_customers_account_when_the_credits_account_is_unknown():
    responses.post(SHOPIFY, json=DEBITED)
    shopify().debit_store_credit(debit(account_id=None))
    assert json.loads(responses.calls[0].request.body)["variables"]["id"] == "gid://shopify/Customer/544365967"


@pytest.mark.parametrize(("code", "says"), [
    ("INSUFFICIENT_FUNDS", "the customer has already spent this credit"),
    ("ACCOUNT_NOT_FOUND", "store credit account no longer exists"),
])
@responses.activate
def test_a_refused_shopify_debit_is_permanent_and_says_why(code, says):
    responses.post(SHOPIFY, json={"data": {"storeCreditAccountDebit": {
        "storeCreditAccountTransaction": None,
        "userErrors": [{"field": ["debitInput"], "message": "Refused", "code": code}]}}})
    with pytest.raises(ConnectorError) as raised:
        shopify().debit_store_credit(debit())
    assert raised.value.permanent and says in raised.value.message


def _recent(*transactions: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"customer": {"storeCreditAccounts": {"nodes": [
        {"id": ACCOUNT, "balance": {"amount": "0.0", "currencyCode": "USD"}, "transactions": {"nodes": list(transactions)}},
        {"id": "gid://shopify/StoreCreditAccount/999", "balance": {"amount": "0.0", "currencyCode": "CAD"},
         "transactions": {"nodes": [{"id": "gid://shopify/StoreCreditAccountDebitTransaction/5", "event": "ADJUSTMENT",
                                     "amount": {"amount": "-10.0", "currencyCode": "USD"},
                                     "createdAt": NOW.isoformat()}]}},
    ]}}}}


def _debit_tx(number: int, event: str, at: datetime, amount: str = "-10.0") -> dict[str, Any]:
    return {"id": f"gid://shopify/StoreCreditAccountDebitTransaction/{number}", "event": event,
            "amount": {"amount": amount, "currencyCode": "USD"}, "createdAt": at.isoformat()}


@responses.activate
def test_after_a_crash_shopify_finds_our_adjustment_not_a_checkout_payment():
    responses.post(SHOPIFY, json=_recent(
        _debit_tx(3, "ORDER_PAYMENT", NOW),  # the shopper spent $10 at checkout: not ours
        _debit_tx(2, "ADJUSTMENT", NOW - timedelta(hours=3)),  # before the attempt: not ours
        _debit_tx(1, "ADJUSTMENT", NOW - timedelta(minutes=1)),
    ))
    found = shopify().find_store_credit_debit(debit(), since=NOW - timedelta(minutes=2))
    assert found is not None and found.external_id == "gid://shopify/StoreCreditAccountDebitTransaction/1"
    assert found.detail["reconciled"] is True
    assert "type:debit" in json.loads(responses.calls[0].request.body)["query"]


@responses.activate
def test_after_a_crash_shopify_finds_nothing_when_the_debit_never_happened():
    responses.post(SHOPIFY, json=_recent(_debit_tx(4, "ADJUSTMENT", NOW, amount="-7.5")))
    assert shopify().find_store_credit_debit(debit(), since=NOW - timedelta(minutes=2)) is None


def _coupon(used: int, key: str = CREDIT_KEY) -> dict[str, Any]:
    return {"id": 719, "code": credit_code(CREDIT_KEY).lower(), "amount": "10.00", "discount_type": "fixed_cart",
            "usage_count": used, "usage_limit": 1, "used_by": ["jo@example.com"] if used else [],
            "meta_data": [{"id": 5, "key": "milestones_idempotency_key", "value": key}]}


def woo_debit(**overrides: Any) -> StoreCreditDebit:
    return debit(**{"credit_external_id": "719", "account_id": None, "coupon_code": credit_code(CREDIT_KEY), **overrides})


@responses.activate
def test_woocommerce_deletes_an_unused_credit_coupon_for_good():
    responses.get(f"{WOO}/coupons/719", json=_coupon(used=0))
    responses.delete(f"{WOO}/coupons/719", json=_coupon(used=0))
    result = woo().debit_store_credit(woo_debit())
    assert responses.calls[1].request.url == f"{WOO}/coupons/719?force=true"
    assert result.external_id == "719" and result.detail["voided"] is True


@responses.activate
def test_woocommerce_leaves_a_used_coupon_and_says_it_cannot_be_voided():
    responses.get(f"{WOO}/coupons/719", json=_coupon(used=1))
    with pytest.raises(ConnectorError) as raised:
        woo().debit_store_credit(woo_debit())
    assert raised.value.permanent
    assert raised.value.message == f"woocommerce: coupon {credit_code(CREDIT_KEY)} was already used (1 time): it cannot be voided"
    assert len(responses.calls) == 1  # nothing deleted


@responses.activate
def test_woocommerce_counts_a_coupon_already_gone_as_voided():
    responses.get(f"{WOO}/coupons/719", status=404,
                  json={"code": "woocommerce_rest_shop_coupon_invalid_id", "message": "Invalid ID.", "data": {"status": 404}})
    result = woo().debit_store_credit(woo_debit())
    assert result.detail == {"voided": True, "code": credit_code(CREDIT_KEY), "already_deleted": True}
    assert woo().find_store_credit_debit(woo_debit(), since=NOW) is None  # voiding again is always safe


@responses.activate
def test_woocommerce_never_deletes_a_coupon_that_is_not_the_credits():
    responses.get(f"{WOO}/coupons/719", json=_coupon(used=0, key="someone-else"))
    with pytest.raises(ConnectorError) as raised:
        woo().debit_store_credit(woo_debit())
    assert raised.value.permanent and "not the one issued for this credit" in raised.value.message
    assert len(responses.calls) == 1


@responses.activate
def test_woocommerce_finds_the_coupon_by_its_code_when_its_id_is_unknown():
    code = credit_code(CREDIT_KEY)
    responses.get(f"{WOO}/coupons", json=[_coupon(used=0)])
    responses.delete(f"{WOO}/coupons/719", json=_coupon(used=0))
    woo().debit_store_credit(woo_debit(credit_external_id=None))
    assert responses.calls[0].request.url == f"{WOO}/coupons?code={code}"


def notice() -> CsmNotice:
    return CsmNotice(idempotency_key="m-1:revoked-notice", milestone_id="m-1", customer_name="Alice Nguyen",
                     headline="Milestone revoked: 25th Order", lines=("Why: order 1025 was cancelled", "Now: <9> orders"),
                     owner_email="csm@example.com")


@responses.activate
def test_the_csm_notice_mentions_the_csm_and_carries_no_celebration_buttons():
    slack = SlackConnector({"bot_token": "xoxb-test", "signing_secret": "s", "channel": "C0CSMTEAM",
                            "base_url": "https://slack.test/api"})
    responses.get("https://slack.test/api/users.lookupByEmail", json={"ok": True, "user": {"id": "U0CSM"}})
    responses.post("https://slack.test/api/chat.postMessage", json={"ok": True, "channel": "C0CSMTEAM", "ts": "1.2"})
    result = slack.post_notice(notice())
    sent = json.loads(responses.calls[1].request.body)
    assert sent["channel"] == "C0CSMTEAM"
    assert sent["text"] == "Milestone revoked: 25th Order — Alice Nguyen (CSM: <@U0CSM>)"
    assert [b["type"] for b in sent["blocks"]] == ["section", "section", "section"]
    assert sent["blocks"][2]["text"]["text"] == "- Why: order 1025 was cancelled\n- Now: &lt;9&gt; orders"
    assert sent["metadata"]["event_payload"] == {"milestone_id": "m-1", "idempotency_key": "m-1:revoked-notice"}
    assert result.detail["routed"] == "mention" and result.external_id == "C0CSMTEAM:1.2"
