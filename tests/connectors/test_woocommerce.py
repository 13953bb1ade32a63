"""WooCommerce through the REST API v3, faked with the docs' own request and answer shapes.

https://woocommerce.github.io/woocommerce-rest-api-docs/#create-a-coupon (and list, ?code=)
https://woocommerce.github.io/woocommerce-rest-api-docs/#retrieve-a-customer / #update-a-customer
https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks (create, list, update)
https://woocommerce.github.io/woocommerce-rest-api-docs/#authentication-over-https (Basic auth)
https://woocommerce.github.io/woocommerce-rest-api-docs/#errors ({"code", "message", "data"})
https://woocommerce.github.io/woocommerce-rest-api-docs/#pagination (X-WP-TotalPages)
Error codes are the ones the REST controllers return: woocommerce_rest_cannot_view /
woocommerce_rest_cannot_create (401), woocommerce_rest_authentication_error (401),
woocommerce_rest_invalid_id (404), woocommerce_rest_coupon_code_already_exists (400).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import responses
from responses import matchers

from connectors.errors import ConnectorError
from connectors.payloads import CustomerTag, DiscountCode, Money, StoreCredit
from connectors.registry import connector_class
from connectors.woocommerce import WooCommerceConnector, WooCommerceSettings, credit_code

BASE = "https://woo.test/shop"
API = f"{BASE}/wp-json/wc/v3"
KEY = "effect-25-credit"
CODE = credit_code(KEY)
EMAIL = "john.doe@example.com"
DELIVERY_URL = "https://milestones.example.com/webhooks/woocommerce/5b0c6f0e-0000-4000-8000-000000000001"


def connector(**settings: Any) -> WooCommerceConnector:
    return WooCommerceConnector(
        {
            "store_url": "https://shop.example.com",
            "consumer_key": "ck_test_key",
            "consumer_secret": "cs_test_secret",
            "webhook_secret": "whk-secret",
            "base_url": BASE,
            **settings,
        }
    )


def credit(**overrides: Any) -> StoreCredit:
    fields: dict[str, Any] = {
        "idempotency_key": KEY,
        "customer_external_id": "25",
        "amount": Money(Decimal("10.00"), "USD"),
        "reason": "25th Order (25)",
        "customer_email": EMAIL,
    }
    return StoreCredit(**{**fields, **overrides})


def sent(call: Any) -> Any:
    return json.loads(call.request.body)


def error(code: str, message: str, status: int, **data: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"status": status, **data}}


# The "Create a coupon" JSON response example, as WooCommerce answers our credit coupon.
COUPON: dict[str, Any] = {
    "id": 719,
    "code": CODE.lower(),  # WooCommerce stores coupon codes lowercased
    "amount": "10.00",
    "date_created": "2017-03-21T15:23:00",
    "date_created_gmt": "2017-03-21T18:23:00",
    "date_modified": "2017-03-21T15:23:00",
    "date_modified_gmt": "2017-03-21T18:23:00",
    "discount_type": "fixed_cart",
    "description": "25th Order (25)",
    "date_expires": None,
    "date_expires_gmt": None,
    "usage_count": 0,
    "individual_use": False,
    "product_ids": [],
    "excluded_product_ids": [],
    "usage_limit": 1,
    "usage_limit_per_user": 1,
    "limit_usage_to_x_items": None,
    "free_shipping": False,
    "product_categories": [],
    "excluded_product_categories": [],
    "exclude_sale_items": False,
    "minimum_amount": "0.00",
    "maximum_amount": "0.00",
    "email_restrictions": [EMAIL],
    "used_by": [],
    "meta_data": [{"id": 4410, "key": "milestones_idempotency_key", "value": KEY}],
    "_links": {
        "self": [{"href": "https://example.com/wp-json/wc/v3/coupons/719"}],
        "collection": [{"href": "https://example.com/wp-json/wc/v3/coupons"}],
    },
}

# The "Retrieve a customer" JSON response example (shipping and _links trimmed).
CUSTOMER: dict[str, Any] = {
    "id": 25,
    "date_created": "2017-03-21T16:09:28",
    "date_created_gmt": "2017-03-21T19:09:28",
    "date_modified": "2017-03-21T16:09:30",
    "date_modified_gmt": "2017-03-21T19:09:30",
    "email": EMAIL,
    "first_name": "John",
    "last_name": "Doe",
    "role": "customer",
    "username": "john.doe",
    "billing": {"first_name": "John", "last_name": "Doe", "email": EMAIL},
    "is_paying_customer": False,
    "avatar_url": "https://secure.gravatar.com/avatar/8eb1b522f60d11fa897de1dc6351b7e8?s=96",
    "meta_data": [],
}


def webhook(id: int, topic: str, status: str = "active", delivery_url: str = DELIVERY_URL) -> dict[str, Any]:
    """One item of the "List all webhooks" JSON response example."""
    resource, event = topic.split(".")
    return {
        "id": id,
        "name": f"Customer Milestones: {topic}",
        "status": status,
        "topic": topic,
        "resource": resource,
        "event": event,
        "hooks": [],
        "delivery_url": delivery_url,
        "date_created": "2016-05-15T23:17:52",
        "date_created_gmt": "2016-05-15T20:17:52",
        "date_modified": "2016-05-15T23:17:52",
        "date_modified_gmt": "2016-05-15T20:17:52",
        "_links": {"self": [{"href": f"https://example.com/wp-json/wc/v3/webhooks/{id}"}]},
    }


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


# --- store credit ------------------------------------------------------------------------------


def test_credit_is_a_single_use_fixed_cart_coupon_for_the_customers_email(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{API}/coupons", json=COUPON, status=201)

    result = connector().apply_store_credit(credit())

    assert sent(mocked.calls[0]) == {
        "code": CODE,
        "discount_type": "fixed_cart",
        "amount": "10.00",
        "individual_use": False,
        "usage_limit": 1,
        "usage_limit_per_user": 1,
        "email_restrictions": [EMAIL],
        "description": "25th Order (25)",
        "meta_data": [{"key": "milestones_idempotency_key", "value": KEY}],
    }
    expected_auth = "Basic " + base64.b64encode(b"ck_test_key:cs_test_secret").decode()
    assert mocked.calls[0].request.headers["Authorization"] == expected_auth
    assert result.external_id == "719"
    assert result.detail["code"] == CODE
    assert result.detail["amount"] == "10.00"


def test_the_credit_code_is_stable_per_effect_and_differs_between_effects() -> None:
    assert credit_code(KEY) == credit_code(KEY)
    assert credit_code(KEY) != credit_code("effect-26-credit")
    assert CODE.startswith("THANKS-") and len(CODE) == len("THANKS-") + 12


def test_credit_sends_its_expiry_with_an_explicit_utc_offset(mocked: responses.RequestsMock) -> None:
    # date_expires_gmt has no setter on write; an offset-less date_expires is read in site time.
    mocked.post(f"{API}/coupons", json={**COUPON, "date_expires_gmt": "2027-01-01T00:00:00"}, status=201)
    paris = timezone(timedelta(hours=1))

    connector().apply_store_credit(credit(expires_at=datetime(2027, 1, 1, 1, 0, 0, 123456, tzinfo=paris)))

    assert sent(mocked.calls[0])["date_expires"] == "2027-01-01T00:00:00+00:00"


def test_credit_without_an_email_is_refused_before_any_call(mocked: responses.RequestsMock) -> None:
    with pytest.raises(ConnectorError) as raised:
        connector().apply_store_credit(credit(customer_email=None))
    assert raised.value.permanent and "email" in raised.value.message
    assert len(mocked.calls) == 0


def test_a_code_that_already_exists_and_is_ours_is_returned(mocked: responses.RequestsMock) -> None:
    # A retry after the first POST went through but its answer was lost.
    mocked.post(
        f"{API}/coupons",
        json=error("woocommerce_rest_coupon_code_already_exists", "The coupon code already exists", 400),
        status=400,
    )
    mocked.get(f"{API}/coupons", match=[matchers.query_param_matcher({"code": CODE})], json=[COUPON])

    result = connector().apply_store_credit(credit())

    assert result.external_id == "719" and result.detail["code"] == CODE
    assert [c.request.method for c in mocked.calls] == ["POST", "GET"]


def test_a_code_that_belongs_to_another_coupon_is_a_permanent_error(mocked: responses.RequestsMock) -> None:
    mocked.post(
        f"{API}/coupons",
        json=error("woocommerce_rest_coupon_code_already_exists", "The coupon code already exists", 400),
        status=400,
    )
    theirs = {**COUPON, "id": 720, "meta_data": []}
    mocked.get(f"{API}/coupons", json=[theirs])

    with pytest.raises(ConnectorError) as raised:
        connector().apply_store_credit(credit())
    assert raised.value.permanent and "another coupon" in raised.value.message


def test_other_validation_errors_are_permanent(mocked: responses.RequestsMock) -> None:
    mocked.post(
        f"{API}/coupons",
        json=error(
            "rest_invalid_param",
            "Invalid parameter(s): discount_type",
            400,
            params={"discount_type": "discount_type is not one of percent, fixed_cart, and fixed_product."},
        ),
        status=400,
    )
    with pytest.raises(ConnectorError) as raised:
        connector().apply_store_credit(credit())
    assert raised.value.permanent and raised.value.status == 400
    assert len(mocked.calls) == 1  # no lookup: it was not a duplicate code


def test_reconcile_finds_the_coupon_a_crashed_attempt_created(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/coupons", match=[matchers.query_param_matcher({"code": CODE})], json=[COUPON])

    found = connector().find_store_credit(credit(), since=datetime(2026, 11, 21, tzinfo=UTC))

    assert found is not None and found.external_id == "719"
    assert found.detail["reconciled"] is True


@pytest.mark.parametrize("answer", [[], [{**COUPON, "meta_data": [{"key": "milestones_idempotency_key", "value": "x"}]}]])
def test_reconcile_finds_nothing_when_no_coupon_of_ours_has_the_code(
    mocked: responses.RequestsMock, answer: list[dict[str, Any]]
) -> None:
    mocked.get(f"{API}/coupons", json=answer)
    assert connector().find_store_credit(credit(), since=datetime(2026, 11, 21, tzinfo=UTC)) is None


# --- HTTP errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, error("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources.", 401)),
        (401, error("woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401)),
        (404, error("rest_no_route", "No route was found matching the URL and request method", 404)),
    ],
)
def test_auth_and_not_found_errors_are_permanent(
    mocked: responses.RequestsMock, status: int, body: dict[str, Any]
) -> None:
    mocked.post(f"{API}/coupons", json=body, status=status)
    with pytest.raises(ConnectorError) as raised:
        connector().apply_store_credit(credit())
    assert raised.value.permanent and raised.value.status == status
    assert body["code"] in raised.value.message


def test_429_is_transient_with_retry_after(mocked: responses.RequestsMock) -> None:
    mocked.post(
        f"{API}/coupons",
        json=error("too_many_requests", "Too many requests.", 429),
        status=429,
        headers={"Retry-After": "30"},
    )
    with pytest.raises(ConnectorError) as raised:
        connector().apply_store_credit(credit())
    assert not raised.value.permanent and raised.value.retry_after == 30.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(mocked: responses.RequestsMock, status: int) -> None:
    mocked.post(f"{API}/coupons", json=error("internal_server_error", "There has been a critical error.", status), status=status)
    with pytest.raises(ConnectorError) as raised:
        connector().apply_store_credit(credit())
    assert not raised.value.permanent


def test_an_answer_that_is_not_json_is_transient(mocked: responses.RequestsMock) -> None:
    # WordPress without pretty permalinks answers its HTML home page for /wp-json/...
    mocked.post(f"{API}/coupons", body="<html>Just another WordPress site</html>", status=200)
    with pytest.raises(ConnectorError) as raised:
        connector().apply_store_credit(credit())
    assert not raised.value.permanent and "not JSON" in raised.value.message


def test_api_keys_are_never_sent_over_plain_http(mocked: responses.RequestsMock) -> None:
    with pytest.raises(ConnectorError) as raised:
        connector(base_url="http://shop.example.com").apply_store_credit(credit())
    assert raised.value.permanent and "HTTPS" in raised.value.message
    assert len(mocked.calls) == 0


def test_a_loopback_stand_in_may_use_plain_http(mocked: responses.RequestsMock) -> None:
    mocked.post("http://127.0.0.1:8765/wp-json/wc/v3/coupons", json=COUPON, status=201)
    assert connector(base_url="http://127.0.0.1:8765").apply_store_credit(credit()).external_id == "719"


def test_the_store_url_is_the_default_host(mocked: responses.RequestsMock) -> None:
    mocked.post("https://shop.example.com/wp-json/wc/v3/coupons", json=COUPON, status=201)
    settings = {"store_url": "https://shop.example.com/", "consumer_key": "ck", "consumer_secret": "cs"}
    assert WooCommerceConnector(settings).apply_store_credit(credit()).external_id == "719"


# --- customer tags -----------------------------------------------------------------------------


def test_tags_are_added_to_the_customers_meta(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/customers/25", json=CUSTOMER)
    updated = {**CUSTOMER, "meta_data": [{"id": 990, "key": "milestones_tags", "value": "VIP"}]}
    mocked.put(f"{API}/customers/25", json=updated)

    result = connector().add_customer_tag(CustomerTag(KEY, "25", EMAIL, ("VIP",)))

    assert sent(mocked.calls[1]) == {"meta_data": [{"key": "milestones_tags", "value": "VIP"}]}
    assert result.external_id == "25" and result.detail == {"tags": ["VIP"], "added": ["VIP"]}


def test_tags_merge_with_the_ones_the_customer_has(mocked: responses.RequestsMock) -> None:
    customer = copy.deepcopy(CUSTOMER)
    customer["meta_data"] = [{"id": 990, "key": "milestones_tags", "value": "VIP, Loyalty Tier 2"}]
    mocked.get(f"{API}/customers/25", json=customer)
    mocked.put(f"{API}/customers/25", json=customer)

    result = connector().add_customer_tag(CustomerTag(KEY, "25", EMAIL, ("loyalty tier 2", "Anniversary")))

    assert sent(mocked.calls[1]) == {
        "meta_data": [{"id": 990, "key": "milestones_tags", "value": "VIP, Loyalty Tier 2, Anniversary"}]
    }
    assert result.detail["added"] == ["Anniversary"]


def test_tags_the_customer_already_has_change_nothing(mocked: responses.RequestsMock) -> None:
    customer = copy.deepcopy(CUSTOMER)
    customer["meta_data"] = [{"id": 990, "key": "milestones_tags", "value": "VIP"}]
    mocked.get(f"{API}/customers/25", json=customer)

    result = connector().add_customer_tag(CustomerTag(KEY, "25", EMAIL, ("VIP",)))

    assert [c.request.method for c in mocked.calls] == ["GET"]
    assert result.detail == {"tags": ["VIP"], "added": []}


@pytest.mark.parametrize("customer_id", ["", "0", "guest@example.com"])
def test_a_guest_cannot_be_tagged(mocked: responses.RequestsMock, customer_id: str) -> None:
    with pytest.raises(ConnectorError) as raised:
        connector().add_customer_tag(CustomerTag(KEY, customer_id, EMAIL, ("VIP",)))
    assert raised.value.permanent and "registered customer" in raised.value.message
    assert len(mocked.calls) == 0


def test_an_unknown_customer_is_permanent(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/customers/404", json=error("woocommerce_rest_invalid_id", "Invalid resource ID.", 404), status=404)
    with pytest.raises(ConnectorError) as raised:
        connector().add_customer_tag(CustomerTag(KEY, "404", EMAIL, ("VIP",)))
    assert raised.value.permanent and raised.value.status == 404


# --- discount codes ----------------------------------------------------------------------------


def discount(**overrides: Any) -> DiscountCode:
    fields: dict[str, Any] = {
        "idempotency_key": "milestone-1y",
        "customer_external_id": "25",
        "customer_email": EMAIL,
        "code": "YEAR1-3FA2C1",
        "title": "1 Year Anniversary — thank you",
        "starts_at": datetime(2026, 11, 21, 9, 0, tzinfo=UTC),
        "ends_at": datetime(2026, 11, 28, 9, 0, tzinfo=UTC),
        "percentage": Decimal("20"),
    }
    return DiscountCode(**{**fields, **overrides})


def test_a_percentage_code_is_a_percent_coupon_for_the_customer_until_it_ends(mocked: responses.RequestsMock) -> None:
    answer = {**COUPON, "id": 721, "code": "year1-3fa2c1", "discount_type": "percent", "amount": "20.00",
              "meta_data": [{"id": 1, "key": "milestones_idempotency_key", "value": "milestone-1y"}]}
    mocked.post(f"{API}/coupons", json=answer, status=201)

    result = connector().create_discount_code(discount())

    assert sent(mocked.calls[0]) == {
        "code": "YEAR1-3FA2C1",
        "discount_type": "percent",
        "amount": "20",
        "individual_use": False,
        "usage_limit": 1,
        "usage_limit_per_user": 1,
        "email_restrictions": [EMAIL],
        "description": "1 Year Anniversary — thank you",
        "meta_data": [{"key": "milestones_idempotency_key", "value": "milestone-1y"}],
        "date_expires": "2026-11-28T09:00:00+00:00",
    }
    assert result.external_id == "721" and result.detail["code"] == "YEAR1-3FA2C1"


def test_an_amount_code_is_a_fixed_cart_coupon(mocked: responses.RequestsMock) -> None:
    mocked.post(f"{API}/coupons", json={**COUPON, "id": 722}, status=201)
    connector().create_discount_code(discount(percentage=None, amount=Money(Decimal("5.00"), "USD"), ends_at=None))
    body = sent(mocked.calls[0])
    assert (body["discount_type"], body["amount"]) == ("fixed_cart", "5.00")
    assert "date_expires" not in body


def test_reconcile_finds_the_discount_code_by_code(mocked: responses.RequestsMock) -> None:
    ours = {**COUPON, "id": 721, "code": "year1-3fa2c1",
            "meta_data": [{"id": 1, "key": "milestones_idempotency_key", "value": "milestone-1y"}]}
    mocked.get(f"{API}/coupons", match=[matchers.query_param_matcher({"code": "YEAR1-3FA2C1"})], json=[ours])
    found = connector().find_discount_code(discount(), since=datetime(2026, 11, 21, tzinfo=UTC))
    assert found is not None and found.external_id == "721"


# --- webhook registration ----------------------------------------------------------------------

TOPICS = ["order.created", "order.updated", "order.deleted", "customer.updated"]


def test_registration_creates_missing_reactivates_disabled_and_never_duplicates(
    mocked: responses.RequestsMock,
) -> None:
    first_page = [webhook(142, "order.updated"), webhook(143, "order.created", status="disabled")]
    first_page += [webhook(200 + i, "product.updated", delivery_url="https://elsewhere.test/hook") for i in range(98)]
    mocked.get(f"{API}/webhooks", match=[matchers.query_param_matcher({"per_page": "100", "page": "1"})],
               json=first_page, headers={"X-WP-Total": "101", "X-WP-TotalPages": "2"})
    mocked.get(f"{API}/webhooks", match=[matchers.query_param_matcher({"per_page": "100", "page": "2"})],
               json=[webhook(144, "order.deleted", status="paused")], headers={"X-WP-Total": "101", "X-WP-TotalPages": "2"})
    for hook_id in (142, 143, 144):
        mocked.put(f"{API}/webhooks/{hook_id}", json=webhook(hook_id, "order.updated"))
    mocked.post(f"{API}/webhooks", json=webhook(145, "customer.updated"), status=201)

    outcome = connector().register_webhooks(DELIVERY_URL, TOPICS, "new-secret")

    assert outcome == {
        "order.created": "reactivated",
        "order.updated": "active",
        "order.deleted": "reactivated",
        "customer.updated": "created",
    }
    puts = {c.request.url.rsplit("/", 1)[1]: sent(c) for c in mocked.calls if c.request.method == "PUT"}
    assert puts == {k: {"status": "active", "secret": "new-secret"} for k in ("142", "143", "144")}
    [post] = [c for c in mocked.calls if c.request.method == "POST"]
    assert sent(post) == {
        "name": "Customer Milestones: customer.updated",
        "topic": "customer.updated",
        "delivery_url": DELIVERY_URL,
        "secret": "new-secret",
        "status": "active",
    }


def test_registration_without_a_secret_is_refused(mocked: responses.RequestsMock) -> None:
    with pytest.raises(ConnectorError) as raised:
        connector(webhook_secret=None).register_webhooks(DELIVERY_URL, TOPICS)
    assert raised.value.permanent and len(mocked.calls) == 0


def test_webhook_status_reports_each_topic_for_our_address(mocked: responses.RequestsMock) -> None:
    mocked.get(
        f"{API}/webhooks",
        json=[
            webhook(142, "order.updated"),
            webhook(143, "order.created", status="disabled"),
            webhook(146, "order.created", status="active", delivery_url="https://elsewhere.test/hook"),
        ],
        headers={"X-WP-TotalPages": "1"},
    )
    assert connector().webhook_status(DELIVERY_URL, TOPICS) == {
        "order.updated": "active",
        "order.created": "disabled",
        "order.deleted": "missing",
        "customer.updated": "missing",
    }


def test_listing_webhooks_without_permission_is_permanent(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/webhooks", json=error("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.", 401),
               status=401)
    with pytest.raises(ConnectorError) as raised:
        connector().webhook_status(DELIVERY_URL, TOPICS)
    assert raised.value.permanent and "Read/Write" in raised.value.message


# --- connection and settings -------------------------------------------------------------------


def test_check_connection_makes_one_cheap_authenticated_read(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/coupons", match=[matchers.query_param_matcher({"per_page": "1"})], json=[COUPON])
    connector().check_connection()
    assert len(mocked.calls) == 1 and mocked.calls[0].request.headers["Authorization"].startswith("Basic ")


def test_check_connection_with_bad_keys_is_permanent(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/coupons", json=error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401),
               status=401)
    with pytest.raises(ConnectorError) as raised:
        connector().check_connection()
    assert raised.value.permanent


def test_settings_mark_keys_and_webhook_secrets_secret() -> None:
    assert WooCommerceSettings.secret_fields() == {
        "consumer_key",
        "consumer_secret",
        "webhook_secret",
        "previous_webhook_secret",
    }
    loaded = WooCommerceSettings().load(
        {"store_url": "https://shop.example.com", "consumer_key": "ck", "consumer_secret": "cs"}
    )
    assert loaded["webhook_secret"] is None and loaded["previous_webhook_secret"] is None


def test_settings_need_a_store_url() -> None:
    from marshmallow import ValidationError

    with pytest.raises(ValidationError) as raised:
        WooCommerceSettings().load({"store_url": "not a url", "consumer_key": "ck", "consumer_secret": "cs"})
    assert "store_url" in raised.value.messages


def test_the_connector_is_registered_for_its_platform() -> None:
    assert connector_class("woocommerce") is WooCommerceConnector
