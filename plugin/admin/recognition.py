"""The recognition actions a definition may list, validated before they reach the planner.

One schema for every kind (so the OpenAPI document shows every key), with the rules per kind
checked together: which keys a kind takes, which it needs, and the values the planner will turn
into money (``amount`` a positive Decimal with at most 2 places, a 3-letter currency). What is
stored is plain JSON: amounts as decimal strings, as the default catalogue writes them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from plugin.milestones.planning import KINDS
from plugin.milestones.wording import format_money, format_number

# The keys each kind takes besides ``kind`` (planning reads exactly these).
KIND_KEYS: dict[str, frozenset[str]] = {
    "crm_note": frozenset(),
    "slack_alert": frozenset({"channel", "ideas"}),
    "store_credit": frozenset({"amount", "currency", "expires_in_days", "notify"}),
    "email": frozenset({"template"}),
    "customer_tag": frozenset({"tag", "tags"}),
    "discount_code": frozenset({"percentage", "amount", "currency", "valid_days", "code_prefix"}),
    "task": frozenset({"title"}),
}
REQUIRED_KEYS: dict[str, frozenset[str]] = {
    "store_credit": frozenset({"amount"}),
    "email": frozenset({"template"}),
}
EXACTLY_ONE: dict[str, tuple[str, str]] = {
    "customer_tag": ("tag", "tags"),
    "discount_code": ("percentage", "amount"),
}
MAX_AMOUNT = Decimal("1000000")


def _money(value: Decimal) -> None:
    if value <= 0:
        raise ValidationError("must be greater than 0")
    if value > MAX_AMOUNT:
        raise ValidationError(f"must be at most {MAX_AMOUNT}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and value != value.quantize(Decimal("0.01")):
        raise ValidationError("must have at most 2 decimal places")


def _percentage(value: Decimal) -> None:
    if not Decimal(0) < value <= Decimal(100):
        raise ValidationError("must be greater than 0 and at most 100")


def _text(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


class RecognitionSchema(Schema):
    """One recognition action: ``{"kind": "store_credit", "amount": "10.00"}``."""

    kind = fields.String(
        required=True,
        validate=validate.OneOf(sorted(KINDS)),
        metadata={"description": "What to do: " + ", ".join(sorted(KINDS))},
    )
    amount = fields.Decimal(
        validate=_money, as_string=True,
        metadata={"description": "store_credit (required) or discount_code: money, at most 2 decimal places"},
    )
    currency = fields.String(
        validate=validate.Regexp(r"^[A-Z]{3}\Z", error="must be a 3-letter currency code such as USD"),
        metadata={"description": "ISO 4217; the workspace's currency when left out"},
    )
    expires_in_days = fields.Integer(strict=True, validate=validate.Range(min=1, max=3650))
    notify = fields.Boolean(metadata={"description": "store_credit: let the platform tell the customer"})
    channel = _text(80, metadata={"description": "slack_alert: a channel id instead of the connection's"})
    ideas = fields.List(_text(200), validate=validate.Length(min=1, max=10))
    template = fields.String(
        validate=validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,63}\Z", error="must be a template key such as order-10-thank-you"),
        metadata={"description": "email (required): the celebration email template key"},
    )
    tag = _text(100, metadata={"description": "customer_tag: one tag (or tags)"})
    tags = fields.List(_text(100), validate=validate.Length(min=1, max=10))
    percentage = fields.Decimal(validate=_percentage, as_string=True)
    valid_days = fields.Integer(strict=True, validate=validate.Range(min=1, max=3650))
    code_prefix = fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,20}\Z", error="must be 1-20 letters, digits, - or _")
    )
    title = _text(255, metadata={"description": "task: what a person should do (a gift, a call)"})

    @validates_schema
    def _per_kind(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind = data.get("kind")
        if kind not in KIND_KEYS:
            return  # the kind field reports it
        errors: dict[str, list[str]] = {}
        for key in sorted(set(data) - {"kind"} - KIND_KEYS[kind]):
            errors[key] = [f"{kind} does not take {key}"]
        for key in sorted(REQUIRED_KEYS.get(kind, frozenset()) - set(data)):
            errors[key] = [f"{kind} needs {key}"]
        if kind in EXACTLY_ONE:
            first, second = EXACTLY_ONE[kind]
            if (first in data) == (second in data):
                errors.setdefault(first, []).append(f"{kind} needs exactly one of {first} or {second}")
        if errors:
            raise ValidationError(errors)

    @post_load
    def _plain_json(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        for key in ("amount", "percentage"):
            if isinstance(data.get(key), Decimal):
                number: Decimal = data[key]
                data[key] = f"{number:f}" if key == "percentage" else f"{number.quantize(Decimal('0.01')):f}"
        return data


def credit_amounts(recognition: list[dict[str, Any]], currency: str) -> dict[str, Decimal]:
    """The store credit one milestone of a definition gives, per currency."""
    totals: dict[str, Decimal] = {}
    for action in recognition:
        if action.get("kind") != "store_credit":
            continue
        try:
            amount = Decimal(str(action.get("amount")))
        except ArithmeticError:
            continue
        code = str(action.get("currency") or currency)
        totals[code] = totals.get(code, Decimal(0)) + amount
    return totals


def count_kind(recognition: list[dict[str, Any]], kind: str) -> int:
    return sum(1 for action in recognition if action.get("kind") == kind)


# -- how an action reads to an admin, and when two lists are the same ------------------------

KIND_LABELS: dict[str, str] = {
    "crm_note": "CRM note",
    "slack_alert": "Slack alert",
    "store_credit": "Store credit",
    "discount_code": "Discount code",
    "customer_tag": "Tag / VIP",
    "task": "Task for the team",
    "email": "Celebration email",
}


def describe_action(action: dict[str, Any], currency: str) -> str:
    """One line for the catalogue: "$10 store credit", "20% off code (7 days)", "Tag: VIP"."""
    kind = str(action.get("kind"))
    try:
        if kind == "store_credit":
            text = f"{format_money(str(action['amount']), str(action.get('currency') or currency))} store credit"
            days = action.get("expires_in_days")
            return text + (f" (expires in {days} days)" if days else "")
        if kind == "discount_code":
            if action.get("percentage") is not None:
                off = f"{format_number(str(action['percentage']))}% off"
            else:
                off = f"{format_money(str(action['amount']), str(action.get('currency') or currency))} off"
            days = action.get("valid_days")
            return f"{off} code" + (f" ({days} days)" if days else "")
    except (KeyError, ArithmeticError, ValueError):
        return f"{KIND_LABELS.get(kind, kind)} (invalid)"
    if kind == "customer_tag":
        tags = action.get("tags") or [action.get("tag")]
        return "Tag: " + ", ".join(str(t) for t in tags if t)
    if kind == "task":
        return f"Task: {action.get('title') or 'follow up'}"
    if kind == "email":
        return f"Email: {action.get('template') or 'celebration'}"
    if kind == "slack_alert" and action.get("channel"):
        return f"Slack alert in {action['channel']}"
    return KIND_LABELS.get(kind, kind)


def normalized(actions: list[dict[str, Any]], currency: str) -> list[dict[str, Any]]:
    """``actions`` as the planner reads them, defaults filled in, so that two lists that do the
    same thing compare equal ("10" and "10.00", a missing currency and the workspace's)."""
    schema = RecognitionSchema()
    out: list[dict[str, Any]] = []
    for action in actions:
        try:
            loaded = dict(schema.load(action))
        except ValidationError:
            out.append(dict(action))
            continue
        if loaded["kind"] == "store_credit":
            loaded.setdefault("currency", currency)
            loaded.setdefault("notify", True)
        if loaded["kind"] == "discount_code" and "amount" in loaded:
            loaded.setdefault("currency", currency)
        if loaded["kind"] == "customer_tag" and "tag" in loaded:
            loaded["tags"] = [loaded.pop("tag")]
        out.append(loaded)
    return out
