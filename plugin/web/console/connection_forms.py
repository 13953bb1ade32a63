"""The connections page's forms and words: each platform's settings form read back from the
request, its errors put next to its fields, and what each platform is for in a merchant's terms.

The fields themselves come from the connector's settings schema (:func:`plugin.admin.connections.platforms`);
nothing here knows a platform's settings by name except which ones are "advanced".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from plugin.admin import connections as service
from plugin.secrets import MASK
from plugin.webhook_subscriptions import manifest, topics_for

NAME_MAX = 255
PREFIX = "setting-"  # form field name of a setting: setting-shop_domain
# Fields most merchants never touch: kept in a collapsed "Advanced" part of the form.
ADVANCED = frozenset({"base_url", "api_version", "revision", "login_url"})
KIND_ORDER = ("store", "crm", "chat", "email", "usage")
KIND_LABELS = {"store": "Store", "crm": "CRM", "chat": "Team chat", "email": "Email", "usage": "Product usage"}
ABILITIES = {
    "fetch_orders": "order reconciliation",
    "register_webhooks": "webhooks set up for you",
    "apply_store_credit": "store credit",
    "add_customer_tag": "customer tags",
    "create_discount_code": "discount codes",
    "add_timeline_note": "CRM notes",
    "send_email": "celebration emails",
    "post_alert": "team alerts",
}
FRIENDLIER = {
    "Missing data for required field.": "Required.",
    "Field may not be null.": "Required.",
    "Not a valid URL.": "Enter a full address, starting with https://.",
}


@dataclass(frozen=True)
class PlatformText:
    title: str
    blurb: str
    webhook_hint: str | None = None  # where the webhook URL goes, for platforms we do not register with


TEXT = {
    "shopify": PlatformText(
        "Shopify", "Orders and customers arrive by webhook; store credit, customer tags and discount codes go out.",
        "Registered with Shopify for you when you save: nothing to paste."),
    "woocommerce": PlatformText(
        "WooCommerce", "Your WordPress store: orders arrive by webhook; store credit, tags and coupons go out.",
        "Registered with WooCommerce for you when you save: nothing to paste."),
    "hubspot": PlatformText(
        "HubSpot", "Milestones are logged on the contact's timeline; ARR, health score and owner come in; "
        "it can send the celebration email.",
        "In your HubSpot app's Webhooks settings, set this as the target URL and subscribe to the events below."),
    "salesforce": PlatformText(
        "Salesforce", "Milestones are logged as completed tasks on the contact, for the account team to see."),
    "slack": PlatformText(
        "Slack", "Alerts your customer-success team the moment a customer reaches a milestone, with buttons to act.",
        "In your Slack app's Interactivity & Shortcuts settings, set this as the Request URL."),
    "klaviyo": PlatformText(
        "Klaviyo", "Triggers your celebration flow with a “Customer Milestone” event carrying the details."),
    "smtp": PlatformText("Email (SMTP)", "Sends the celebration email through your own mail server."),
    "usage": PlatformText(
        "Usage events", "Your product's usage (API calls, logins, features adopted) for usage milestones.",
        "Post signed usage events to this URL."),
}


def catalogue() -> list[dict[str, Any]]:
    """Every platform with its form fields and its words, stores first, then CRMs, chat, email, usage."""
    scopes = manifest().get("connectors", {})
    found = []
    for platform in service.platforms():
        name = platform["platform"]
        text = TEXT.get(name, PlatformText(name.replace("_", " ").title(), ""))
        found.append({
            **platform,
            "title": text.title,
            "blurb": text.blurb,
            "webhook_hint": text.webhook_hint,
            "kind_label": KIND_LABELS.get(platform["kind"], platform["kind"]),
            "abilities": [ABILITIES[c] for c in ABILITIES if c in platform["capabilities"]],
            "can_check": "check_connection" in platform["capabilities"],
            "topics": topics_for(name),
            "scopes": list(scopes.get(name, {}).get("scopes", [])),
            "basic_fields": [f for f in platform["fields"] if not _advanced(f)],
            "advanced_fields": [f for f in platform["fields"] if _advanced(f)],
        })
    order = {kind: index for index, kind in enumerate(KIND_ORDER)}
    return sorted(found, key=lambda p: (order.get(p["kind"], len(order)), p["title"]))


def _advanced(field_info: dict[str, Any]) -> bool:
    return field_info["name"] in ADVANCED or field_info["name"].startswith("previous_")


def defaults(platform: dict[str, Any]) -> dict[str, Any]:
    """What a new connection's form starts with: the schema's defaults."""
    return {f["name"]: f["default"] for f in platform["fields"] if f["default"] is not None}


@dataclass
class Submitted:
    """A settings form as it came back: what to save, and what to show again if it is refused."""

    name: str
    settings: dict[str, Any]
    shown: dict[str, Any]  # typed values, secrets excepted (only the mask is shown back)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def read(form: MultiDict[str, str], platform: dict[str, Any], *, creating: bool) -> Submitted:
    """The settings of ``platform`` from a posted form.

    A new connection leaves an empty field out (the schema's default applies); a saved one sends
    the default back, or null for a field without one, so clearing a field clears it. A secret
    that comes back as the mask keeps the stored one (the service knows the mask).
    """
    name = form.get("name", "").strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Give the connection a name, e.g. the store's name."
    elif len(name) > NAME_MAX:
        errors["name"] = f"At most {NAME_MAX} characters."
    settings: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    for info in platform["fields"]:
        key = info["name"]
        if info["type"] == "boolean":
            settings[key] = shown[key] = PREFIX + key in form
            continue
        raw = form.get(PREFIX + key, "").strip()
        shown[key] = (MASK if raw == MASK else "") if info["secret"] else raw
        if raw:
            settings[key] = raw
        elif not creating:
            settings[key] = info["default"]
    return Submitted(name=name, settings=settings, shown=shown, errors=errors)


def field_errors(details: dict[str, Any] | None) -> dict[str, str]:
    """The service's ``{"settings": {field: [messages]}}`` as one readable message per field."""
    found: dict[str, str] = {}
    for key, messages in ((details or {}).get("settings") or {}).items():
        if isinstance(messages, dict):  # a nested field's messages
            messages = [m for inner in messages.values() for m in (inner if isinstance(inner, list) else [inner])]
        listed = messages if isinstance(messages, list) else [messages]
        found[str(key)] = " ".join(FRIENDLIER.get(str(m), str(m)) for m in listed)
    return found


def in_order(platform: str, statuses: dict[str, str]) -> list[str]:
    """The topics of a registration outcome in plugin.json's order, the app-configured ones last
    (the stored outcome is JSON, whose key order the database does not keep)."""
    listed = {topic: index for index, topic in enumerate(topics_for(platform))}
    return sorted(statuses, key=lambda t: (topic_tone(statuses[t]) == "neutral", listed.get(t, len(listed)), t))


def topic_tone(status: str) -> str:
    """The badge tone of a webhook topic's registration status."""
    if status.startswith("error"):
        return "bad"
    if status in ("registered", "already registered", "created", "active", "reactivated"):
        return "good"
    if status.startswith("configured with the app"):
        return "neutral"
    return "warn"  # missing, wrong address, paused, disabled
