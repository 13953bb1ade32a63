"""The plain data a connector is given and returns: one frozen dataclass per capability.

Payloads are stored on the effect row as JSON (``to_json``/``from_json``) so a retry sends
exactly what the first attempt meant to send.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar, get_type_hints

T = TypeVar("T")


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money.amount must be a Decimal")
        if len(self.currency) != 3:
            raise ValueError(f"not an ISO 4217 currency code: {self.currency!r}")

    def __str__(self) -> str:
        return f"{self.amount:,.2f} {self.currency}"


@dataclass(frozen=True)
class EffectResult:
    """What the platform created: its id (note id, transaction id, message ts)."""

    external_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimelineNote:
    idempotency_key: str
    customer_email: str
    customer_first_name: str | None
    customer_last_name: str | None
    body_html: str
    occurred_at: datetime


@dataclass(frozen=True)
class StoreCredit:
    """Credit on the shopper's account. Stores without native credit (WooCommerce) issue a
    single-use coupon restricted to ``customer_email`` and return its code in the result."""

    idempotency_key: str
    customer_external_id: str
    amount: Money
    reason: str
    expires_at: datetime | None = None
    notify: bool = True
    customer_email: str | None = None


@dataclass(frozen=True)
class StoreCreditDebit:
    """Taking back a store credit we applied, because a refund or cancellation undid the
    milestone it rewarded. ``credit_external_id`` is what the credit created (Shopify's credit
    transaction, WooCommerce's coupon id) and ``credit_idempotency_key`` the credit's own key
    (a WooCommerce coupon is only deleted when it carries it). Shopify debits ``account_id``, the
    account the credit went to, when known; else the customer's account in ``amount.currency``."""

    idempotency_key: str
    customer_external_id: str
    amount: Money
    reason: str
    credit_external_id: str | None
    credit_idempotency_key: str
    account_id: str | None = None
    coupon_code: str | None = None


@dataclass(frozen=True)
class CsmNotice:
    """A message to the account's CSM about one milestone — revoked after a refund, a credit that
    could not be taken back — routed like :class:`MilestoneAlert` (``owner_email``, the channel's
    ``csm_routing``), without the celebration buttons."""

    idempotency_key: str
    milestone_id: str
    customer_name: str
    headline: str
    lines: tuple[str, ...]
    channel: str | None = None
    owner_email: str | None = None


@dataclass(frozen=True)
class CustomerTag:
    """Tags on the shopper (RHF's "VIP upgrade", "loyalty tier up")."""

    idempotency_key: str
    customer_external_id: str
    customer_email: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True)
class DiscountCode:
    """A unique code for one customer: ``percentage`` off or a fixed ``amount``, valid until
    ``ends_at`` (RHF's anniversary "20% off: YEAR1, valid 7 days")."""

    idempotency_key: str
    customer_external_id: str
    customer_email: str | None
    code: str
    title: str
    starts_at: datetime
    ends_at: datetime | None
    percentage: Decimal | None = None
    amount: Money | None = None


@dataclass(frozen=True)
class EmailMessage:
    """A celebration email, rendered by us from the rewards actually given.

    ``template`` is the template's key (``order-10-thank-you``); platforms with their own
    templates (HubSpot single-send, Klaviyo flows) use it and ``properties``; SMTP sends
    ``subject``/``html_body``/``text_body`` as rendered.
    """

    idempotency_key: str
    to_email: str
    to_name: str | None
    template: str
    subject: str
    html_body: str
    text_body: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertMilestone:
    """One more milestone of a combined alert (one customer crossed several at once)."""

    milestone_id: str
    milestone_name: str
    detail: str
    achieved_on: date
    time_to_milestone: str | None = None


@dataclass(frozen=True)
class MilestoneAlert:
    """PRD-114's Slack alert, platform-neutral.

    ``headline`` is "1 Million API Calls!", ``detail`` "API usage reached 1,000,000 calls".
    ``also`` lists the other milestones the customer crossed at the same time: the alert then
    shows one section per milestone, and its buttons act on all of them.
    """

    idempotency_key: str
    milestone_id: str
    customer_name: str
    customer_email: str | None
    milestone_name: str
    headline: str
    detail: str
    achieved_on: date
    time_to_milestone: str | None
    customer_since: date | None
    arr: Money | None
    health_score: int | None
    celebration_ideas: tuple[str, ...]
    channel: str | None = None
    # The account's CSM (the CRM owner), whom the alert is routed to (SlackSettings.csm_routing).
    owner_email: str | None = None
    also: tuple[AlertMilestone, ...] = ()

    @property
    def milestone_ids(self) -> tuple[str, ...]:
        return (self.milestone_id, *(m.milestone_id for m in self.also))


@dataclass(frozen=True)
class Escalation:
    """A message to the team lead (RHF: "Escalate to Team Lead if: exceptional milestone,
    celebrity/influencer customer, error in recognition"): why, about which milestones and which
    customer, and what to do next. ``link`` opens the admin page where that next step is taken."""

    idempotency_key: str
    milestone_id: str
    customer_name: str
    customer_email: str | None
    reasons: tuple[str, ...]
    milestones: tuple[str, ...]
    customer_context: tuple[str, ...]
    next_step: str
    link: str | None = None


def to_json(payload: Any) -> dict[str, Any]:
    """A payload dataclass as JSON-safe data (Decimal and dates as strings)."""
    return {f.name: _encode(getattr(payload, f.name)) for f in dataclasses.fields(payload)}


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def from_json(cls: type[T], data: dict[str, Any]) -> T:
    """The inverse of :func:`to_json` for the payload classes of this module."""
    hints = get_type_hints(cls)
    kwargs = {name: _decode(hints[name], value) for name, value in data.items() if name in hints}
    return cls(**kwargs)


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if getattr(hint, "__origin__", None) is tuple:  # tuple[X, ...]: each item decoded as an X
        item = (getattr(hint, "__args__", None) or (Any,))[0]
        return tuple(_decode(item, v) for v in value)
    options = getattr(hint, "__args__", None) or (hint,)
    for option in options:
        if option is type(None):
            continue
        if dataclasses.is_dataclass(option):
            return from_json(option, value)  # type: ignore[arg-type]
        if option is Decimal:
            return Decimal(value)
        if option is datetime:
            return datetime.fromisoformat(value)
        if option is date:
            return date.fromisoformat(value)
        if getattr(option, "__origin__", None) is tuple:
            return _decode(option, value)
    return value


@dataclass(frozen=True)
class FetchedOrder:
    """An order read back from the platform's API for reconciliation, in the platform's own
    webhook shape (``payload``) so it goes through the same inbound path as a delivery.
    ``version`` changes whenever the order does (its modification time)."""

    external_id: str
    version: str
    topic: str
    payload: dict[str, Any]
