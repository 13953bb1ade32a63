"""Shopify: taking back a store credit (``storeCreditAccountDebit``) when a refund undid its milestone.

Like the credit, a debit has no idempotency key, so a worker that died mid-call may or may not
have debited the shopper. :func:`find_debit` looks for it among the account's recent debit
transactions — made by an adjustment (an app or the admin), not by paying at checkout — before
anyone tries again.

https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/storeCreditAccountDebit
https://shopify.dev/docs/api/admin-graphql/2025-07/objects/StoreCreditAccountDebitTransaction
https://shopify.dev/docs/api/admin-graphql/2025-07/enums/StoreCreditAccountDebitUserErrorCode
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.base import RECONCILE_SKEW, as_utc
from connectors.errors import ConnectorError
from connectors.payloads import EffectResult, StoreCreditDebit

GraphQL = Callable[[str, dict[str, Any]], dict[str, Any]]

DEBIT_MUTATION = """
mutation storeCreditAccountDebit($id: ID!, $debitInput: StoreCreditAccountDebitInput!) {
  storeCreditAccountDebit(id: $id, debitInput: $debitInput) {
    storeCreditAccountTransaction {
      id
      amount { amount currencyCode }
      createdAt
      account { id balance { amount currencyCode } }
    }
    userErrors { field message code }
  }
}
"""

# Transactions are an interface: the debit type carries ``id`` and ``event`` (ADJUSTMENT for a
# debit an app or the admin made; ORDER_PAYMENT when the shopper spent credit at checkout).
RECENT_DEBITS_QUERY = """
query recentStoreCreditDebits($customerId: ID!) {
  customer(id: $customerId) {
    storeCreditAccounts(first: 5) {
      nodes {
        id
        balance { amount currencyCode }
        transactions(first: 25, sortKey: CREATED_AT, reverse: true, query: "type:debit") {
          nodes {
            amount { amount currencyCode }
            createdAt
            ... on StoreCreditAccountDebitTransaction { id event }
          }
        }
      }
    }
  }
}
"""

# What each refusal means to the admin reading a dead effect (and the CSM's notice).
REFUSALS = {
    "INSUFFICIENT_FUNDS": "the customer has already spent this credit (the account's balance is lower than it)",
    "ACCOUNT_NOT_FOUND": "the customer's store credit account no longer exists",
    "MISMATCHING_CURRENCY": "the account is held in another currency than the credit",
}


def debit(graphql: GraphQL, owner_id: str, request: StoreCreditDebit) -> EffectResult:
    """Debit the credit's amount from ``request.account_id`` (else the owner's account)."""
    variables = {
        "id": request.account_id or owner_id,
        "debitInput": {
            "debitAmount": {"amount": str(request.amount.amount), "currencyCode": request.amount.currency},
        },
    }
    payload = graphql(DEBIT_MUTATION, variables).get("storeCreditAccountDebit") or {}
    if user_errors := payload.get("userErrors"):
        raise ConnectorError(f"shopify could not take the store credit back: {_refusal(user_errors)}", permanent=True)
    transaction = payload.get("storeCreditAccountTransaction")
    if not transaction:
        raise ConnectorError("shopify: storeCreditAccountDebit returned no transaction")
    account = transaction.get("account") or {}
    balance = account.get("balance") or {}
    return EffectResult(
        external_id=transaction["id"],
        detail={
            "account_id": account.get("id"),
            "balance": balance.get("amount"),
            "currency": balance.get("currencyCode"),
            "created_at": transaction.get("createdAt"),
        },
    )


def find_debit(graphql: GraphQL, owner_id: str, request: StoreCreditDebit, since: datetime) -> EffectResult | None:
    """The newest adjustment debit of the credit's amount since ``since`` (on the credit's account
    when known), or None. Two identical debits in the same minutes are indistinguishable; finding
    one for both errs on the side of never debiting twice."""
    customer = graphql(RECENT_DEBITS_QUERY, {"customerId": owner_id}).get("customer")
    if not customer:
        return None
    cutoff = as_utc(since) - RECONCILE_SKEW
    found: tuple[datetime, dict[str, Any], dict[str, Any]] | None = None
    for account in customer["storeCreditAccounts"]["nodes"]:
        if request.account_id and account.get("id") != request.account_id:
            continue
        for transaction in account["transactions"]["nodes"]:
            created = datetime.fromisoformat(transaction["createdAt"])
            if (
                transaction.get("id")
                and transaction.get("event", "ADJUSTMENT") == "ADJUSTMENT"
                and created >= cutoff
                and _same_money(transaction["amount"], request)
                and (found is None or created > found[0])
            ):
                found = (created, transaction, account)
    if found is None:
        return None
    _, transaction, account = found
    return EffectResult(
        external_id=transaction["id"],
        detail={
            "account_id": account["id"],
            "balance": account["balance"]["amount"],
            "currency": account["balance"]["currencyCode"],
            "created_at": transaction["createdAt"],
            "reconciled": True,
        },
    )


def _same_money(money: dict[str, Any], request: StoreCreditDebit) -> bool:
    """A debit's amount may be reported negative; what matters is how much left the account."""
    return money["currencyCode"] == request.amount.currency and abs(Decimal(money["amount"])) == request.amount.amount


def _refusal(user_errors: list[dict[str, Any]]) -> str:
    return "; ".join(REFUSALS.get(str(e.get("code")), str(e.get("message"))) for e in user_errors)
