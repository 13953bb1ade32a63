"""SMTP against a real SMTP server on 127.0.0.1 (aiosmtpd), with STARTTLS and AUTH where it matters.

https://aiosmtpd.aio-libs.org/en/latest/controller.html (Controller, handler hooks)
https://aiosmtpd.aio-libs.org/en/latest/smtp.html (tls_context, require_starttls, authenticator)
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from marshmallow import ValidationError

from connectors.errors import ConnectorError
from connectors.payloads import EmailMessage
from connectors.smtp import SmtpConnector, SmtpSettings, message_id

FROM = "Red Hill Fresh <hello@redhillfresh.test>"


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it received and refuses what it is told to."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    rcpt_reply: str | None = None  # e.g. "550 5.1.1 No such user"
    data_reply: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A plain SMTP server (no TLS, no AUTH)."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: the server's chain and the CA a client trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"rhf", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_mailbox(certificate: tuple[Path, Path]) -> Iterator[tuple[Mailbox, int, ssl.SSLContext]]:
    """A submission server that requires STARTTLS, then AUTH; and a client context that trusts it."""
    cert_file, key_file = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    box = Mailbox()
    controller = Controller(
        box, hostname="127.0.0.1", port=free_port(), tls_context=server_tls, require_starttls=True,
        authenticator=authenticator, auth_required=True, auth_require_tls=True,
    )
    controller.start()
    yield box, controller.port, ssl.create_default_context(cafile=str(cert_file))
    controller.stop()


def message(**overrides: Any) -> EmailMessage:
    fields: dict[str, Any] = {
        "idempotency_key": "8d1c6c52-0f55-4c1e-9a47-2f1d0c6b9e11:2:email",
        "to_email": "alice@example.com",
        "to_name": "Alice Nguyen",
        "template": "order-10-thank-you",
        "subject": "Alice, this is your 10th order!",
        "html_body": "<p>Hi Alice, this is your 10th order!</p>\n<ul><li>$5 credit added to account</li></ul>\n",
        "text_body": "Hi Alice, this is your 10th order!\n\n- $5 credit added to account\n",
        "properties": {"first_name": "Alice"},
    }
    return EmailMessage(**{**fields, **overrides})


def plain(port: int, **settings: Any) -> SmtpConnector:
    return SmtpConnector({"host": "127.0.0.1", "port": port, "from_address": FROM, "starttls": False, **settings})


def test_the_email_arrives_as_multipart_alternative_with_its_headers(mailbox):
    box, port = mailbox
    result = plain(port).send_email(message())

    [(mail_from, rcpt_tos, raw)] = box.messages
    assert mail_from == "hello@redhillfresh.test" and rcpt_tos == ["alice@example.com"]
    received = email.message_from_bytes(raw, policy=email.policy.default)
    assert received["From"] == FROM
    assert received["To"] == "Alice Nguyen <alice@example.com>"
    assert received["Subject"] == "Alice, this is your 10th order!"
    assert received["Message-ID"] == message_id(message().idempotency_key, FROM) == result.external_id
    assert received["Message-ID"].endswith("@redhillfresh.test>")
    assert received["Date"] and received["Auto-Submitted"] == "auto-generated"
    assert received.get_content_type() == "multipart/alternative"
    text, html = received.get_payload()
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert text.get_content().replace("\r\n", "\n") == "Hi Alice, this is your 10th order!\n\n- $5 credit added to account\n"
    assert "<li>$5 credit added to account</li>" in html.get_content()


def test_the_same_email_keeps_its_message_id_on_every_attempt(mailbox):
    box, port = mailbox
    plain(port).send_email(message())
    plain(port).send_email(message())
    ids = {email.message_from_bytes(raw)["Message-ID"] for _, _, raw in box.messages}
    assert len(box.messages) == 2 and len(ids) == 1
    assert message_id("other-key", FROM) not in ids


def test_starttls_then_login_then_send(tls_mailbox):
    box, port, trust = tls_mailbox
    smtp = SmtpConnector({"host": "127.0.0.1", "port": port, "from_address": FROM, "starttls": True,
                          "username": "rhf", "password": "s3cret"}, tls_context=trust)
    smtp.send_email(message())
    smtp.check_connection()
    assert len(box.messages) == 1


def test_a_wrong_password_is_permanent(tls_mailbox):
    box, port, trust = tls_mailbox
    smtp = SmtpConnector({"host": "127.0.0.1", "port": port, "from_address": FROM, "username": "rhf",
                          "password": "wrong"}, tls_context=trust)
    with pytest.raises(ConnectorError) as raised:
        smtp.send_email(message())
    assert raised.value.permanent and raised.value.status == 535 and box.messages == []


def test_a_certificate_the_client_cannot_verify_is_permanent(tls_mailbox):
    _, port, _ = tls_mailbox
    smtp = SmtpConnector({"host": "127.0.0.1", "port": port, "from_address": FROM, "username": "rhf",
                          "password": "s3cret"})  # the system trust store does not know our test CA
    with pytest.raises(ConnectorError, match="certificate is not trusted") as raised:
        smtp.send_email(message())
    assert raised.value.permanent


def test_a_server_that_requires_starttls_refuses_a_client_that_skips_it(tls_mailbox):
    _, port, _ = tls_mailbox
    with pytest.raises(ConnectorError) as raised:
        plain(port).send_email(message())
    assert raised.value.permanent and raised.value.status == 530


def test_starttls_on_a_server_without_it_is_permanent(mailbox):
    _, port = mailbox
    with pytest.raises(ConnectorError, match="does not support") as raised:
        plain(port, starttls=True).send_email(message())
    assert raised.value.permanent


def test_a_refused_connection_is_transient():
    with pytest.raises(ConnectorError) as raised:
        plain(free_port()).send_email(message())
    assert not raised.value.permanent and "ConnectionRefusedError" in raised.value.message


@pytest.mark.parametrize(
    "rcpt, data, code, permanent",
    [
        ("450 4.2.1 Mailbox busy, try later", None, 450, False),
        ("550 5.1.1 No such user", None, 550, True),
        (None, "451 4.3.0 Local error in processing", 451, False),
        (None, "552 5.3.4 Message too big", 552, True),
    ],
)
def test_reply_codes_decide_whether_to_try_again(mailbox, rcpt, data, code, permanent):
    box, port = mailbox
    box.rcpt_reply, box.data_reply = rcpt, data
    with pytest.raises(ConnectorError) as raised:
        plain(port).send_email(message())
    assert raised.value.status == code and raised.value.permanent is permanent


def test_a_resend_cannot_be_ruled_out(mailbox):
    _, port = mailbox
    assert plain(port).find_email(message(), datetime(2026, 1, 6, tzinfo=UTC)) is None


def test_settings_default_to_submission_with_starttls_and_keep_the_password_secret():
    schema = SmtpSettings()
    loaded = schema.load({"host": "smtp.example.com", "from_address": FROM, "password": "p"})
    assert (loaded["port"], loaded["starttls"]) == (587, True)
    assert schema.secret_fields() == {"password"}
    with pytest.raises(ValidationError, match="from_address"):
        schema.load({"host": "smtp.example.com", "from_address": "not an address"})
