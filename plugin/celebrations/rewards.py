"""The rewards a celebration email may mention: the milestone's reward effects that succeeded.

Each becomes a dict with the ``line`` a template shows ("$5 credit added to account") and its
parts (amount, code, expiry). What was applied is read from the effect's request (the amount
we asked for, the code we chose) and its stored result (what the platform says it created: a
WooCommerce coupon's code, a discount's real end date), never from the recognition's wish.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from plugin.milestones import wording
from plugin.models import Effect
from plugin.models import effect as status

REWARD_KINDS = frozenset({"store_credit", "discount_code", "customer_tag"})


def rewards_given(siblings: Iterable[Effect], currency: str, tz: ZoneInfo) -> list[dict[str, Any]]:
    """One entry per reward effect that succeeded, each with the ``line`` a template shows."""
    given: list[dict[str, Any]] = []
    for effect in sorted(siblings, key=lambda e: e.id or 0):
        if effect.kind not in REWARD_KINDS or effect.status != status.SUCCEEDED:
            continue
        payload = effect.payload or {}
        request: dict[str, Any] = payload.get("request") or {}
        result: dict[str, Any] = payload.get("result") or {}  # what the platform said it created
        if effect.kind == "store_credit":
            given.append(_credit(request, result, currency, tz))
        elif effect.kind == "discount_code":
            given.append(_discount(request, result, currency, tz))
        else:
            tags = [str(t) for t in (request.get("tags") or []) if str(t).strip()]
            given.extend({"kind": "customer_tag", "tag": t, "line": f"Upgraded to {t}"} for t in tags)
    return given


def _credit(request: dict[str, Any], result: dict[str, Any], currency: str, tz: ZoneInfo) -> dict[str, Any]:
    money = request.get("amount") or {}
    value = _decimal(money.get("amount"))
    amount = wording.format_money(value, str(money.get("currency") or currency))
    code = result.get("code")  # a store without native credit (WooCommerce) issued a coupon
    expires_on = _day(request.get("expires_at") or result.get("date_expires_gmt"), tz)
    line = f"{amount} credit with code {code} at checkout" if code else f"{amount} credit added to account"
    if expires_on:
        line += f" (valid until {expires_on})"
    return {"kind": "store_credit", "amount": amount, "value": str(value), "currency": money.get("currency") or currency,
            "code": code, "expires_on": expires_on, "line": line}


def _discount(request: dict[str, Any], result: dict[str, Any], currency: str, tz: ZoneInfo) -> dict[str, Any]:
    code = result.get("code") or request.get("code")
    percentage = request.get("percentage")
    money = request.get("amount") or {}
    if percentage is not None:
        label = f"{wording.format_number(str(percentage))}% off"
    else:
        label = f"{wording.format_money(_decimal(money.get('amount')), str(money.get('currency') or currency))} off"
    ends = _when(result.get("ends_at") or result.get("date_expires_gmt") or request.get("ends_at"))
    starts = _when(request.get("starts_at"))
    valid_days = round((ends - starts) / timedelta(days=1)) if ends and starts else None
    expires_on = _day(ends, tz)
    line = f"{label} with code {code}" + (f", valid until {expires_on}" if expires_on else "")
    return {"kind": "discount_code", "code": code, "label": label, "percentage": percentage,
            "valid_days": valid_days, "expires_on": expires_on, "line": line}


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return parsed.replace(tzinfo=ZoneInfo("UTC")) if parsed and parsed.tzinfo is None else parsed


def _day(value: Any, tz: ZoneInfo) -> str | None:
    when = _when(value)
    return wording.long_date(when.astimezone(tz)) if when else None
