"""Shopify: store credit on the shopper's account, through the Admin GraphQL API.

Every call is one ``POST {base}/admin/api/{version}/graphql.json``. GraphQL answers 200 even when
it fails, so besides the HTTP errors :class:`~connectors.http.HttpClient` already raises we read
two more layers: top-level ``errors`` (``THROTTLED`` is transient, with a wait computed from the
query-cost bucket; most others are permanent) and a mutation's ``userErrors`` (always permanent:
the input was refused and will be refused again).

Shopify has no idempotency key for ``storeCreditAccountCredit``, so a worker that died mid-call
may or may not have credited the shopper. :meth:`ShopifyConnector.find_store_credit` looks for
the credit in the account's recent transactions before anyone tries again.

Customer tags and discount codes (:mod:`connectors.shopify_discounts`) and webhook registration
(:mod:`connectors.shopify_webhooks`) keep their GraphQL documents in modules of their own.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, ClassVar

from marshmallow import fields, validate

from connectors import shopify_debits as debits
from connectors import shopify_discounts as discounts
from connectors import shopify_orders
from connectors import shopify_store_credit as store_credit
from connectors import shopify_webhooks as subscriptions
from connectors.base import Capability, Connector, SettingsSchema, as_utc
from connectors.errors import ConnectorError
from connectors.payloads import (
    CustomerTag,
    DiscountCode,
    EffectResult,
    FetchedOrder,
    StoreCredit,
    StoreCreditDebit,
)

DEFAULT_API_VERSION = "2025-07"
# ``StoreCreditAccountCreditInput.notify`` exists from 2026-01 on; an older version rejects the
# whole mutation if it is sent. https://shopify.dev/changelog/store-credit-notify-flag
NOTIFY_SINCE_VERSION = "2026-01"
# Top-level GraphQL error codes worth trying again; anything else (ACCESS_DENIED, SHOP_INACTIVE,
# MAX_COST_EXCEEDED, a malformed query) fails the same way next time.
TRANSIENT_CODES = frozenset({"THROTTLED", "INTERNAL_SERVER_ERROR", "TIMEOUT"})

# https://shopify.dev/docs/api/admin-graphql/2025-07/queries/shop
SHOP_QUERY = "query shopName { shop { name } }"

# https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/storeCreditAccountCredit
# https://shopify.dev/docs/api/admin-graphql/2025-07/objects/StoreCreditAccountCreditTransaction
CREDIT_MUTATION = f"""
mutation storeCreditAccountCredit($id: ID!, $creditInput: StoreCreditAccountCreditInput!) {{
  storeCreditAccountCredit(id: $id, creditInput: $creditInput) {{
{store_credit.TRANSACTION_SELECTION}
  }}
}}
"""

# https://shopify.dev/docs/api/admin-graphql/2025-07/connections/StoreCreditAccountConnection
# https://shopify.dev/docs/api/admin-graphql/latest/objects/StoreCreditAccount (transactions:
# sortKey CREATED_AT, reverse, query "type:credit"). Transactions are an interface; only the
# credit transaction type carries an ``id``.
RECENT_CREDITS_QUERY = store_credit.recent_transactions_query("recentStoreCredits", "credit")


class ShopifySettings(SettingsSchema):
    shop_domain = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9.-]*$", error="A host name such as my-store.myshopify.com."),
        metadata={"label": "Shop domain", "help": "The store's myshopify.com domain, e.g. my-store.myshopify.com."},
    )
    access_token = fields.String(
        required=True,
        metadata={"label": "Admin API access token", "help": "shpat_…; needs the scopes plugin.json lists for Shopify.", "secret": True},
    )
    api_secret = fields.String(
        required=True,
        metadata={"label": "API secret key", "help": "Signs webhooks (X-Shopify-Hmac-Sha256).", "secret": True},
    )
    previous_api_secret = fields.String(
        required=False,
        load_default=None,
        metadata={"label": "Previous API secret key", "help": "Still accepted while a rotated secret rolls out.", "secret": True},
    )
    api_version = fields.String(
        load_default=DEFAULT_API_VERSION,
        validate=validate.Regexp(r"^(\d{4}-\d{2}|unstable)$", error="A version such as 2025-07."),
        metadata={"label": "Admin API version", "help": "Quarterly version, YYYY-MM."},
    )


def customer_gid(external_id: str) -> str:
    """Shopify's global id for a customer; an id that already is one passes through."""
    return external_id if external_id.startswith("gid://") else f"gid://shopify/Customer/{external_id}"


class ShopifyConnector(Connector):
    platform: ClassVar[str] = "shopify"
    kind: ClassVar[str] = "store"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.CHECK_CONNECTION,
            Capability.APPLY_STORE_CREDIT,
            Capability.DEBIT_STORE_CREDIT,
            Capability.ADD_CUSTOMER_TAG,
            Capability.CREATE_DISCOUNT_CODE,
            Capability.REGISTER_WEBHOOKS,
            Capability.FETCH_ORDERS,
        }
    )
    settings_schema: ClassVar[type[SettingsSchema]] = ShopifySettings

    @property
    def base_url(self) -> str:
        return (self.settings.get("base_url") or f"https://{self.setting('shop_domain')}").rstrip("/")

    @property
    def api_version(self) -> str:
        return str(self.settings.get("api_version") or DEFAULT_API_VERSION)

    def check_connection(self) -> None:
        self.graphql(SHOP_QUERY)

    def apply_store_credit(self, credit: StoreCredit) -> EffectResult:
        credit_input: dict[str, Any] = {
            "creditAmount": {"amount": str(credit.amount.amount), "currencyCode": credit.amount.currency},
        }
        if credit.expires_at is not None:
            credit_input["expiresAt"] = as_utc(credit.expires_at).isoformat()
        if self.api_version >= NOTIFY_SINCE_VERSION:  # "unstable" sorts after every date too
            credit_input["notify"] = credit.notify
        data = self.graphql(CREDIT_MUTATION, {"id": customer_gid(credit.customer_external_id), "creditInput": credit_input})
        return store_credit.mutation_result(
            data.get("storeCreditAccountCredit") or {}, "storeCreditAccountCredit", "shopify refused the store credit"
        )

    def find_store_credit(self, credit: StoreCredit, since: datetime) -> EffectResult | None:
        """The newest credit of the same amount and currency made since ``since``, or None.

        Shopify keeps no note or key on a credit (before 2027-01), so two identical credits for
        one shopper in the same minutes are indistinguishable; finding one for both errs on the
        side of never crediting twice.
        """
        return store_credit.find_newest(
            self.graphql,
            customer_gid(credit.customer_external_id),
            RECENT_CREDITS_QUERY,
            since,
            lambda _account, transaction: self._same_money(transaction["amount"], credit),
        )

    def debit_store_credit(self, debit: StoreCreditDebit) -> EffectResult:
        """``storeCreditAccountDebit`` of the credit's amount; see :mod:`connectors.shopify_debits`."""
        return debits.debit(self.graphql, customer_gid(debit.customer_external_id), debit)

    def find_store_credit_debit(self, debit: StoreCreditDebit, since: datetime) -> EffectResult | None:
        return debits.find_debit(self.graphql, customer_gid(debit.customer_external_id), debit, since)

    def add_customer_tag(self, tag: CustomerTag) -> EffectResult:
        """``tagsAdd`` keeps the tags a customer already has, so a retry changes nothing."""
        if not tag.tags:
            raise ConnectorError("shopify: no tags to add", permanent=True)
        customer = customer_gid(tag.customer_external_id)
        data = self.graphql(discounts.TAGS_ADD_MUTATION, {"id": customer, "tags": list(tag.tags)})
        payload = data.get("tagsAdd") or {}
        if user_errors := payload.get("userErrors"):
            raise ConnectorError(f"shopify refused the tags: {discounts.messages(user_errors)}", permanent=True)
        node = payload.get("node") or {}
        return EffectResult(external_id=node.get("id") or customer, detail={"tags": list(tag.tags)})

    def create_discount_code(self, discount: DiscountCode) -> EffectResult:
        """A code only this customer can use, once. "Code must be unique" for a code that is ours
        means an earlier attempt went through: that discount is the result."""
        customer = customer_gid(discount.customer_external_id)
        basic = discounts.discount_input(discount, customer, self.api_version)
        data = self.graphql(discounts.discount_create_mutation(self.api_version), {"basicCodeDiscount": basic})
        payload = data.get("discountCodeBasicCreate") or {}
        if user_errors := payload.get("userErrors"):
            if discounts.code_taken(user_errors) and (found := self._discount_node(discount)):
                return discounts.discount_result(found, discount, reconciled=True)
            raise ConnectorError(f"shopify refused the discount code: {discounts.messages(user_errors)}", permanent=True)
        node = payload.get("codeDiscountNode")
        if not node:
            raise ConnectorError("shopify: discountCodeBasicCreate returned no discount")
        return discounts.discount_result(node, discount)

    def find_discount_code(self, discount: DiscountCode, since: datetime) -> EffectResult | None:
        """The code is unique in the shop, so it finds our discount whenever it was created."""
        node = self._discount_node(discount)
        return discounts.discount_result(node, discount, reconciled=True) if node else None

    def _discount_node(self, discount: DiscountCode) -> dict[str, Any] | None:
        data = self.graphql(discounts.discount_by_code_query(self.api_version), {"code": discount.code})
        node = data.get("codeDiscountNodeByCode")
        if not node:
            return None
        if not discounts.is_ours(node, discount, customer_gid(discount.customer_external_id)):
            raise ConnectorError(f"shopify: code {discount.code!r} belongs to another discount", permanent=True)
        return node

    def register_webhooks(self, delivery_url: str, topics: list[str]) -> dict[str, str]:
        """Subscribe ``topics`` (REST names, from plugin.json) to ``delivery_url``; see :func:`connectors.shopify_webhooks.register_webhooks`. The
        privacy topics are configured with the app, not here, and are reported as such."""
        return subscriptions.register_webhooks(self.graphql, self.api_version, delivery_url, topics)

    def webhook_status(self, delivery_url: str, topics: list[str]) -> dict[str, str]:
        """Per topic "registered", "missing" or "wrong address"; see
        :func:`connectors.shopify_webhooks.webhook_status`."""
        return subscriptions.webhook_status(self.graphql, self.api_version, delivery_url, topics)

    @staticmethod
    def _same_money(money: dict[str, Any], credit: StoreCredit) -> bool:
        """Credits match on the exact amount, on any of the customer's accounts."""
        return store_credit.same_money(money, credit.amount)

    def changed_orders(self, since: datetime) -> list[FetchedOrder]:
        """Orders updated since ``since``, in webhook shape; see :mod:`connectors.shopify_orders`."""
        headers = {"X-Shopify-Access-Token": self.setting("access_token"), "Accept": "application/json"}
        base = f"{self.base_url}/admin/api/{self.api_version}"
        return shopify_orders.changed_orders(
            lambda url, params: self.http.request("GET", url, params=params, headers=headers), base, since
        )

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """``data`` of one Admin GraphQL call, or a ConnectorError for any layer of failure.

        https://shopify.dev/docs/api/admin-graphql (endpoint and X-Shopify-Access-Token header)
        """
        url = f"{self.base_url}/admin/api/{self.api_version}/graphql.json"
        answer = self.http.json(
            "POST",
            url,
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": self.setting("access_token"), "Accept": "application/json"},
        )
        if not isinstance(answer, dict):
            raise ConnectorError(f"shopify: unexpected GraphQL answer from {url}")
        if answer.get("errors"):
            raise self._error_for(answer)
        return answer.get("data") or {}

    @staticmethod
    def _error_for(answer: dict[str, Any]) -> ConnectorError:
        errors = answer["errors"]
        if isinstance(errors, str):  # the REST-style {"errors": "..."} some failures still use
            return ConnectorError(f"shopify: {errors}", permanent=True)
        codes = {(e.get("extensions") or {}).get("code") for e in errors}
        messages = "; ".join(str(e.get("message")) for e in errors)
        if "THROTTLED" in codes:
            return ConnectorError(f"shopify: throttled: {messages}", retry_after=throttle_wait(answer))
        return ConnectorError(f"shopify: GraphQL error: {messages}", permanent=not codes & TRANSIENT_CODES)


def throttle_wait(answer: dict[str, Any]) -> float | None:
    """Seconds until the cost bucket holds this query again, from ``extensions.cost``.

    https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits
    """
    cost = (answer.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    requested, available, rate = cost.get("requestedQueryCost"), status.get("currentlyAvailable"), status.get("restoreRate")
    if requested is None or available is None or not rate:
        return None
    return float(max(1, math.ceil((float(requested) - float(available)) / float(rate))))
