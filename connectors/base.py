"""What every connector is: a platform name, a kind, a set of capabilities and a settings schema.

Connectors take plain data (the frozen dataclasses in :mod:`connectors.payloads`) and return
plain data; they import neither Flask nor the database, so each one is testable with
``responses`` alone. A connector implements only the methods of the capabilities it declares.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from marshmallow import Schema, fields

from connectors.errors import ConnectorError
from connectors.http import HttpClient
from connectors.payloads import (
    CsmNotice,
    CustomerTag,
    DiscountCode,
    EffectResult,
    EmailMessage,
    FetchedOrder,
    MilestoneAlert,
    StoreCredit,
    StoreCreditDebit,
    TimelineNote,
)

# How far before ``since`` a reconcile (``find_*``) still looks: our clock and the platform's
# disagree by a little, and the attempt was marked in flight just before the call went out.
RECONCILE_SKEW = timedelta(minutes=2)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already (SQLite hands them back naive)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Capability(StrEnum):
    CHECK_CONNECTION = "check_connection"
    REGISTER_WEBHOOKS = "register_webhooks"
    ADD_TIMELINE_NOTE = "add_timeline_note"
    APPLY_STORE_CREDIT = "apply_store_credit"
    SEND_EMAIL = "send_email"
    POST_ALERT = "post_alert"
    ADD_CUSTOMER_TAG = "add_customer_tag"
    CREATE_DISCOUNT_CODE = "create_discount_code"
    FETCH_ORDERS = "fetch_orders"
    DEBIT_STORE_CREDIT = "debit_store_credit"


class SettingsSchema(Schema):
    """Base of every connector's settings: field metadata also renders the admin form.

    ``metadata={"label": …, "help": …, "secret": True}``; secret fields are encrypted at rest
    and masked on read.
    """

    base_url = fields.Url(
        required=False,
        load_default=None,
        require_tld=False,
        metadata={"label": "API base URL", "help": "Replaces the platform's API host (sandbox, proxy, tests)."},
    )

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        return frozenset(
            name for name, field in cls._declared_fields.items() if field.metadata.get("secret")
        )


class Connector:
    platform: ClassVar[str]
    kind: ClassVar[str]  # "store", "crm", "chat", "email", "usage"
    capabilities: ClassVar[frozenset[Capability]]
    settings_schema: ClassVar[type[SettingsSchema]]
    default_base_url: ClassVar[str] = ""

    def __init__(self, settings: Mapping[str, Any], http: HttpClient | None = None) -> None:
        self.settings = dict(settings)
        self.http = http or HttpClient()

    @property
    def base_url(self) -> str:
        return (self.settings.get("base_url") or self.default_base_url).rstrip("/")

    def setting(self, name: str) -> Any:
        value = self.settings.get(name)
        if value in (None, ""):
            raise ConnectorError(f"{self.platform}: setting '{name}' is missing", permanent=True)
        return value

    # Capabilities. Each connector overrides the ones it declares.
    def check_connection(self) -> None:
        raise self._unsupported(Capability.CHECK_CONNECTION)

    def add_timeline_note(self, note: TimelineNote) -> EffectResult:
        raise self._unsupported(Capability.ADD_TIMELINE_NOTE)

    def find_timeline_note(self, note: TimelineNote, since: datetime) -> EffectResult | None:
        """After a crash mid-call: the note we may already have created, or None."""
        raise self._unsupported(Capability.ADD_TIMELINE_NOTE)

    def apply_store_credit(self, credit: StoreCredit) -> EffectResult:
        raise self._unsupported(Capability.APPLY_STORE_CREDIT)

    def find_store_credit(self, credit: StoreCredit, since: datetime) -> EffectResult | None:
        """After a crash mid-call: the credit we may already have applied, or None."""
        raise self._unsupported(Capability.APPLY_STORE_CREDIT)

    def debit_store_credit(self, debit: StoreCreditDebit) -> EffectResult:
        """Take a store credit back (a refund undid its milestone). A credit that can no longer
        be taken back (already spent, a used coupon) is a permanent error saying so."""
        raise self._unsupported(Capability.DEBIT_STORE_CREDIT)

    def find_store_credit_debit(self, debit: StoreCreditDebit, since: datetime) -> EffectResult | None:
        """After a crash mid-call: the debit we may already have made, or None."""
        raise self._unsupported(Capability.DEBIT_STORE_CREDIT)

    def post_alert(self, alert: MilestoneAlert) -> EffectResult:
        raise self._unsupported(Capability.POST_ALERT)

    def find_alert(self, alert: MilestoneAlert, since: datetime) -> EffectResult | None:
        """After a crash mid-call: the alert we may already have posted, or None."""
        raise self._unsupported(Capability.POST_ALERT)

    def post_notice(self, notice: CsmNotice) -> EffectResult:
        """A plain message to the account's CSM (no celebration buttons)."""
        raise self._unsupported(Capability.POST_ALERT)

    def find_notice(self, notice: CsmNotice, since: datetime) -> EffectResult | None:
        """After a crash mid-call: the notice we may already have posted, or None."""
        raise self._unsupported(Capability.POST_ALERT)

    def register_webhooks(self, delivery_url: str, topics: list[str]) -> dict[str, str]:
        """Make the platform deliver ``topics`` to ``delivery_url``, never twice. Per topic, a
        short status word (registered, already registered, created, reactivated, error: …)."""
        raise self._unsupported(Capability.REGISTER_WEBHOOKS)

    def webhook_status(self, delivery_url: str, topics: list[str]) -> dict[str, str]:
        """Per topic, whether the platform delivers it to ``delivery_url`` (and healthily)."""
        raise self._unsupported(Capability.REGISTER_WEBHOOKS)

    def changed_orders(self, since: datetime) -> list[FetchedOrder]:
        """Orders created or changed since ``since`` (reconciliation: webhooks get lost)."""
        raise self._unsupported(Capability.FETCH_ORDERS)

    def add_customer_tag(self, tag: CustomerTag) -> EffectResult:
        """Idempotent on every platform we support: a retry after a crash simply re-adds."""
        raise self._unsupported(Capability.ADD_CUSTOMER_TAG)

    def create_discount_code(self, discount: DiscountCode) -> EffectResult:
        raise self._unsupported(Capability.CREATE_DISCOUNT_CODE)

    def find_discount_code(self, discount: DiscountCode, since: datetime) -> EffectResult | None:
        """After a crash mid-call: the code we may already have created, or None."""
        raise self._unsupported(Capability.CREATE_DISCOUNT_CODE)

    def send_email(self, message: EmailMessage) -> EffectResult:
        raise self._unsupported(Capability.SEND_EMAIL)

    def find_email(self, message: EmailMessage, since: datetime) -> EffectResult | None:
        """After a crash mid-call: the send we may already have made, or None when the
        platform cannot tell (then the email is sent again: a duplicate thank-you is the
        lesser harm than none)."""
        raise self._unsupported(Capability.SEND_EMAIL)

    def _unsupported(self, capability: Capability) -> ConnectorError:
        return ConnectorError(f"{self.platform} cannot {capability.value}", permanent=True)
