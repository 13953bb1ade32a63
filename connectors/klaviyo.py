"""Klaviyo: a celebration email as an event whose metric triggers the merchant's flow.

We do not send the email ourselves: we record a "Customer Milestone" event (the metric name is
a setting) on the shopper's profile, found or created by email, and the merchant's flow on that
metric sends it. The event's properties are our rendered fields (``subject``, ``message_text``,
``message_html``, the personalisation and the reward lines), so the flow's email can use either
Klaviyo's own design with ``{{ event.first_name }}`` or our whole message.

The event carries ``unique_id`` = our idempotency key, and Klaviyo records only the first
event with a given unique_id for a profile and metric, so sending again is harmless and
:meth:`KlaviyoConnector.find_email` need not look.

https://developers.klaviyo.com/en/reference/create_event (POST /api/events, 202 Accepted,
properties, unique_id, metric and profile by attributes; scope events:write)
https://developers.klaviyo.com/en/reference/events_api_overview (data model, limits)
https://developers.klaviyo.com/en/docs/authenticate_ (Authorization: Klaviyo-API-Key, revision header)
https://developers.klaviyo.com/en/reference/get_accounts (GET /api/accounts, scope accounts:read)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from marshmallow import fields, validate

from connectors.base import Capability, Connector, SettingsSchema
from connectors.errors import ConnectorError
from connectors.payloads import EffectResult, EmailMessage

DEFAULT_REVISION = "2026-01-15"
DEFAULT_METRIC = "Customer Milestone"
MAX_STRING = 100_000  # "A single string cannot be larger than 100 KB"


class KlaviyoSettings(SettingsSchema):
    api_key = fields.String(
        required=True,
        metadata={"label": "Private API key", "help": "pk_…; needs events:write (and accounts:read for the check).",
                  "secret": True},
    )
    metric_name = fields.String(
        load_default=DEFAULT_METRIC,
        validate=validate.Length(min=1, max=127),
        metadata={"label": "Metric name", "help": "The event that triggers your celebration flow."},
    )
    revision = fields.String(
        load_default=DEFAULT_REVISION,
        validate=validate.Regexp(r"^\d{4}-\d{2}-\d{2}(\.pre)?$", error="A revision such as 2026-01-15."),
        metadata={"label": "API revision", "help": "Klaviyo's dated API version (revision header)."},
    )


class KlaviyoConnector(Connector):
    platform: ClassVar[str] = "klaviyo"
    kind: ClassVar[str] = "email"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHECK_CONNECTION, Capability.SEND_EMAIL})
    settings_schema: ClassVar[type[SettingsSchema]] = KlaviyoSettings
    default_base_url: ClassVar[str] = "https://a.klaviyo.com"

    def check_connection(self) -> None:
        self.http.request("GET", f"{self.base_url}/api/accounts", headers=self._headers())

    def send_email(self, message: EmailMessage) -> EffectResult:
        metric = str(self.settings.get("metric_name") or DEFAULT_METRIC)
        self.http.request("POST", f"{self.base_url}/api/events", headers=self._headers(), json=event_body(message, metric))
        # 202 Accepted with no body: Klaviyo gives the event no id until it is processed.
        return EffectResult(external_id=None, detail={"unique_id": message.idempotency_key, "metric": metric})

    def find_email(self, message: EmailMessage, since: datetime) -> EffectResult | None:
        return None  # a second event with the same unique_id is dropped by Klaviyo

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Klaviyo-API-Key {self.setting('api_key')}",
            "revision": str(self.settings.get("revision") or DEFAULT_REVISION),
            "Accept": "application/vnd.api+json",
            "Content-Type": "application/vnd.api+json",
        }


def event_body(message: EmailMessage, metric: str) -> dict[str, Any]:
    """The JSON:API document of Create Event for this message."""
    properties: dict[str, Any] = {
        **message.properties,
        "template": message.template,
        "subject": message.subject,
        "message_text": message.text_body,
        "message_html": message.html_body,
    }
    too_long = [k for k, v in properties.items() if isinstance(v, str) and len(v.encode()) > MAX_STRING]
    if too_long:
        raise ConnectorError(f"klaviyo: event properties over 100 KB: {', '.join(too_long)}", permanent=True)
    profile: dict[str, Any] = {"email": message.to_email}
    for ours, theirs in (("first_name", "first_name"), ("last_name", "last_name")):
        if message.properties.get(ours):
            profile[theirs] = message.properties[ours]
    return {
        "data": {
            "type": "event",
            "attributes": {
                "properties": properties,
                "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
                "profile": {"data": {"type": "profile", "attributes": profile}},
                "unique_id": message.idempotency_key,
            },
        }
    }
