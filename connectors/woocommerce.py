"""WooCommerce: credit, tags, discount codes and webhook registration through the REST API v3.

Every call is ``{store}/wp-json/wc/v3/<resource>`` with the REST API consumer key and secret as
HTTP Basic credentials, which WooCommerce accepts over HTTPS only (plain HTTP needs OAuth 1.0a,
so a plain-HTTP store is refused here, except on the loopback interface for local stand-ins).
https://woocommerce.github.io/woocommerce-rest-api-docs/#authentication-over-https

WooCommerce has no store credit and no customer tags, so:

* store credit is a single-use ``fixed_cart`` coupon restricted to the shopper's email; its code
  is derived from the effect's idempotency key, so after a crash :meth:`find_store_credit` can
  look it up by code instead of issuing a second one;
* tags are a comma-separated customer meta value (``milestones_tags``), merged, never replaced.

Coupons carry our idempotency key in their ``meta_data``: a code that already exists is only
taken as ours when the key matches, so a colliding code never hands us someone else's coupon.
https://woocommerce.github.io/woocommerce-rest-api-docs/#coupons
https://woocommerce.github.io/woocommerce-rest-api-docs/#customers
https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
from marshmallow import fields

from connectors.base import Capability, Connector, SettingsSchema, as_utc
from connectors.errors import ConnectorError
from connectors.http import excerpt
from connectors.payloads import (
    CustomerTag,
    DiscountCode,
    EffectResult,
    FetchedOrder,
    StoreCredit,
    StoreCreditDebit,
)

API_PATH = "/wp-json/wc/v3"
PAGE_SIZE = 100  # the REST API's maximum per_page
MAX_PAGES = 50
KEY_META = "milestones_idempotency_key"
TAGS_META = "milestones_tags"
WEBHOOK_NAME = "Customer Milestones"
CODE_EXISTS = "woocommerce_rest_coupon_code_already_exists"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def credit_code(idempotency_key: str) -> str:
    """The coupon code of a store credit: stable for one effect, unguessable across effects."""
    return "THANKS-" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:12].upper()


class WooCommerceSettings(SettingsSchema):
    store_url = fields.Url(
        required=True,
        require_tld=False,
        metadata={"label": "Store URL", "help": "The WordPress site address, e.g. https://shop.example.com."},
    )
    consumer_key = fields.String(
        required=True,
        metadata={"label": "Consumer key", "help": "ck_…; a REST API key with Read/Write permission.", "secret": True},
    )
    consumer_secret = fields.String(
        required=True,
        metadata={"label": "Consumer secret", "help": "cs_…; shown once when the key is created.", "secret": True},
    )
    webhook_secret = fields.String(
        required=False,
        load_default=None,
        metadata={"label": "Webhook secret", "help": "Signs webhooks (X-WC-Webhook-Signature).", "secret": True},
    )
    previous_webhook_secret = fields.String(
        required=False,
        load_default=None,
        metadata={
            "label": "Previous webhook secret",
            "help": "Still accepted while a rotated secret rolls out.",
            "secret": True,
        },
    )


def woo_datetime(value: datetime) -> str:
    """A date WooCommerce stores exactly: ISO 8601 with an explicit UTC offset, no fraction.

    Sent as ``date_expires``: the REST API ignores ``date_expires_gmt`` on write (there is no
    setter for it), and an offset-less ``date_expires`` would be read in the site's timezone.
    """
    return as_utc(value).replace(microsecond=0).isoformat()


class WooCommerceConnector(Connector):
    platform: ClassVar[str] = "woocommerce"
    kind: ClassVar[str] = "store"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.CHECK_CONNECTION,
            Capability.REGISTER_WEBHOOKS,
            Capability.APPLY_STORE_CREDIT,
            Capability.DEBIT_STORE_CREDIT,
            Capability.ADD_CUSTOMER_TAG,
            Capability.CREATE_DISCOUNT_CODE,
            Capability.FETCH_ORDERS,
        }
    )
    settings_schema: ClassVar[type[SettingsSchema]] = WooCommerceSettings

    @property
    def base_url(self) -> str:
        return str(self.settings.get("base_url") or self.setting("store_url")).rstrip("/")

    def check_connection(self) -> None:
        """One cheap authenticated read of a resource the credit needs."""
        self.call("GET", "coupons", params={"per_page": 1})

    # --- store credit and discount codes (coupons) ----------------------------------------------

    def apply_store_credit(self, credit: StoreCredit) -> EffectResult:
        if not credit.customer_email:
            raise ConnectorError("woocommerce: a store credit coupon needs the customer's email", permanent=True)
        coupon: dict[str, Any] = {
            "code": credit_code(credit.idempotency_key),
            "discount_type": "fixed_cart",
            "amount": _amount(credit.amount.amount),
            "individual_use": False,
            "usage_limit": 1,
            "usage_limit_per_user": 1,
            "email_restrictions": [credit.customer_email.strip()],
            "description": credit.reason,
            "meta_data": [{"key": KEY_META, "value": credit.idempotency_key}],
        }
        if credit.expires_at is not None:
            coupon["date_expires"] = woo_datetime(credit.expires_at)
        return _coupon_result(self._create_coupon(coupon, credit.idempotency_key), coupon["code"])

    def find_store_credit(self, credit: StoreCredit, since: datetime) -> EffectResult | None:
        code = credit_code(credit.idempotency_key)
        found = self._coupon_by_code(code)
        if found is None or not _is_ours(found, credit.idempotency_key):
            return None
        return _coupon_result(found, code, reconciled=True)

    def debit_store_credit(self, debit: StoreCreditDebit) -> EffectResult:
        """Void the credit's coupon if it was never used: ``GET coupons/<id>``, then ``DELETE
        coupons/<id>?force=true`` (the API cannot trash coupons). A coupon already used cannot be
        taken back: a permanent error says so. A coupon already gone counts as voided — an earlier
        attempt (or the merchant) deleted it — so running this again is harmless.
        https://woocommerce.github.io/woocommerce-rest-api-docs/#retrieve-a-coupon
        https://woocommerce.github.io/woocommerce-rest-api-docs/#delete-a-coupon
        """
        coupon = self._credit_coupon(debit)
        code = debit.coupon_code or credit_code(debit.credit_idempotency_key)
        if coupon is None:
            return EffectResult(external_id=debit.credit_external_id, detail={"voided": True, "code": code,
                                                                              "already_deleted": True})
        if not _is_ours(coupon, debit.credit_idempotency_key):
            raise ConnectorError(f"woocommerce: coupon {coupon['id']} is not the one issued for this credit; "
                                 "it was left alone", permanent=True)
        used = int(coupon.get("usage_count") or 0)
        if used:
            raise ConnectorError(
                f"woocommerce: coupon {code} was already used ({used} time{'s' if used != 1 else ''}): "
                "it cannot be voided", permanent=True)
        deleted = _object(self.call("DELETE", f"coupons/{coupon['id']}", params={"force": "true"}), "coupon")
        return EffectResult(external_id=str(deleted["id"]), detail={"voided": True, "code": code,
                                                                    "amount": deleted.get("amount")})

    def find_store_credit_debit(self, debit: StoreCreditDebit, since: datetime) -> EffectResult | None:
        """Voiding is safe to repeat (a deleted coupon counts as voided): nothing to look for."""
        return None

    def _credit_coupon(self, debit: StoreCreditDebit) -> dict[str, Any] | None:
        """The credit's coupon by its id (by its code when the id is unknown), or None if gone."""
        coupon_id = (debit.credit_external_id or "").strip()
        if not coupon_id.isdigit():
            return self._coupon_by_code(debit.coupon_code or credit_code(debit.credit_idempotency_key))
        try:
            return _object(self.call("GET", f"coupons/{coupon_id}"), "coupon")
        except ConnectorError as exc:
            if exc.status == 404:
                return None
            raise

    def create_discount_code(self, discount: DiscountCode) -> EffectResult:
        if not discount.customer_email:
            raise ConnectorError("woocommerce: a single-customer code needs the customer's email", permanent=True)
        if discount.percentage is not None:
            discount_type, amount = "percent", _amount(discount.percentage)
        elif discount.amount is not None:
            discount_type, amount = "fixed_cart", _amount(discount.amount.amount)
        else:
            raise ConnectorError("woocommerce: a discount code needs a percentage or an amount", permanent=True)
        coupon: dict[str, Any] = {
            "code": discount.code,
            "discount_type": discount_type,
            "amount": amount,
            "individual_use": False,
            "usage_limit": 1,
            "usage_limit_per_user": 1,
            "email_restrictions": [discount.customer_email.strip()],
            "description": discount.title,
            "meta_data": [{"key": KEY_META, "value": discount.idempotency_key}],
        }
        if discount.ends_at is not None:
            coupon["date_expires"] = woo_datetime(discount.ends_at)
        return _coupon_result(self._create_coupon(coupon, discount.idempotency_key), discount.code)

    def find_discount_code(self, discount: DiscountCode, since: datetime) -> EffectResult | None:
        found = self._coupon_by_code(discount.code)
        if found is None or not _is_ours(found, discount.idempotency_key):
            return None
        return _coupon_result(found, discount.code, reconciled=True)

    def _create_coupon(self, coupon: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """``POST /coupons``; a code that already exists is looked up and returned if it is ours."""
        try:
            return _object(self.call("POST", "coupons", json=coupon), "coupon")
        except ConnectorError as exc:
            if exc.status != 400 or CODE_EXISTS not in exc.message:
                raise
        existing = self._coupon_by_code(coupon["code"])
        if existing is None:  # it exists but cannot be read yet (or sits in the trash): try later
            raise ConnectorError(f"woocommerce: coupon {coupon['code']} exists but could not be read back")
        if not _is_ours(existing, idempotency_key):
            raise ConnectorError(
                f"woocommerce: coupon code {coupon['code']} is already used by another coupon", permanent=True
            )
        return existing

    def _coupon_by_code(self, code: str) -> dict[str, Any] | None:
        """``GET /coupons?code=…`` (WooCommerce compares codes case-insensitively)."""
        found = self.call("GET", "coupons", params={"code": code})
        if not isinstance(found, list):
            raise ConnectorError("woocommerce: unexpected answer to a coupon search")
        return next(
            (c for c in found if isinstance(c, dict) and str(c.get("code", "")).casefold() == code.casefold()),
            None,
        )

    # --- customer tags (customer meta) ----------------------------------------------------------

    def add_customer_tag(self, tag: CustomerTag) -> EffectResult:
        """Merge the tags into the customer's ``milestones_tags`` meta; a retry re-adds nothing."""
        customer_id = (tag.customer_external_id or "").strip()
        if not customer_id.isdigit() or customer_id == "0":
            raise ConnectorError(
                "woocommerce: tags need a registered customer; a guest checkout has no customer account",
                permanent=True,
            )
        customer = _object(self.call("GET", f"customers/{customer_id}"), "customer")
        meta = next((m for m in customer.get("meta_data") or [] if m.get("key") == TAGS_META), None)
        existing = _split_tags(meta.get("value") if meta else None)
        known = {t.casefold() for t in existing}
        added = [t for t in dict.fromkeys(tag.tags) if t.casefold() not in known]
        merged = existing + added
        if added:
            entry: dict[str, Any] = {"key": TAGS_META, "value": ", ".join(merged)}
            if meta and meta.get("id") is not None:
                entry["id"] = meta["id"]
            self.call("PUT", f"customers/{customer_id}", json={"meta_data": [entry]})
        return EffectResult(external_id=customer_id, detail={"tags": merged, "added": added})

    # --- webhook registration -------------------------------------------------------------------

    def register_webhooks(self, delivery_url: str, topics: list[str], secret: str | None = None) -> dict[str, str]:
        """Make each topic delivered to ``delivery_url`` with ``secret``, without duplicates.

        A missing webhook is created; an existing one (WooCommerce disables a webhook after 5
        failed deliveries) is set ``active`` and given ``secret`` — its old secret cannot be read
        back, and deliveries signed with it would be refused. Returns per topic ``created``,
        ``reactivated`` (was paused or disabled) or ``active``.
        """
        secret = secret or self.settings.get("webhook_secret")
        if not secret:
            raise ConnectorError("woocommerce: webhooks need a secret to sign deliveries", permanent=True)
        existing = self._webhooks_for(delivery_url)
        outcome: dict[str, str] = {}
        for topic in dict.fromkeys(topics):
            hooks = existing.get(topic) or []
            if not hooks:
                self.call(
                    "POST",
                    "webhooks",
                    json={
                        "name": f"{WEBHOOK_NAME}: {topic}",
                        "topic": topic,
                        "delivery_url": delivery_url,
                        "secret": secret,
                        "status": "active",
                    },
                )
                outcome[topic] = "created"
                continue
            hook = next((h for h in hooks if h.get("status") == "active"), hooks[0])
            self.call("PUT", f"webhooks/{hook['id']}", json={"status": "active", "secret": secret})
            outcome[topic] = "active" if hook.get("status") == "active" else "reactivated"
        return outcome

    def webhook_status(self, delivery_url: str, topics: list[str]) -> dict[str, str]:
        """Per topic delivered to ``delivery_url``: ``active``, ``paused``, ``disabled``, or ``missing``."""
        status = {
            topic: "active" if any(h.get("status") == "active" for h in hooks) else str(hooks[0].get("status"))
            for topic, hooks in self._webhooks_for(delivery_url).items()
        }
        for topic in topics or []:
            status.setdefault(topic, "missing")
        return status

    def _webhooks_for(self, delivery_url: str) -> dict[str, list[dict[str, Any]]]:
        wanted = delivery_url.rstrip("/")
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for hook in self._every("webhooks"):
            if str(hook.get("delivery_url") or "").rstrip("/") == wanted and hook.get("topic"):
                by_topic.setdefault(str(hook["topic"]), []).append(hook)
        return by_topic

    def changed_orders(self, since: datetime) -> list[FetchedOrder]:
        """Orders modified after ``since``, as the REST API returns them — the same JSON as an
        ``order.updated`` webhook (https://woocommerce.github.io/woocommerce-rest-api-docs/
        #list-all-orders: ``modified_after``, ``dates_are_gmt``)."""
        after = as_utc(since).strftime("%Y-%m-%dT%H:%M:%S")
        orders = self._every("orders", {"modified_after": after, "dates_are_gmt": "true", "orderby": "modified",
                                        "order": "asc"})
        return [
            FetchedOrder(str(o["id"]), str(o.get("date_modified_gmt") or ""), "order.updated", o)
            for o in orders
            if o.get("id") is not None
        ]

    def _every(self, resource: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """All pages of a collection (``page``/``per_page``, ``X-WP-TotalPages``)."""
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            response = self.send("GET", resource, params={**(params or {}), "per_page": PAGE_SIZE, "page": page})
            batch = _json_of(response, resource)
            if not isinstance(batch, list):
                raise ConnectorError(f"woocommerce: unexpected answer listing {resource}")
            items.extend(b for b in batch if isinstance(b, dict))
            total_pages = response.headers.get("X-WP-TotalPages")
            last = int(total_pages) if total_pages and total_pages.isdigit() else None
            if len(batch) < PAGE_SIZE or (last is not None and page >= last):
                break
        return items

    # --- HTTP -------------------------------------------------------------------------------------

    def call(self, method: str, resource: str, **kwargs: Any) -> Any:
        """The JSON answer of one REST call, or a ConnectorError."""
        return _json_of(self.send(method, resource, **kwargs), resource)

    def send(self, method: str, resource: str, **kwargs: Any) -> requests.Response:
        url = f"{self.base_url}{API_PATH}/{resource}"
        parts = urlsplit(url)
        if parts.scheme != "https" and (parts.hostname or "") not in LOOPBACK_HOSTS:
            raise ConnectorError(
                f"woocommerce: {self.base_url} is not HTTPS; API keys are only sent over HTTPS", permanent=True
            )
        auth = (str(self.setting("consumer_key")), str(self.setting("consumer_secret")))
        try:
            return self.http.request(method, url, auth=auth, headers={"Accept": "application/json"}, **kwargs)
        except ConnectorError as exc:
            if exc.status in (401, 403):
                raise ConnectorError(
                    f"woocommerce refused the API key (it needs Read/Write permission): {exc.message}",
                    permanent=True,
                    status=exc.status,
                ) from exc
            raise


def _json_of(response: requests.Response, resource: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ConnectorError(f"woocommerce: {resource}: answer is not JSON: {excerpt(response.text)}") from exc


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get("id") is None:
        raise ConnectorError(f"woocommerce: unexpected answer for a {what}")
    return value


def _amount(value: Decimal) -> str:
    """Amounts travel as strings ("10.00"), never floats."""
    return format(value, "f")


def _meta(resource: Mapping[str, Any], key: str) -> Any:
    return next((m.get("value") for m in resource.get("meta_data") or [] if m.get("key") == key), None)


def _is_ours(coupon: Mapping[str, Any], idempotency_key: str) -> bool:
    return _meta(coupon, KEY_META) == idempotency_key


def _coupon_result(coupon: Mapping[str, Any], code: str, *, reconciled: bool = False) -> EffectResult:
    detail: dict[str, Any] = {
        "code": code,
        "amount": coupon.get("amount"),
        "discount_type": coupon.get("discount_type"),
        "email_restrictions": coupon.get("email_restrictions"),
        "date_expires_gmt": coupon.get("date_expires_gmt"),
    }
    if reconciled:
        detail["reconciled"] = True
    return EffectResult(external_id=str(coupon["id"]), detail=detail)


def _split_tags(value: Any) -> list[str]:
    raw = value if isinstance(value, list) else str(value or "").split(",")
    return list(dict.fromkeys(t.strip() for t in raw if isinstance(t, str) and t.strip()))
