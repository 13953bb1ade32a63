"""Store credit actually issued: the amount each succeeded effect asked the platform for.

The amount is the effect's ``request.amount`` (what the platform was asked to credit), never the
recognition's wish; it is issued when the effect completed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.models import Effect, Workspace
from plugin.models import effect as effect_status

Money = dict[str, Decimal]


def add(totals: Money, payload: dict[str, Any], currency: str) -> None:
    """Add the amount the effect asked the platform for (``request.amount``) to ``totals``."""
    money = (payload.get("request") or {}).get("amount") or {}
    try:
        amount = Decimal(str(money.get("amount")))
    except InvalidOperation:
        return
    if amount.is_finite():
        code = str(money.get("currency") or currency)
        totals[code] = totals.get(code, Decimal(0)) + amount


def money_list(totals: Money) -> list[dict[str, str]]:
    return [{"currency": code, "amount": f"{amount:.2f}"} for code, amount in sorted(totals.items())]


def issued_at() -> Any:
    return func.coalesce(Effect.completed_at, Effect.updated_at)


def issued(session: Session, workspace: Workspace, start: datetime, end: datetime) -> list[tuple[datetime, dict[str, Any]]]:
    """(when, payload) of every store credit that succeeded in [start, end)."""
    when = issued_at()
    return [
        (at, payload or {})
        for at, payload in session.execute(
            select(when, Effect.payload).where(
                Effect.workspace_id == workspace.id,
                Effect.kind == "store_credit",
                Effect.status == effect_status.SUCCEEDED,
                when >= start,
                when < end,
            )
        ).tuples()
    ]


def total(session: Session, workspace: Workspace, start: datetime, end: datetime) -> Money:
    totals: Money = {}
    for _at, payload in issued(session, workspace, start, end):
        add(totals, payload, workspace.currency)
    return totals
