"""Shopify: taking back a store credit (``storeCreditAccountDebit``) when a refund undid its milestone.

Like the credit, a debit has no idempotency key, so a worker that died mid-call may or may not
have debited the shopper. :func:`find_debit` looks for it among the account's recent debit
transactions — made by an adjustment (an app or the admin), not by paying at checkout — before
anyone tries again. What the debit shares with the credit lives in
:mod:`connectors.shopify_store_credit`.

https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/storeCreditAccountDebit
https://shopify.dev/docs/api/admin-graphql/2025-07/objects/StoreCreditAccountDebitTransaction
https://shopify.dev/docs/api/admin-graphql/2025-07/enums/StoreCreditAccountDebitUserErrorCode
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors import shopify_store_credit as store_credit
from connectors.payloads import EffectResult, StoreCreditDebit
from connectors.shopify_store_credit import GraphQL

__all__ = ["DEBIT_MUTATION", "RECENT_DEBITS_QUERY", "REFUSALS", "GraphQL", "debit", "find_debit"]

DEBIT_MUTATION = f"""
mutation storeCreditAccountDebit($id: ID!, $debitInput: StoreCreditAccountDebitInput!) {{
  storeCreditAccountDebit(id: $id, debitInput: $debitInput) {{
{store_credit.TRANSACTION_SELECTION}
  }}
}}
"""

# Transactions are an interface: the debit type carries ``id`` and ``event`` (ADJUSTMENT for a
# debit an app or the admin made; ORDER_PAYMENT when the shopper spent credit at checkout).
RECENT_DEBITS_QUERY = store_credit.recent_transactions_query("recentStoreCreditDebits", "debit")

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
    return store_credit.mutation_result(
        payload, "storeCreditAccountDebit", "shopify could not take the store credit back", _refusal
    )


def find_debit(graphql: GraphQL, owner_id: str, request: StoreCreditDebit, since: datetime) -> EffectResult | None:
    """The newest adjustment debit of the credit's amount since ``since`` (on the credit's account
    when known), or None. Two identical debits in the same minutes are indistinguishable; finding
    one for both errs on the side of never debiting twice."""

    def accepts(account: dict[str, Any], transaction: dict[str, Any]) -> bool:
        return (
            (not request.account_id or account.get("id") == request.account_id)
            and transaction.get("event", "ADJUSTMENT") == "ADJUSTMENT"
            and _same_money(transaction["amount"], request)
        )

    return store_credit.find_newest(graphql, owner_id, RECENT_DEBITS_QUERY, since, accepts)


def _same_money(money: dict[str, Any], request: StoreCreditDebit) -> bool:
    """A debit's amount may be reported negative; what matters is how much left the account."""
    return store_credit.same_money(money, request.amount, unsigned=True)


def _refusal(user_errors: list[dict[str, Any]]) -> str:
    return "; ".join(REFUSALS.get(str(e.get("code")), str(e.get("message"))) for e in user_errors)
