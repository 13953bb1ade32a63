"""SMTP: the celebration email sent as rendered, for merchants with neither HubSpot nor Klaviyo.

One connection per send: connect, EHLO, STARTTLS (unless turned off), AUTH when a username is
set, send a multipart/alternative message (text first, HTML preferred), QUIT. The
``Message-ID`` is derived from our idempotency key, so the message is recognisably the same
one however often it is sent. SMTP cannot tell us whether an earlier, interrupted attempt got
through, so :meth:`SmtpConnector.find_email` answers None and a crash mid-send may mean one
duplicate — the lesser harm than no thank-you at all.

Errors follow the reply codes (RFC 5321 §4.2.1): 4xx is transient, 5xx permanent; a refused or
dropped connection is transient; a certificate the server cannot prove is permanent (the
settings are wrong, retrying will not help).

https://docs.python.org/3/library/smtplib.html (SMTP, starttls, login, send_message, exceptions)
https://docs.python.org/3/library/email.message.html (EmailMessage, add_alternative)
https://www.rfc-editor.org/rfc/rfc5321#section-4.2.1 (reply code classes)
https://www.rfc-editor.org/rfc/rfc3207 (STARTTLS)
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import ssl
from collections.abc import Iterator, Mapping
from datetime import datetime
from email.message import EmailMessage as MimeMessage
from email.utils import formataddr, formatdate, parseaddr
from typing import Any, ClassVar

from marshmallow import ValidationError, fields, validate, validates

from connectors.base import Capability, Connector, SettingsSchema
from connectors.errors import ConnectorError
from connectors.http import HttpClient, excerpt
from connectors.payloads import EffectResult, EmailMessage

TIMEOUT_SECONDS = 30.0


class SmtpSettings(SettingsSchema):
    host = fields.String(required=True, metadata={"label": "SMTP host", "help": "e.g. smtp.example.com"})
    port = fields.Integer(
        load_default=587,
        validate=validate.Range(min=1, max=65535),
        metadata={"label": "Port", "help": "587 for submission with STARTTLS."},
    )
    username = fields.String(
        load_default=None, metadata={"label": "Username", "help": "Leave empty if the server needs no login."}
    )
    password = fields.String(load_default=None, metadata={"label": "Password", "secret": True})
    from_address = fields.String(
        required=True,
        metadata={"label": "From", "help": "Who the email is from, e.g. Red Hill Fresh <hello@redhillfresh.com>."},
    )
    starttls = fields.Boolean(
        load_default=True,
        metadata={"label": "Use STARTTLS", "help": "Upgrade the connection to TLS before logging in (recommended)."},
    )

    @validates("from_address")
    def _an_address(self, value: str, **_: Any) -> None:
        if "@" not in parseaddr(value)[1]:
            raise ValidationError("An email address, optionally with a name: Name <address@example.com>.")


def message_id(idempotency_key: str, from_address: str) -> str:
    """``<milestone.…@domain>``: the same key gives the same id, on the sender's domain."""
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "milestones.invalid"
    return f"<milestone.{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@{domain}>"


def mime_message(message: EmailMessage, from_address: str) -> MimeMessage:
    mime = MimeMessage()
    mime["From"] = from_address
    mime["To"] = formataddr((message.to_name or "", message.to_email))
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(localtime=False, usegmt=True)
    mime["Message-ID"] = message_id(message.idempotency_key, from_address)
    mime["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to us
    mime.set_content(message.text_body)
    mime.add_alternative(message.html_body, subtype="html")
    return mime


class SmtpConnector(Connector):
    platform: ClassVar[str] = "smtp"
    kind: ClassVar[str] = "email"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHECK_CONNECTION, Capability.SEND_EMAIL})
    settings_schema: ClassVar[type[SettingsSchema]] = SmtpSettings

    def __init__(
        self, settings: Mapping[str, Any], http: HttpClient | None = None, *, tls_context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(settings, http)
        self.tls_context = tls_context  # None: the system's trust store (tests pass their own CA)

    def check_connection(self) -> None:
        with self._session() as smtp:
            self._call(smtp.noop)

    def send_email(self, message: EmailMessage) -> EffectResult:
        from_address = str(self.setting("from_address"))
        mime = mime_message(message, from_address)
        with self._session() as smtp:
            self._call(smtp.send_message, mime, from_addr=parseaddr(from_address)[1], to_addrs=[message.to_email])
        return EffectResult(external_id=str(mime["Message-ID"]), detail={"host": self.setting("host")})

    def find_email(self, message: EmailMessage, since: datetime) -> EffectResult | None:
        return None  # SMTP keeps no record we could ask

    @contextlib.contextmanager
    def _session(self) -> Iterator[smtplib.SMTP]:
        host, port = str(self.setting("host")), int(self.settings.get("port") or 587)
        smtp: smtplib.SMTP = self._call(smtplib.SMTP, host, port, timeout=TIMEOUT_SECONDS)
        try:
            self._call(smtp.ehlo)
            if self.settings.get("starttls", True):
                self._call(smtp.starttls, context=self.tls_context or ssl.create_default_context())
                self._call(smtp.ehlo)
            if self.settings.get("username"):
                self._call(smtp.login, str(self.settings["username"]), str(self.settings.get("password") or ""))
            yield smtp
        finally:
            # Once the message is accepted, a failing QUIT must not turn the send into an error.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()

    def _call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """One SMTP step, its failure turned into a ConnectorError by reply code."""
        try:
            return func(*args, **kwargs)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b"recipient refused"))
            raise self._error("recipient refused", code, reply) from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, auth failed, …
            raise self._error(type(exc).__name__, exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise ConnectorError(f"smtp: the server does not support it: {exc}", permanent=True) from exc
        except ssl.SSLCertVerificationError as exc:
            raise ConnectorError(f"smtp: the server's certificate is not trusted: {exc.verify_message}",
                                 permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError and timeouts are OSErrors
            # refused or dropped connections, timeouts, DNS hiccups: try again later
            raise ConnectorError(f"smtp: {type(exc).__name__}: {excerpt(str(exc))}") from exc

    def _error(self, what: str, code: int, reply: bytes | str) -> ConnectorError:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return ConnectorError(f"smtp {what}: {code} {excerpt(text)}", permanent=code >= 500, status=code)
