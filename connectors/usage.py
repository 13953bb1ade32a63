"""Usage events: a connection that only receives (``webhooks/usage.py``); nothing is called back.

It exists so that a usage source is configured like every other platform: its settings are
validated and its secrets encrypted by the same schema machinery. Secrets are Standard Webhooks
symmetric keys, ``whsec_`` + base64 of 24 to 64 random bytes
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, ClassVar

from marshmallow import ValidationError, fields

from connectors.base import Capability, Connector, SettingsSchema

PREFIX = "whsec_"
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64


def _whsec(value: Any) -> None:
    text = str(value or "").strip()
    if not text:
        return
    if not text.startswith(PREFIX):
        raise ValidationError(f"must start with {PREFIX}")
    encoded = text[len(PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(f"the part after {PREFIX} must be base64") from exc
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValidationError(f"must hold {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes of key, not {len(key)}")


class UsageSettings(SettingsSchema):
    signing_secret = fields.String(
        required=True,
        validate=_whsec,
        metadata={"label": "Signing secret", "help": "whsec_…; verifies webhook-signature.", "secret": True},
    )
    previous_signing_secret = fields.String(
        required=False,
        load_default=None,
        allow_none=True,
        validate=_whsec,
        metadata={
            "label": "Previous signing secret",
            "help": "Still accepted while the sender rotates to the new one; clear it afterwards.",
            "secret": True,
        },
    )


class UsageConnector(Connector):
    platform: ClassVar[str] = "usage"
    kind: ClassVar[str] = "usage"
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    settings_schema: ClassVar[type[SettingsSchema]] = UsageSettings
