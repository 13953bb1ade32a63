"""How one effect reads to an admin: "$10.00 store credit", "Tag “VIP”", "Task: Send a gift".

The amount is what the effect asks the platform for (``request.amount``) once planned, else the
recognition's wish (``action.amount`` in the workspace's currency): a held reward has both.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from plugin.models import Effect

KIND_NAMES = {
    "store_credit": "store credit",
    "discount_code": "discount code",
    "customer_tag": "customer tag",
    "email": "celebration email",
    "task": "task",
    "slack_alert": "Slack alert",
    "crm_note": "CRM note",
}
SYMBOLS = {"USD": "$", "AUD": "A$", "CAD": "C$", "EUR": "€", "GBP": "£", "NZD": "NZ$"}


@dataclass(frozen=True)
class EffectLine:
    id: int
    kind: str
    status: str
    label: str
    amount: Decimal | None
    currency: str | None
    error: str | None


def money_text(amount: Decimal, currency: str) -> str:
    """``$1,250.00`` for the currencies people know by symbol, ``1,250.00 JPY`` otherwise."""
    if amount < 0:
        return f"-{money_text(-amount, currency)}"
    symbol = SYMBOLS.get(currency)
    figure = f"{amount:,.2f}"
    return f"{symbol}{figure}" if symbol else f"{figure} {currency}"


def amount_of(effect: Effect, currency: str) -> tuple[Decimal | None, str | None]:
    payload: dict[str, Any] = effect.payload or {}
    asked = (payload.get("request") or {}).get("amount")
    if isinstance(asked, dict) and asked.get("amount") is not None:
        return _decimal(asked.get("amount")), str(asked.get("currency") or currency)
    action = payload.get("action") or {}
    if action.get("amount") is not None:
        return _decimal(action.get("amount")), str(action.get("currency") or currency)
    return None, None


def describe(effect: Effect, currency: str) -> EffectLine:
    amount, code = amount_of(effect, currency)
    return EffectLine(effect.id, effect.kind, effect.status, _label(effect, amount, code), amount, code,
                      effect.last_error)


def _label(effect: Effect, amount: Decimal | None, currency: str | None) -> str:
    payload: dict[str, Any] = effect.payload or {}
    action: dict[str, Any] = payload.get("action") or {}
    request: dict[str, Any] = payload.get("request") or {}
    money = money_text(amount, currency) if amount is not None and currency else None
    if effect.kind == "store_credit":
        return f"{money} store credit" if money else "Store credit"
    if effect.kind == "discount_code":
        percentage = _decimal(request.get("percentage") or action.get("percentage"))
        if percentage is not None:
            return f"{percentage.normalize():f}% discount code"
        return f"{money} discount code" if money else "Discount code"
    if effect.kind == "customer_tag":
        tags = request.get("tags") or action.get("tags") or [action.get("tag")]
        named = ", ".join(f"“{t}”" for t in tags if t)
        return f"Tag {named}" if named else "Customer tag"
    if effect.kind == "task":
        return f"Task: {payload.get('title') or action.get('title') or 'a person follows up'}"
    if effect.kind == "email":
        template = action.get("template")
        return f"Celebration email ({template})" if template else "Celebration email"
    name = KIND_NAMES.get(effect.kind, effect.kind.replace("_", " "))
    return name[:1].upper() + name[1:]


def _decimal(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None
