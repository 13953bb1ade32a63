"""Salesforce: the milestone note as a completed Task on the Contact (or Lead), through REST.

A Task is the record a Salesforce user sees in the activity timeline of a contact and of its
account (``WhoId``/``WhatId``); a ContentNote would need Notes enabled, base64 content and a
separate ContentDocumentLink. We find the person by email with SOQL, a Contact first and then an
unconverted Lead, and create a Contact when the store knows a shopper the CRM does not.

Salesforce has no idempotency key for creating records. Each Task's description ends with a
marker line holding our key; :meth:`SalesforceConnector.find_timeline_note` reads the person's
Tasks created since the attempt began and matches the marker here, because ``Description`` is a
long text area and SOQL cannot filter on it.

Errors are JSON arrays ``[{"message": …, "errorCode": …}]``. :class:`~connectors.http.HttpClient`
already decides transient or permanent by status; we add Salesforce's codes and messages and
the two cases a status alone gets wrong: 401 (refresh the token once if we can, else tell the
admin to reconnect) and 403 ``REQUEST_LIMIT_EXCEEDED`` (transient, retried after a while).
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import requests
from marshmallow import fields, validate

from connectors.base import RECONCILE_SKEW, Capability, Connector, SettingsSchema, as_utc
from connectors.errors import ConnectorError
from connectors.http import HttpClient, excerpt
from connectors.payloads import EffectResult, TimelineNote

DEFAULT_API_VERSION = "v62.0"
SUBJECT_LIMIT = 255  # Task.Subject
DESCRIPTION_LIMIT = 32000  # Task.Description, a long text area
# The org's API allocation is a rolling 24 hours: retrying within seconds only burns attempts.
REQUEST_LIMIT_RETRY_AFTER = 3600.0
TROPHY = "🏆"

# https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_quotedstringescapes.htm
SOQL_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
BLOCK_END = re.compile(r"<\s*(?:br\s*/?|/p|/div|/li|/h[1-6]|/tr)\s*>", re.IGNORECASE)
TAG = re.compile(r"<[^>]*>")


class SalesforceSettings(SettingsSchema):
    instance_url = fields.Url(
        required=True,
        schemes={"https"},
        metadata={"label": "Instance URL", "help": "The org's address, e.g. https://acme.my.salesforce.com."},
    )
    access_token = fields.String(
        required=True,
        metadata={"label": "Access token", "help": "OAuth bearer token of a user who can create Contacts and Tasks.", "secret": True},
    )
    api_version = fields.String(
        load_default=DEFAULT_API_VERSION,
        validate=validate.Regexp(r"^v\d+\.\d$", error="A version such as v62.0."),
        metadata={"label": "API version", "help": "REST API version, vNN.0."},
    )
    refresh_token = fields.String(
        load_default=None,
        metadata={"label": "Refresh token", "help": "Lets us renew an expired access token.", "secret": True},
    )
    client_id = fields.String(
        load_default=None,
        metadata={"label": "Consumer key", "help": "The connected app's client_id; needed to refresh.", "secret": True},
    )
    client_secret = fields.String(
        load_default=None,
        metadata={"label": "Consumer secret", "help": "The connected app's client_secret, if it requires one.", "secret": True},
    )
    login_url = fields.Url(
        load_default=None,
        schemes={"https"},
        require_tld=False,
        metadata={"label": "Login URL", "help": "Token endpoint host; defaults to the instance (My Domain)."},
    )


class SalesforceError(ConnectorError):
    """A ConnectorError that also carries Salesforce's ``errorCode`` values."""

    def __init__(self, message: str, *, codes: frozenset[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.codes = codes


def soql_string(value: str) -> str:
    """A SOQL string literal, quotes included, with the reserved characters escaped."""
    return "'" + "".join(SOQL_ESCAPES.get(ch, ch) for ch in value) + "'"


def soql_datetime(value: datetime) -> str:
    """A SOQL dateTime literal (unquoted, UTC)."""
    return f"{as_utc(value):%Y-%m-%dT%H:%M:%SZ}"


def plain_text(body_html: str) -> str:
    """The note as text: block ends become line breaks, tags go, entities are decoded."""
    text = html.unescape(TAG.sub("", BLOCK_END.sub("\n", body_html)))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def clip(text: str, limit: int) -> str:
    """At most ``limit`` UTF-16 code units (an emoji counts two), the conservative reading of
    Salesforce's field lengths; an ellipsis marks the cut."""
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    kept: list[str] = []
    used = 1
    for ch in text:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            break
        kept.append(ch)
    return "".join(kept).rstrip() + "…"


def task_marker(idempotency_key: str) -> str:
    """The last line of the Task description: lets a later attempt recognise the Task as ours."""
    return f"[milestones:{idempotency_key}]"


def task_subject(note: TimelineNote) -> str:
    first_line = plain_text(note.body_html).partition("\n")[0]
    return clip(first_line if first_line.startswith(TROPHY) else f"{TROPHY} {first_line}".rstrip(), SUBJECT_LIMIT)


def task_description(note: TimelineNote) -> str:
    marker = task_marker(note.idempotency_key)
    return clip(plain_text(note.body_html), DESCRIPTION_LIMIT - len(marker) - 4) + "\n\n" + marker


def parse_errors(response: requests.Response) -> list[tuple[str, str]]:
    """``(errorCode, message)`` pairs of a Salesforce error body; empty when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return []
    items = body if isinstance(body, list) else [body]
    return [
        (str(item.get("errorCode", "")), str(item.get("message", "")))
        for item in items
        if isinstance(item, dict) and ("errorCode" in item or "message" in item)
    ]


class SalesforceConnector(Connector):
    """Talks to one org with an OAuth access token.

    With ``refresh_token`` and ``client_id`` set, a 401 triggers one refresh through the OAuth
    token endpoint and the call is retried. The new token lives in memory for this instance's
    lifetime (read it from :attr:`access_token`); persisting it is the caller's job.
    """

    platform: ClassVar[str] = "salesforce"
    kind: ClassVar[str] = "crm"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.CHECK_CONNECTION, Capability.ADD_TIMELINE_NOTE}
    )
    settings_schema: ClassVar[type[SettingsSchema]] = SalesforceSettings

    def __init__(self, settings: Mapping[str, Any], http: HttpClient | None = None) -> None:
        super().__init__(settings, http)
        self._refreshed_token: str | None = None

    @property
    def base_url(self) -> str:
        return (self.settings.get("base_url") or self.setting("instance_url")).rstrip("/")

    @property
    def login_url(self) -> str:
        return (self.settings.get("login_url") or self.base_url).rstrip("/")

    @property
    def api_version(self) -> str:
        return str(self.settings.get("api_version") or DEFAULT_API_VERSION)

    @property
    def access_token(self) -> str:
        return self._refreshed_token or str(self.setting("access_token"))

    def check_connection(self) -> None:
        # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api/resources_sobject_basic_info_get.htm
        described = self.call("GET", "/sobjects/Task").get("objectDescribe") or {}
        if described.get("createable") is False:
            raise ConnectorError("salesforce: this user cannot create Tasks", permanent=True)

    def add_timeline_note(self, note: TimelineNote) -> EffectResult:
        who_id, what_id = self.find_person(note.customer_email) or self.create_contact(note)
        # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api/dome_sobject_create.htm
        # https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm
        task: dict[str, Any] = {
            "Subject": task_subject(note),
            "Description": task_description(note),
            "WhoId": who_id,
            "Status": "Completed",
            "Priority": "Normal",
            "ActivityDate": note.occurred_at.date().isoformat(),  # the milestone's own (local) day
        }
        if what_id:
            task["WhatId"] = what_id
        created = self.call("POST", "/sobjects/Task", json=task)
        return EffectResult(external_id=self._created_id(created), detail={"who_id": who_id, "what_id": what_id})

    def find_timeline_note(self, note: TimelineNote, since: datetime) -> EffectResult | None:
        """This note's Task on the person, created since ``since``; or None."""
        person = self.find_person(note.customer_email)
        if person is None:
            return None  # nobody to hang a Task on, so the crashed attempt never created one
        who_id, _ = person
        marker = task_marker(note.idempotency_key)
        tasks = self.query(
            "SELECT Id, WhatId, Description, CreatedDate FROM Task"
            f" WHERE WhoId = {soql_string(who_id)} AND CreatedDate >= {soql_datetime(since - RECONCILE_SKEW)}"
            " ORDER BY CreatedDate DESC LIMIT 200"
        )
        for task in tasks:
            if marker in (line.strip() for line in str(task.get("Description") or "").splitlines()):
                return EffectResult(
                    external_id=str(task["Id"]),
                    detail={"who_id": who_id, "what_id": task.get("WhatId"), "reconciled": True},
                )
        return None

    def find_person(self, email: str) -> tuple[str, str | None] | None:
        """``(WhoId, AccountId)`` of the oldest Contact with this email, else of the oldest
        unconverted Lead (no account); oldest, so a retry picks the same record."""
        contacts = self.query(
            f"SELECT Id, AccountId FROM Contact WHERE Email = {soql_string(email)} ORDER BY CreatedDate ASC LIMIT 1"
        )
        if contacts:
            return str(contacts[0]["Id"]), contacts[0].get("AccountId") or None
        leads = self.query(
            f"SELECT Id FROM Lead WHERE Email = {soql_string(email)} AND IsConverted = false"
            " ORDER BY CreatedDate ASC LIMIT 1"
        )
        return (str(leads[0]["Id"]), None) if leads else None

    def create_contact(self, note: TimelineNote) -> tuple[str, str | None]:
        contact = {
            "LastName": note.customer_last_name or note.customer_email.partition("@")[0] or note.customer_email,
            "Email": note.customer_email,
        }
        if note.customer_first_name:
            contact["FirstName"] = note.customer_first_name
        try:
            created = self.call("POST", "/sobjects/Contact", json=contact)
        except SalesforceError as exc:
            # A duplicate rule blocked us: another worker (or a person) created it a moment ago.
            found = self.find_person(note.customer_email) if "DUPLICATES_DETECTED" in exc.codes else None
            if found is None:
                raise
            return found
        return self._created_id(created), None

    def query(self, soql: str) -> list[dict[str, Any]]:
        # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_query.htm
        return list(self.call("GET", "/query", params={"q": soql}).get("records") or [])

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One REST call under ``/services/data/{version}``, refreshing the token once on a 401."""
        try:
            return self._send(method, path, **kwargs)
        except SalesforceError as exc:
            if exc.status != 401 or not (self.settings.get("refresh_token") and self.settings.get("client_id")):
                raise
        self._refresh()
        return self._send(method, path, **kwargs)

    def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.base_url}/services/data/{self.api_version}{path}"
        headers = {"Authorization": f"Bearer {self.access_token}", "Accept": "application/json"}
        # HttpClient keeps only an excerpt of a failed body; a response hook on the same request
        # lets us read Salesforce's error codes without a second HTTP path.
        seen: list[requests.Response] = []
        hooks = {"response": [lambda response, **_: seen.append(response)]}
        try:
            answer = self.http.json(method, url, headers=headers, hooks=hooks, **kwargs)
        except ConnectorError as exc:
            if exc.status is None or not seen:
                raise
            raise self._error(method, path, exc, seen[-1]) from exc
        if not isinstance(answer, dict):
            raise ConnectorError(f"salesforce: unexpected answer from {method} {path}")
        return answer

    @staticmethod
    def _error(method: str, path: str, exc: ConnectorError, response: requests.Response) -> SalesforceError:
        errors = parse_errors(response)
        codes = frozenset(code for code, _ in errors if code)
        detail = "; ".join(f"{code}: {message}" if code else message for code, message in errors)
        message = f"salesforce: {method} {path} answered {exc.status}: {detail or excerpt(response.text)}"
        permanent, retry_after = exc.permanent, exc.retry_after
        if exc.status == 401:
            message += " (the access token is expired or revoked: reconnect Salesforce)"
            permanent = True
        elif "REQUEST_LIMIT_EXCEEDED" in codes:
            permanent, retry_after = False, retry_after or REQUEST_LIMIT_RETRY_AFTER
        return SalesforceError(message, codes=codes, permanent=permanent, retry_after=retry_after, status=exc.status)

    def _refresh(self) -> None:
        """A new access token from the refresh token, kept on this instance only."""
        # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_understanding_refresh_token_oauth.htm
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.setting("refresh_token"),
            "client_id": self.setting("client_id"),
        }
        if self.settings.get("client_secret"):
            form["client_secret"] = self.settings["client_secret"]
        try:
            answer = self.http.json(
                "POST", f"{self.login_url}/services/oauth2/token", data=form, headers={"Accept": "application/json"}
            )
        except ConnectorError as exc:
            if not exc.permanent:
                raise
            raise ConnectorError(
                f"salesforce: the refresh token was refused, reconnect Salesforce: {exc.message}",
                permanent=True,
                status=exc.status,
            ) from exc
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not token:
            raise ConnectorError("salesforce: the token endpoint answered without an access_token")
        self._refreshed_token = str(token)

    @staticmethod
    def _created_id(created: dict[str, Any]) -> str:
        if created.get("success") is False or not created.get("id"):
            raise ConnectorError(f"salesforce: record not created: {created.get('errors')}", permanent=True)
        return str(created["id"])
