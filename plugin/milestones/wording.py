"""How milestones read to people: headlines, details, durations, money."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

# What an effect is called in a sentence ("the store credit failed for good").
EFFECT_NAMES: dict[str, str] = {
    "crm_note": "CRM note",
    "slack_alert": "Slack alert",
    "store_credit": "store credit",
    "email": "celebration email",
    "customer_tag": "customer tag",
    "discount_code": "discount code",
    "task": "task",
    "escalation": "escalation",
}

METRIC_WORDS: dict[str, tuple[str, str]] = {
    # metric: (what it counts, how the detail line reads)
    "order_count": ("orders", "Order count reached {value}"),
    "lifetime_spend": ("spent", "Lifetime spend reached {value}"),
    "api_calls": ("API calls", "API usage reached {value} calls"),
    "active_users": ("users", "Active users reached {value}"),
}


def format_number(text: str) -> str:
    value = Decimal(text)
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def format_money(amount: Decimal | str, currency: str) -> str:
    amount = Decimal(str(amount))
    symbol = {"USD": "$", "AUD": "A$", "CAD": "C$", "EUR": "€", "GBP": "£", "NZD": "NZ$"}.get(currency)
    whole = amount == amount.to_integral_value()
    figure = f"{int(amount):,}" if whole else f"{amount:,.2f}"
    return f"{symbol}{figure}" if symbol else f"{figure} {currency}"


def detail_line(metric: str | None, value: str, currency: str) -> str:
    if metric == "lifetime_spend":
        return METRIC_WORDS[metric][1].format(value=format_money(value, currency))
    if metric in METRIC_WORDS:
        return METRIC_WORDS[metric][1].format(value=format_number(value))
    if metric:
        return f"{metric.replace('_', ' ').replace('.', ' ')} reached {value}"
    return value


def milestone_detail(metric: str | None, tenure_only: bool, value: str, currency: str) -> str:
    """The "Details" line of a milestone: "Order count reached 25", "1 year as a customer"."""
    return f"{value} as a customer" if tenure_only else detail_line(metric, value, currency)


def joined(words: list[str]) -> str:
    """"A", "A and B", "A, B and C"."""
    if len(words) < 2:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def human_duration(delta: timedelta | None) -> str | None:
    """"8 months", "2 years 3 months", "12 days" — the way PRD-114's alert says it."""
    if delta is None:
        return None
    days = delta.days
    if days < 31:
        return f"{days} day{'s' if days != 1 else ''}"
    months = round(days / 30.4375)
    years, months = divmod(months, 12)
    parts = []
    if years:
        parts.append(f"{years} year{'s' if years != 1 else ''}")
    if months:
        parts.append(f"{months} month{'s' if months != 1 else ''}")
    return " ".join(parts) or "1 month"


def long_date(value: date | datetime) -> str:
    return f"{value:%b} {value.day}, {value.year}"


def month_year(value: date | datetime) -> str:
    return f"{value:%B %Y}"
