"""SMTP adapter against a real aiosmtpd server on loopback: STARTTLS, implicit TLS, plain, AUTH, refusals."""

from __future__ import annotations

import socket
import ssl
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bulkapp.providers.base import (
    AuthenticationError,
    ConfigurationError,
    OutboundMessage,
    PermanentError,
    SendStatus,
    TransientError,
)
from bulkapp.providers.smtp import SmtpProvider
from tests.simulators.tls import self_signed_certificate

USER, PASSWORD = "mailer@bulkapp.test", "s3cret-pass"


class Mailbox:
    """aiosmtpd handler: keeps every accepted message; ``nobody@`` is refused for good, ``busy@`` for now."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook name
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user here"
        if address.startswith("busy@"):
            return "450 4.2.1 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), as PEM files."""
    return self_signed_certificate(
        tmp_path_factory.mktemp("smtp-tls"), "bulkapp test mail", dns_names=("localhost",), ip_addresses=("127.0.0.1",)
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def mail_server(certificate):
    """STARTTLS required, AUTH only after TLS: the usual submission port setup."""
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    controller.mailbox = mailbox
    yield controller
    controller.stop()


def settings(server, certificate, **config):
    return {"username": USER, "password": PASSWORD}, {
        "host": "127.0.0.1",
        "port": server.port,
        "security": "starttls",
        "from_address": "noreply@bulkapp.test",
        "from_name": "Acme Ltd",
        "ca_file": str(certificate[0]),
        "timeout": 5,
        **config,
    }


def mail(
    message_id: int, to: str, subject: str = "Your receipt", body: str = "Asante sana! Total: KSh 1,200"
) -> OutboundMessage:
    return OutboundMessage(message_id, to, body, channel="email", subject=subject)


def test_starttls_login_and_send(mail_server, certificate):
    provider = SmtpProvider(*settings(mail_server, certificate))
    results = provider.send_batch([mail(1, "jane@example.com"), mail(2, "otieno@example.com", body="Karibu 😀")])

    assert [r.status for r in results] == [SendStatus.ACCEPTED] * 2
    assert results[0].provider_message_id.endswith(".bulkapp.1@bulkapp.test")
    assert [(sender, rcpts) for sender, rcpts, _ in mail_server.mailbox.messages] == [
        ("noreply@bulkapp.test", ["jane@example.com"]),
        ("noreply@bulkapp.test", ["otieno@example.com"]),
    ]
    parsed = message_from_bytes(mail_server.mailbox.messages[1][2])
    assert parsed["Subject"] == "Your receipt" and parsed["From"] == "Acme Ltd <noreply@bulkapp.test>"
    assert parsed["Message-ID"].strip("<>") == results[1].provider_message_id
    assert parsed.get_payload(decode=True).decode().rstrip() == "Karibu 😀"


def test_refused_recipients_and_invalid_addresses(mail_server, certificate):
    provider = SmtpProvider(*settings(mail_server, certificate))
    results = provider.send_batch(
        [
            mail(1, "nobody@example.com"),
            mail(2, "busy@example.com"),
            mail(3, "not an address"),
            mail(4, "ok@example.com"),
        ]
    )
    assert [r.status for r in results] == [
        SendStatus.REJECTED,
        SendStatus.DEFERRED,
        SendStatus.REJECTED,
        SendStatus.ACCEPTED,
    ]
    assert results[0].code == "550" and "No such user here" in results[0].reason
    assert results[1].code == "450"
    assert results[2].code == "invalid_address"
    assert [rcpts for _, rcpts, _ in mail_server.mailbox.messages] == [["ok@example.com"]]


def test_wrong_password(mail_server, certificate):
    credentials, config = settings(mail_server, certificate)
    provider = SmtpProvider({**credentials, "password": "wrong"}, config)
    with pytest.raises(AuthenticationError) as caught:
        provider.send_batch([mail(1, "jane@example.com")])
    assert caught.value.code == "535"
    ok, message = provider.test_connection()
    assert not ok and "username or password" in message and "Authentication credentials invalid" in message


def test_test_connection_does_ehlo_tls_and_login(mail_server, certificate):
    provider = SmtpProvider(*settings(mail_server, certificate))
    assert provider.test_connection() == (True, f"Connected to 127.0.0.1:{mail_server.port} (starttls) as {USER}.")


def test_untrusted_certificate_is_a_permanent_error(mail_server, certificate):
    provider = SmtpProvider(*settings(mail_server, certificate, ca_file=""))
    with pytest.raises(PermanentError, match="certificate could not be verified"):
        provider.send_batch([mail(1, "jane@example.com")])


def test_server_without_starttls_is_reported(certificate):
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        provider = SmtpProvider(*settings(controller, certificate))
        ok, message = provider.test_connection()
        assert not ok and "does not support" in message
        plain = SmtpProvider({}, settings(controller, certificate, security="none")[1])
        assert plain.send_batch([mail(1, "jane@example.com")])[0].status is SendStatus.ACCEPTED
    finally:
        controller.stop()


def test_implicit_tls(certificate):
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        ssl_context=server_context(certificate),
        authenticator=authenticator,
        auth_require_tls=False,  # aiosmtpd only counts STARTTLS as TLS; this whole connection is TLS
    )
    controller.start()
    try:
        provider = SmtpProvider(*settings(controller, certificate, security="ssl"))
        assert provider.send_batch([mail(1, "jane@example.com")])[0].status is SendStatus.ACCEPTED
        assert len(mailbox.messages) == 1
    finally:
        controller.stop()


def test_connection_refused_is_transient(certificate):
    credentials, config = {}, {"host": "127.0.0.1", "port": free_port(), "from_address": "a@b.test", "timeout": 2}
    provider = SmtpProvider(credentials, config)
    with pytest.raises(TransientError) as caught:
        provider.send_batch([mail(1, "jane@example.com")])
    reached = f"We could not reach the mail server 127.0.0.1:{config['port']}. Check the server name and port and"
    assert caught.value.describe() == reached + " try again."  # no "[Errno 111] Connection refused"
    assert provider.test_connection() == (False, reached + " try again.")


def test_production_calls_only_mail_ports_of_public_addresses(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", False)
    with app.app_context():
        odd_port = SmtpProvider({}, {"host": "mail.example.com", "port": 8080, "from_address": "a@b.test"})
        with pytest.raises(ConfigurationError) as caught:
            odd_port.send_batch([mail(1, "jane@example.com")])
        assert caught.value.fields == ("port",) and "587, 465, 25 or 2525" in caught.value.reason
        for host in ("127.0.0.1", "[64:ff9b::7f00:1]", "10.0.0.5"):
            private = SmtpProvider({}, {"host": host, "port": 587, "from_address": "a@b.test"})
            with pytest.raises(ConfigurationError, match="not on a public internet address"):
                private.send_batch([mail(1, "jane@example.com")])


def test_only_invalid_addresses_need_no_connection():
    provider = SmtpProvider({}, {"host": "127.0.0.1", "port": 1, "from_address": "a@b.test"})
    [result] = provider.send_batch([mail(1, "nope")])
    assert result.status is SendStatus.REJECTED
