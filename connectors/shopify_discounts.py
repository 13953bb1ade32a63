"""Shopify recognitions beyond store credit: customer tags and single-customer discount codes.

The GraphQL documents and the mapping between our payloads and Shopify's inputs live here;
the calls themselves go through :meth:`connectors.shopify.ShopifyConnector.graphql`.

Who may use a code is ``customerSelection`` up to 2025-07 and ``context`` from 2025-10 on
(https://shopify.dev/changelog/discount-eligibility-management), so both the input and the
selection depend on the connection's API version.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors.base import as_utc
from connectors.errors import ConnectorError
from connectors.payloads import DiscountCode, EffectResult

CONTEXT_SINCE_VERSION = "2025-10"

# https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/tagsAdd
# (TagsAddPayload: node { id }, userErrors { field message }); needs write_customers.
TAGS_ADD_MUTATION = """
mutation tagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) {
    node { id }
    userErrors { field message }
  }
}
"""

# The DiscountCodeBasic fields we read back, with who may use it in the version's own field.
_DISCOUNT_FIELDS = """
id
codeDiscount {
  ... on DiscountCodeBasic {
    title
    startsAt
    endsAt
    codes(first: 1) { nodes { code } }
    %s { ... on DiscountCustomers { customers { id } } }
  }
}
"""

# https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/discountCodeBasicCreate
# https://shopify.dev/docs/api/admin-graphql/2025-07/payloads/DiscountCodeBasicCreatePayload
# (userErrors are DiscountUserError: field, code, message); needs write_discounts.
_DISCOUNT_CREATE = """
mutation discountCodeBasicCreate($basicCodeDiscount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {
    codeDiscountNode { %s }
    userErrors { field code message }
  }
}
"""

# https://shopify.dev/docs/api/admin-graphql/2025-07/queries/codeDiscountNodeByCode
# (the code is matched case-insensitively); needs read_discounts.
_DISCOUNT_BY_CODE = """
query codeDiscountNodeByCode($code: String!) {
  codeDiscountNodeByCode(code: $code) { %s }
}
"""


def _uses_context(api_version: str) -> bool:
    return api_version >= CONTEXT_SINCE_VERSION  # "unstable" sorts after every date too


def _fields(api_version: str) -> str:
    return _DISCOUNT_FIELDS % ("context" if _uses_context(api_version) else "customerSelection")


def discount_create_mutation(api_version: str) -> str:
    return _DISCOUNT_CREATE % _fields(api_version)


def discount_by_code_query(api_version: str) -> str:
    return _DISCOUNT_BY_CODE % _fields(api_version)


def shopify_percentage(percent: Decimal) -> float:
    """Our percent (``20`` for 20 %) as Shopify's ratio (``0.2``).

    ``DiscountPercentage.percentage`` is a GraphQL Float between 0 and 1, the one place a
    float is sent: it is a ratio, not money.
    https://shopify.dev/docs/api/admin-graphql/2025-07/input-objects/DiscountEffectInput
    """
    if not percent.is_finite() or not Decimal(0) < percent <= Decimal(100):
        raise ConnectorError(f"shopify: a discount of {percent}% is not between 0 and 100", permanent=True)
    return float(percent / Decimal(100))


def discount_input(discount: DiscountCode, customer_id: str, api_version: str) -> dict[str, Any]:
    """``DiscountCodeBasicInput`` for a code one customer may use once.

    https://shopify.dev/docs/api/admin-graphql/2025-07/input-objects/DiscountCodeBasicInput
    https://shopify.dev/docs/api/admin-graphql/2025-07/input-objects/DiscountCustomerSelectionInput
    """
    value: dict[str, Any]
    if discount.percentage is not None and discount.amount is None:
        value = {"percentage": shopify_percentage(discount.percentage)}
    elif discount.amount is not None and discount.percentage is None:
        if discount.amount.amount <= 0:
            raise ConnectorError(f"shopify: a discount of {discount.amount} is not positive", permanent=True)
        # The amount is in the shop's currency; DiscountAmountInput takes no currency.
        value = {"discountAmount": {"amount": str(discount.amount.amount), "appliesOnEachItem": False}}
    else:
        raise ConnectorError(
            "shopify: a discount code needs either a percentage or an amount", permanent=True
        )
    customers = {"customers": {"add": [customer_id]}}
    basic: dict[str, Any] = {
        "title": discount.title,
        "code": discount.code,
        "startsAt": as_utc(discount.starts_at).isoformat(),
        "context" if _uses_context(api_version) else "customerSelection": customers,
        "customerGets": {"value": value, "items": {"all": True}},
        "appliesOncePerCustomer": True,
        "usageLimit": 1,
    }
    if discount.ends_at is not None:
        basic["endsAt"] = as_utc(discount.ends_at).isoformat()
    return basic


def messages(user_errors: list[dict[str, Any]]) -> str:
    return "; ".join(str(e.get("message")) for e in user_errors)


def code_taken(user_errors: list[dict[str, Any]]) -> bool:
    """Shopify's answer when the code exists: code ``TAKEN``, "Code must be unique. …"."""
    return any(
        e.get("code") == "TAKEN" or "must be unique" in str(e.get("message")).lower() for e in user_errors
    )


def is_ours(node: dict[str, Any], discount: DiscountCode, customer_id: str) -> bool:
    """Whether an existing code is the one this effect meant to create: same title, and (when
    Shopify says who may use it) our customer among them. A code some other discount took is
    not ours to hand out."""
    basic = node.get("codeDiscount") or {}
    if basic.get("title") != discount.title:
        return False
    eligible = basic.get("context") or basic.get("customerSelection") or {}
    customers = eligible.get("customers")
    return customers is None or customer_id in {c.get("id") for c in customers}


def discount_result(
    node: dict[str, Any], discount: DiscountCode, *, reconciled: bool = False
) -> EffectResult:
    basic = node.get("codeDiscount") or {}
    codes = (basic.get("codes") or {}).get("nodes") or []
    if "endsAt" in basic:  # what Shopify stored wins over what we asked for
        ends_at = basic["endsAt"]
    else:
        ends_at = as_utc(discount.ends_at).isoformat() if discount.ends_at else None
    detail: dict[str, Any] = {"code": codes[0]["code"] if codes else discount.code, "ends_at": ends_at}
    if reconciled:
        detail["reconciled"] = True
    return EffectResult(external_id=node["id"], detail=detail)
