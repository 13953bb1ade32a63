"""HubSpot transactional email: the celebration as a single-send of an email designed in HubSpot.

The merchant designs one transactional email per template in HubSpot's email tool and saves it
for the single-send API; the connection's ``email_templates`` setting maps our template keys
to those emails' content ids. ``*`` is the email for any key not listed::

    {"order-10-thank-you": 123456789, "*": 123456790}
    "order-10-thank-you=123456789, *=123456790"      (the same, as the admin form's text)

We fill the email through ``customProperties`` (``{{ custom.first_name }}``,
``{{ custom.reward_lines_html }}``, ``{{ custom.message_html }}`` for our whole rendered
message…); custom properties take no arrays, so lists arrive joined or as an HTML list.
``contactProperties`` would be written onto the contact record, so only the first name goes
there. ``message.sendId`` is our idempotency key: HubSpot sends at most one email per sendId
(a repeat answers ``IDEMPOTENT_IGNORE``), so resending after a crash is harmless.

https://developers.hubspot.com/docs/api-reference/marketing-transactional-single-send-v3/single-send/post-marketing-v3-transactional-single-email-send
(POST /marketing/v3/transactional/single-email/send: emailId, message.to/sendId,
contactProperties, customProperties; answer status/statusId/sendResult; scope transactional-email)
https://developers.hubspot.com/docs/api-reference/marketing-single-send-v4/guide (sendId semantics)
sendResult values: the EmailSendStatusView enum of HubSpot's own client,
https://github.com/HubSpot/hubspot-api-python/blob/master/hubspot/marketing/transactional/models/email_send_status_view.py
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields

from connectors.errors import ConnectorError
from connectors.payloads import EffectResult, EmailMessage

SEND_PATH = "/marketing/v3/transactional/single-email/send"
ANY_TEMPLATE = "*"
SENT_RESULTS = frozenset({"SENT", "QUEUED", "IDEMPOTENT_IGNORE"})  # IGNORE: this sendId already went
TRANSIENT_RESULTS = frozenset({"THROTTLED"})
_PAIR = re.compile(r"^\s*([^=\s]+)\s*=\s*(\d+)\s*$")


def parse_template_ids(value: Any) -> dict[str, int]:
    """``{"key": id}`` from a mapping or from ``"key=id, key=id"`` (commas or newlines); ValueError if malformed."""
    if value in (None, ""):
        return {}
    if isinstance(value, Mapping):
        pairs = [(str(k).strip(), v) for k, v in value.items()]
    elif isinstance(value, str):
        pairs = []
        for part in re.split(r"[,\n]", value):
            if not part.strip():
                continue
            match = _PAIR.match(part)
            if match is None:
                raise ValueError(f"{part.strip()!r} is not template-key=email-id")
            pairs.append((match.group(1), match.group(2)))
    else:
        raise ValueError("a mapping of template key to HubSpot email id")
    ids: dict[str, int] = {}
    for key, raw in pairs:
        try:
            email_id = int(str(raw))
        except ValueError:
            raise ValueError(f"the HubSpot email id of {key!r} is not a number: {raw!r}") from None
        if not key or email_id <= 0:
            raise ValueError(f"{key!r}={raw!r} is not template-key=email-id")
        ids[key] = email_id
    return ids


class TemplateIds(fields.Field):
    """The ``email_templates`` setting: a mapping, or the admin form's ``key=id, key=id`` text."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> dict[str, int]:
        try:
            return parse_template_ids(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


def email_id_for(settings: Mapping[str, Any], template: str) -> int:
    try:
        ids = parse_template_ids(settings.get("email_templates"))
    except ValueError as exc:
        raise ConnectorError(f"hubspot: setting 'email_templates': {exc}", permanent=True) from exc
    email_id = ids.get(template) or ids.get(ANY_TEMPLATE)
    if email_id is None:
        raise ConnectorError(
            f"hubspot: no transactional email for template {template!r}; map it in the connection's "
            f"'email_templates' setting (or set '{ANY_TEMPLATE}')",
            permanent=True,
        )
    return email_id


def single_send_body(message: EmailMessage, email_id: int) -> dict[str, Any]:
    custom: dict[str, Any] = {
        **{k: v for k, v in message.properties.items() if not isinstance(v, list | dict)},
        "template": message.template,
        "subject": message.subject,
        "message_text": message.text_body,
        "message_html": message.html_body,
    }
    lines = [line for line in str(message.properties.get("reward_lines") or "").splitlines() if line]
    if lines:
        custom["reward_lines_html"] = "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"
    body: dict[str, Any] = {
        "emailId": email_id,
        "message": {"to": message.to_email, "sendId": message.idempotency_key},
        "customProperties": custom,
    }
    if message.properties.get("first_name"):
        body["contactProperties"] = {"firstname": message.properties["first_name"]}
    return body


def send_result(answer: Mapping[str, Any]) -> EffectResult:
    """The send's status as an EffectResult, or the ConnectorError HubSpot's answer amounts to."""
    result, state = answer.get("sendResult"), answer.get("status")
    if result in TRANSIENT_RESULTS:
        raise ConnectorError(f"hubspot single-send: {result}")
    if state == "CANCELED" or (result is not None and result not in SENT_RESULTS):
        raise ConnectorError(f"hubspot single-send: {state} {result or ''}".strip(), permanent=True)
    status_id = answer.get("statusId")
    return EffectResult(
        external_id=str(status_id) if status_id else None,
        detail={"status": state, "send_result": result, "requested_at": answer.get("requestedAt")},
    )
