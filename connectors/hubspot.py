"""HubSpot: a note on the contact's timeline, through the CRM v3 objects API (and celebration
emails as transactional single-sends, built in :mod:`connectors.hubspot_email`).

A note needs a contact to hang on: we find it by email and create it when the store knows a
shopper HubSpot does not. Two workers may race to create the same contact; HubSpot dedupes
contacts on email and answers the loser 409, who then reads the winner's record by email.

HubSpot has no idempotency key for creating notes. Each note carries an invisible marker with
our key, and :meth:`HubSpotConnector.find_timeline_note` looks for it among the notes created on
that contact since the attempt began. HubSpot sanitises note HTML and does not document whether
comments survive, so a note whose marker was stripped is still recognised by its timestamp and
its text.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

from marshmallow import fields

from connectors.base import RECONCILE_SKEW, Capability, Connector, SettingsSchema, as_utc
from connectors.errors import ConnectorError
from connectors.hubspot_email import SEND_PATH, TemplateIds, email_id_for, send_result, single_send_body
from connectors.hubspot_properties import DEFAULT_PROPERTY_MAP, OwnerEmails, PropertyMap
from connectors.payloads import EffectResult, EmailMessage, TimelineNote

# https://developers.hubspot.com/docs/api/crm/associations (note → contact, HUBSPOT_DEFINED)
NOTE_TO_CONTACT = 202
TAG = re.compile(r"<[^>]*>")
MARKER = "<!-- milestones:"


class HubSpotSettings(SettingsSchema):
    access_token = fields.String(
        required=True,
        metadata={
            "label": "Access token",
            "help": "Private app / OAuth token with crm.objects.contacts.read and .write.",
            "secret": True,
        },
    )
    client_secret = fields.String(
        required=True,
        metadata={"label": "Client secret", "help": "Signs webhooks (X-HubSpot-Signature-v3).", "secret": True},
    )
    previous_client_secret = fields.String(
        required=False,
        load_default=None,
        metadata={"label": "Previous client secret", "help": "Still accepted while a rotated secret rolls out.", "secret": True},
    )
    property_map = PropertyMap(
        load_default=lambda: dict(DEFAULT_PROPERTY_MAP),
        allow_none=True,
        metadata={
            "label": "CRM property mapping",
            "help": "property=target, comma separated; targets: arr, health_score, customer_since, owner_email, "
            "owner_id, metric:<name> (e.g. api_calls_total=metric:api_calls). See connectors/hubspot_properties.py.",
        },
    )
    owner_emails = OwnerEmails(
        load_default=None,
        metadata={
            "label": "Owner emails",
            "help": "HubSpot owner id=email, comma separated: routes Slack alerts to the CSM when a property maps to owner_id.",
        },
    )
    email_templates = TemplateIds(
        load_default=None,
        metadata={
            "label": "Transactional emails",
            "help": "template-key=HubSpot email id, comma separated (* for any other); needs transactional-email.",
            "enables": "send_email",  # without it, planning does not pick HubSpot to send email
        },
    )


def note_marker(idempotency_key: str) -> str:
    """The invisible tag that lets a later attempt recognise this note as ours."""
    key = html.escape(idempotency_key, quote=True).replace("--", "&#45;&#45;")
    return f"{MARKER}{key} -->"


def hubspot_time(value: datetime) -> str:
    """UTC with milliseconds, the form HubSpot documents for ``hs_timestamp``."""
    value = as_utc(value)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def epoch_ms(value: datetime) -> int:
    return int(as_utc(value).timestamp() * 1000)


def parse_time(value: str) -> datetime | None:
    """A HubSpot datetime property as read back: ISO 8601, or epoch milliseconds."""
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC) if value.isdigit() else as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def visible_text(body: str) -> str:
    """What a reader sees of a note body: tags dropped, entities decoded, whitespace folded."""
    return " ".join(html.unescape(TAG.sub(" ", body)).split())


class HubSpotConnector(Connector):
    platform: ClassVar[str] = "hubspot"
    kind: ClassVar[str] = "crm"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.CHECK_CONNECTION, Capability.ADD_TIMELINE_NOTE, Capability.SEND_EMAIL}
    )
    settings_schema: ClassVar[type[SettingsSchema]] = HubSpotSettings
    default_base_url: ClassVar[str] = "https://api.hubapi.com"

    def check_connection(self) -> None:
        # https://developers.hubspot.com/docs/api/crm/contacts (GET /crm/v3/objects/contacts)
        self.call("GET", "/crm/v3/objects/contacts", params={"limit": 1})

    def add_timeline_note(self, note: TimelineNote) -> EffectResult:
        contact_id = self.find_contact(note.customer_email) or self.create_contact(note)
        # https://developers.hubspot.com/docs/api/crm/notes (POST /crm/v3/objects/notes)
        created = self.call(
            "POST",
            "/crm/v3/objects/notes",
            json={
                "properties": {
                    "hs_timestamp": hubspot_time(note.occurred_at),
                    "hs_note_body": note.body_html + note_marker(note.idempotency_key),
                },
                "associations": [
                    {
                        "to": {"id": contact_id},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_CONTACT}],
                    }
                ],
            },
        )
        return EffectResult(external_id=str(created["id"]), detail={"contact_id": contact_id})

    def send_email(self, message: EmailMessage) -> EffectResult:
        """A single-send of the HubSpot email mapped to the template (see connectors.hubspot_email)."""
        email_id = email_id_for(self.settings, message.template)
        return send_result(self.call("POST", SEND_PATH, json=single_send_body(message, email_id)))

    def find_email(self, message: EmailMessage, since: datetime) -> EffectResult | None:
        return None  # HubSpot sends one email per sendId (our key): sending again is harmless

    def find_timeline_note(self, note: TimelineNote, since: datetime) -> EffectResult | None:
        """A note on this contact, created since ``since``, that is this one; or None.

        Search lags writes by a few seconds; a reconcile runs long after the crash, so that is moot.
        """
        contact_id = self.find_contact(note.customer_email)
        if contact_id is None:
            return None  # no contact, so the crashed attempt never got as far as the note
        # https://developers.hubspot.com/docs/api/crm/search (POST /crm/v3/objects/notes/search;
        # "associations.{objectType}" filters by associated record, datetimes in epoch ms)
        found = self.call(
            "POST",
            "/crm/v3/objects/notes/search",
            json={
                "filterGroups": [
                    {
                        "filters": [
                            {"propertyName": "associations.contact", "operator": "EQ", "value": contact_id},
                            {
                                "propertyName": "hs_createdate",
                                "operator": "GTE",
                                "value": str(epoch_ms(since - RECONCILE_SKEW)),
                            },
                        ]
                    }
                ],
                "properties": ["hs_note_body", "hs_timestamp", "hs_createdate"],
                "sorts": [{"propertyName": "hs_createdate", "direction": "DESCENDING"}],
                "limit": 100,
            },
        )
        for result in found.get("results", []):
            if self._is_this_note(result.get("properties") or {}, note):
                return EffectResult(external_id=str(result["id"]), detail={"contact_id": contact_id, "reconciled": True})
        return None

    @staticmethod
    def _is_this_note(properties: dict[str, Any], note: TimelineNote) -> bool:
        body = properties.get("hs_note_body") or ""
        if note_marker(note.idempotency_key) in body:
            return True
        if MARKER in body:
            return False  # ours, but another effect's
        stamp = parse_time(str(properties.get("hs_timestamp") or ""))
        same_time = stamp is not None and epoch_ms(stamp) == epoch_ms(note.occurred_at)
        return same_time and visible_text(body) == visible_text(note.body_html)

    def find_contact(self, email: str) -> str | None:
        # https://developers.hubspot.com/docs/api/crm/search (filterGroups, EQ on email)
        found = self.call(
            "POST",
            "/crm/v3/objects/contacts/search",
            json={
                "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}],
                "properties": ["email"],
                "limit": 1,
            },
        )
        results = found.get("results") or []
        return str(results[0]["id"]) if results else None

    def create_contact(self, note: TimelineNote) -> str:
        properties = {"email": note.customer_email}
        if note.customer_first_name:
            properties["firstname"] = note.customer_first_name
        if note.customer_last_name:
            properties["lastname"] = note.customer_last_name
        try:
            # https://developers.hubspot.com/docs/api/crm/contacts (POST /crm/v3/objects/contacts)
            created = self.call("POST", "/crm/v3/objects/contacts", json={"properties": properties})
        except ConnectorError as exc:
            if exc.status != 409:
                raise
            # Someone created it first. Read it by email (idProperty=email, same page) rather than
            # searching again: search may not have indexed a contact made a moment ago.
            created = self.call(
                "GET", f"/crm/v3/objects/contacts/{quote(note.customer_email, safe='@')}", params={"idProperty": "email"}
            )
        return str(created["id"])

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One authenticated CRM call; HTTP errors become ConnectorError in the HTTP client."""
        headers = {"Authorization": f"Bearer {self.setting('access_token')}", "Accept": "application/json"}
        answer = self.http.json(method, self.base_url + path, headers=headers, **kwargs)
        if not isinstance(answer, dict):
            raise ConnectorError(f"hubspot: unexpected answer from {method} {path}")
        return answer
