"""Shopify store credit: what crediting (:mod:`connectors.shopify`) and debiting
(:mod:`connectors.shopify_debits`) an account have in common.

Both mutations answer with the same ``storeCreditAccountTransaction`` and ``userErrors``, and
neither takes an idempotency key, so both look for an attempt a dead worker may have made among
the account's recent transactions of their kind before anyone tries again.

https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/storeCreditAccountCredit
https://shopify.dev/docs/api/admin-graphql/2025-07/mutations/storeCreditAccountDebit
https://shopify.dev/docs/api/admin-graphql/2025-07/interfaces/StoreCreditAccountTransaction
https://shopify.dev/docs/api/admin-graphql/2025-07/connections/StoreCreditAccountConnection
https://shopify.dev/docs/api/admin-graphql/latest/objects/StoreCreditAccount (transactions:
sortKey CREATED_AT, reverse, query "type:credit" / "type:debit")
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.base import RECONCILE_SKEW, as_utc
from connectors.errors import ConnectorError
from connectors.payloads import EffectResult, Money

GraphQL = Callable[[str, dict[str, Any]], dict[str, Any]]
# Whether a recent transaction (on the given account) is the one being looked for.
Accepts = Callable[[dict[str, Any], dict[str, Any]], bool]

# What both mutations select of the transaction they made, and their refusals; goes inside
# ``storeCreditAccountCredit(...) { }`` / ``storeCreditAccountDebit(...) { }``.
TRANSACTION_SELECTION = """\
    storeCreditAccountTransaction {
      id
      amount { amount currencyCode }
      createdAt
      account { id balance { amount currencyCode } }
    }
    userErrors { field message code }"""

# Transactions are an interface: only the concrete type of each kind carries an ``id`` (and the
# debit type an ``event``), hence the inline fragment.
_FRAGMENTS = {
    "credit": "... on StoreCreditAccountCreditTransaction { id }",
    "debit": "... on StoreCreditAccountDebitTransaction { id event }",
}


def recent_transactions_query(operation: str, kind: str) -> str:
    """The customer's accounts with their 25 newest transactions of ``kind`` ("credit" or
    "debit"), newest first, as ``query <operation>($customerId: ID!)``."""
    return f"""
query {operation}($customerId: ID!) {{
  customer(id: $customerId) {{
    storeCreditAccounts(first: 5) {{
      nodes {{
        id
        balance {{ amount currencyCode }}
        transactions(first: 25, sortKey: CREATED_AT, reverse: true, query: "type:{kind}") {{
          nodes {{
            amount {{ amount currencyCode }}
            createdAt
            {_FRAGMENTS[kind]}
          }}
        }}
      }}
    }}
  }}
}}
"""


def messages(user_errors: list[dict[str, Any]]) -> str:
    return "; ".join(str(e.get("message")) for e in user_errors)


def mutation_result(
    payload: dict[str, Any],
    operation: str,
    refused: str,
    explain: Callable[[list[dict[str, Any]]], str] = messages,
) -> EffectResult:
    """The transaction a mutation's ``payload`` made, or a ConnectorError: permanent
    ("<refused>: <explain(userErrors)>") when Shopify refused the input, transient when it answered
    without a transaction."""
    if user_errors := payload.get("userErrors"):
        raise ConnectorError(f"{refused}: {explain(user_errors)}", permanent=True)
    transaction = payload.get("storeCreditAccountTransaction")
    if not transaction:
        raise ConnectorError(f"shopify: {operation} returned no transaction")
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


def same_money(money: dict[str, Any], expected: Money, *, unsigned: bool = False) -> bool:
    """Shopify's ``MoneyV2`` equals ``expected``; ``unsigned`` ignores the sign (a debit's amount
    may be reported negative)."""
    amount = Decimal(money["amount"])
    return money["currencyCode"] == expected.currency and (abs(amount) if unsigned else amount) == expected.amount


def find_newest(
    graphql: GraphQL, customer_id: str, query: str, since: datetime, accepts: Accepts
) -> EffectResult | None:
    """The newest transaction ``query`` (a :func:`recent_transactions_query`) finds for
    ``customer_id`` that has an id, was made since ``since`` (less :data:`RECONCILE_SKEW`) and
    ``accepts(account, transaction)``, as a reconciled EffectResult; None when there is none."""
    customer = graphql(query, {"customerId": customer_id}).get("customer")
    if not customer:
        return None
    cutoff = as_utc(since) - RECONCILE_SKEW
    found: tuple[datetime, dict[str, Any], dict[str, Any]] | None = None
    for account in customer["storeCreditAccounts"]["nodes"]:
        for transaction in account["transactions"]["nodes"]:
            if not (transaction.get("id") and accepts(account, transaction)):
                continue
            created = datetime.fromisoformat(transaction["createdAt"])
            if created >= cutoff and (found is None or created > found[0]):
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
