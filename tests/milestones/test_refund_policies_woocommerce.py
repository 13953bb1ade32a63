"""Claw back on WooCommerce: the credit is a single-use coupon, voided only if it was never used.

WooCommerce deliveries go through the real endpoint (REST v3 order resources); the store's API is
faked with its documented shapes: create, retrieve and delete a coupon
(https://woocommerce.github.io/woocommerce-rest-api-docs/#coupons — ``usage_count``, and
``DELETE /coupons/<id>?force=true`` since coupons cannot be trashed through the API).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from connectors.woocommerce import credit_code
from tests.conftest import add_connection
from tests.milestones.refund_support import SLACK_POST, define, milestone, one, placed_at, release_at
from tests.pipeline.test_woocommerce_flow import ALICE, SECRET, STORE_API, post, woo_order

COUPON_ID = 719


@pytest.fixture
def store(app: Any, workspace: Any) -> Any:
    return add_connection(app, workspace.id, "woocommerce", {
        "store_url": "https://red-hill-fresh.example", "consumer_key": "ck_test", "consumer_secret": "cs_test",
        "webhook_secret": SECRET, "base_url": "https://woo.test"})


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(f"{STORE_API}/coupons", status=201, json=_coupon("placeholder", "credit-key", used=0))
        mock.post(SLACK_POST, json={"ok": True, "channel": "C0CSM01", "ts": "1700000000.000100"})
        yield mock


def _coupon(code: str, key: str, *, used: int) -> dict[str, Any]:
    return {
        "id": COUPON_ID, "code": code, "amount": "10.00", "discount_type": "fixed_cart", "usage_count": used,
        "usage_limit": 1, "usage_limit_per_user": 1, "individual_use": False, "email_restrictions": [ALICE],
        "used_by": [ALICE] if used else [], "date_expires": None, "date_expires_gmt": None,
        "meta_data": [{"id": 1201, "key": "milestones_idempotency_key", "value": key}],
    }


def _reach_the_third_order(client: Any, store: Any, app: Any, api: responses.RequestsMock, *, used: int) -> str:
    """Three paid orders; the credit coupon as the store will report it. Returns its code."""
    for number in (1, 2, 3):
        assert post(client, store.id, woo_order(number, "processing", total="40.00")).status_code == 200
    key = one(app, "store_credit").payload["request"]["idempotency_key"]
    code = credit_code(key)
    api.get(f"{STORE_API}/coupons/{COUPON_ID}", json=_coupon(code, key, used=used))
    api.delete(f"{STORE_API}/coupons/{COUPON_ID}", json=_coupon(code, key, used=used))
    return code


def _calls(api: responses.RequestsMock, method: str) -> list[Any]:
    return [c for c in api.calls if c.request.method == method and f"/coupons/{COUPON_ID}" in c.request.url]


def test_an_unused_credit_coupon_is_voided(app, client, store, slack, workspace, api):
    define(app, workspace, policy="claw_back")
    code = _reach_the_third_order(client, store, app, api, used=0)
    assert post(client, store.id, woo_order(3, "cancelled", total="40.00", modified=30)).status_code == 200
    (deleted,) = _calls(api, "DELETE")
    assert deleted.request.url == f"{STORE_API}/coupons/{COUPON_ID}?force=true"
    debit = one(app, "store_credit_debit")
    assert debit.status == "succeeded" and debit.payload["result"] == {"voided": True, "code": code, "amount": "10.00"}
    assert release_at(app, placed_at(3)) == 0
    assert one(app, "csm_notice").status == "cancelled"  # everything was taken back: no message


def test_a_used_credit_coupon_is_left_alone_and_the_csm_is_told(app, client, store, slack, workspace, api):
    define(app, workspace, policy="claw_back")
    code = _reach_the_third_order(client, store, app, api, used=1)
    refunds = [{"id": 81, "reason": "never arrived", "total": "-40.00"}]
    assert post(client, store.id, woo_order(3, "refunded", total="40.00", modified=30, refunds=refunds)).status_code == 200
    assert _calls(api, "GET") and not _calls(api, "DELETE")
    debit = one(app, "store_credit_debit")
    assert debit.status == "dead"
    assert debit.last_error == f"woocommerce: coupon {code} was already used (1 time): it cannot be voided"
    assert release_at(app, placed_at(3)) == 1
    notice = json.loads([c for c in api.calls if c.request.url == SLACK_POST][-1].request.body)
    assert notice["text"].startswith("Store credit not taken back: 3rd Order")
    assert f"Not taken back: $10 store credit (coupon {code}) — woocommerce: coupon {code} was already used" in str(
        notice["blocks"])
    assert "Why: order 5003 was cancelled and refunded in full" in str(notice["blocks"])  # status refunded
    assert milestone(app).reversed_at is not None
