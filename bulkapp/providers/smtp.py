"""Email through any SMTP server (STARTTLS, implicit TLS or plain), one connection per batch."""

from __future__ import annotations

import email.policy
import logging
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

from bulkapp.outbound import OutboundRefused, OutboundUnreachable, allow_private_default, check_host
from bulkapp.providers.base import (
    AuthenticationError,
    ConfigurationError,
    ConnectionCheck,
    OutboundMessage,
    OutcomeUnknown,
    PermanentError,
    Provider,
    ProviderError,
    SendResult,
    SettingField,
    TransientError,
)
from bulkapp.providers.errors import MAIL_ADDRESS_NOT_PUBLIC, MAIL_PORT_NOT_ALLOWED, MAIL_UNREACHABLE

SECURITY_CHOICES = ("starttls", "ssl", "none")
MAIL_PORTS = frozenset({25, 465, 587, 2525})  # the only ports called without WEBHOOK_ALLOW_PRIVATE_URLS
log = logging.getLogger("bulkapp.providers")


class _Pinned:
    """Connects to ``pinned_ip`` (the address the outbound guard checked) while smtplib keeps the host name
    for EHLO, SNI and the certificate check."""

    pinned_ip: str

    def _get_socket(self, host, port, timeout):  # noqa: ANN001, ANN202 - smtplib's own signature
        return super()._get_socket(self.pinned_ip, port, timeout)


class _PinnedSMTP(_Pinned, smtplib.SMTP):
    pass


class _PinnedSMTPSSL(_Pinned, smtplib.SMTP_SSL):
    pass


def _smtp_text(error: Any) -> str:
    return error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)


def _classify(code: int, text: str, what: str) -> ProviderError:
    """An SMTP reply as an error: 4xx is temporary (greylisting, mailbox busy), 5xx permanent."""
    reason = f"The mail server refused {what} ({code})."
    if 400 <= code < 500:
        return TransientError(reason, code=str(code), vendor_message=text)
    return PermanentError(reason, code=str(code), vendor_message=text)


class SmtpProvider(Provider):
    """An SMTP account: ``security`` is ``starttls`` (port 587), ``ssl`` (implicit TLS, port 465) or ``none``
    (a trusted relay). Server certificates are verified against the system CAs, or ``ca_file`` when set.

    The provider message id is the ``Message-ID`` header we generate (without angle brackets).
    """

    name = "smtp"
    label = "Email (SMTP)"
    channel = "email"
    preferred_batch_size = 50
    credential_fields = (
        SettingField("username", _l("Username"), required=False),
        SettingField("password", _l("Password"), secret=True, required=False),
    )
    config_fields = (
        SettingField("host", _l("SMTP server")),
        SettingField("port", _l("Port"), required=False, default=587),
        SettingField("security", _l("Security"), required=False, default="starttls", choices=SECURITY_CHOICES),
        SettingField("from_address", _l("From address")),
        SettingField("from_name", _l("From name"), required=False),
        SettingField("ca_file", _l("CA certificate file"), required=False, help=_l("Only for a private mail server.")),
        SettingField("timeout", _l("Timeout (seconds)"), required=False, default=30),
    )

    def __init__(self, credentials: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(credentials, config)
        if self.config["security"] not in SECURITY_CHOICES:
            raise ConfigurationError("Security must be starttls, ssl or none.", fields=["security"])

    @property
    def _server(self) -> str:
        return f"{self.config['host']}:{self.config['port']}"

    def _connect(self) -> smtplib.SMTP:
        """Connect, say EHLO, upgrade to TLS when configured and log in when a username is set."""
        host, port, timeout = str(self.config["host"]), int(self.config["port"]), float(self.config["timeout"])
        allow_private = allow_private_default()
        if not allow_private and port not in MAIL_PORTS:
            raise ConfigurationError(MAIL_PORT_NOT_ALLOWED, fields=["port"])
        try:
            pinned = check_host(host, port, allow_private=allow_private).ip
        except OutboundRefused as exc:
            log.warning("refused to call the mail server: %s", exc)
            raise ConfigurationError(MAIL_ADDRESS_NOT_PUBLIC, fields=["host"]) from exc
        except OutboundUnreachable as exc:
            log.warning("could not reach the mail server: %s", exc)
            raise TransientError(MAIL_UNREACHABLE % {"server": self._server}) from exc
        context = ssl.create_default_context(cafile=self.config.get("ca_file") or None)
        smtp: smtplib.SMTP | None = None
        try:
            if self.config["security"] == "ssl":
                smtp = _PinnedSMTPSSL(timeout=timeout, context=context)
            else:
                smtp = _PinnedSMTP(timeout=timeout)
            smtp.pinned_ip = pinned
            smtp._host = host  # what STARTTLS names (SNI, certificate); smtplib sets it only when given to __init__
            smtp.connect(host, port)
            smtp.ehlo()
            if self.config["security"] == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.credentials.get("username"):
                smtp.login(self.credentials["username"], self.credentials.get("password") or "")
            return smtp
        except smtplib.SMTPAuthenticationError as exc:
            _quietly_close(smtp)
            raise AuthenticationError(
                "The mail server rejected the username or password.",
                code=str(exc.smtp_code),
                vendor_message=_smtp_text(exc.smtp_error),
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            _quietly_close(smtp)
            raise PermanentError(f"The mail server at {self._server} does not support this: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            _quietly_close(smtp)
            log.warning("mail server %s: %r", self._server, exc)
            raise PermanentError(
                f"The mail server's certificate could not be verified ({exc.verify_message})."
            ) from exc
        except smtplib.SMTPResponseException as exc:
            _quietly_close(smtp)
            raise _classify(exc.smtp_code, _smtp_text(exc.smtp_error), "the connection") from exc
        except OSError as exc:  # refused, timed out, reset, TLS failure: nothing was sent yet, and all read the same
            _quietly_close(smtp)
            log.warning("could not reach the mail server %s: %r", self._server, exc)
            raise TransientError(MAIL_UNREACHABLE % {"server": self._server}) from exc

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        presets: dict[int, SendResult] = {}
        groups: list[list[int]] = []
        addresses: dict[int, str] = {}
        for i, message in enumerate(messages):
            try:
                addresses[i] = validate_email(message.to, check_deliverability=False).normalized
            except EmailNotValidError as exc:
                presets[i] = SendResult.rejected(
                    message.id, f"This is not a valid email address: {exc}", code="invalid_address"
                )
                continue
            groups.append([i])
        if not groups:
            return [presets[i] for i in range(len(messages))]
        smtp = self._connect()

        def send(batch: list[OutboundMessage]) -> list[SendResult]:
            return [self._send_one(smtp, batch[0])]

        try:
            return self.send_groups(messages, groups, send, presets)
        finally:
            _quietly_close(smtp, quit=True)

    def _build(self, message: OutboundMessage) -> EmailMessage:
        from_address = message.sender or str(self.config["from_address"])
        mail = EmailMessage(policy=email.policy.SMTP)
        mail["From"] = formataddr((self.config.get("from_name") or "", from_address))
        mail["To"] = message.to
        mail["Subject"] = message.subject or ""
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(idstring=f"bulkapp.{message.id}", domain=from_address.rsplit("@", 1)[-1])
        mail.set_content(message.body)
        return mail

    def _send_one(self, smtp: smtplib.SMTP, message: OutboundMessage) -> SendResult:
        """MAIL, RCPT and DATA step by step: a failure before DATA certainly sent nothing, a broken connection
        during DATA may have delivered the message."""
        mail = self._build(message)
        from_address = message.sender or str(self.config["from_address"])
        try:
            code, reply = smtp.mail(from_address)
            if code != 250:
                smtp.rset()
                raise _classify(code, _smtp_text(reply), f"the sender {from_address}")
            code, reply = smtp.rcpt(message.to)
            if code not in (250, 251):
                smtp.rset()
                error = _classify(code, _smtp_text(reply), f"the recipient {message.to}")
                if isinstance(error, TransientError):
                    return SendResult.deferred(message.id, error.reason, code=error.code)
                return SendResult.rejected(message.id, error.describe(), code=error.code)
        except OSError as exc:  # smtplib's errors are OSErrors too: the connection broke before DATA
            raise TransientError("The mail server closed the connection; this message was not sent.") from exc
        try:
            smtp.data(mail.as_bytes())
        except smtplib.SMTPDataError as exc:
            error = _classify(exc.smtp_code, _smtp_text(exc.smtp_error), "the message")
            if isinstance(error, TransientError):
                return SendResult.deferred(message.id, error.reason, code=error.code)
            return SendResult.rejected(message.id, error.describe(), code=error.code)
        except OSError as exc:
            log.warning("mail server %s broke while sending: %r", self._server, exc)
            raise OutcomeUnknown(
                "The connection to the mail server broke while sending; the message may have been delivered."
            ) from exc
        return SendResult.accepted(message.id, mail["Message-ID"].strip("<>"))

    def test_connection(self) -> ConnectionCheck:
        try:
            smtp = self._connect()
        except ProviderError as exc:
            return ConnectionCheck(False, exc.describe())
        _quietly_close(smtp, quit=True)
        who = f" as {self.credentials['username']}" if self.credentials.get("username") else ""
        return ConnectionCheck(True, f"Connected to {self._server} ({self.config['security']}){who}.")


def _quietly_close(smtp: smtplib.SMTP | None, *, quit: bool = False) -> None:
    if smtp is None:
        return
    try:
        if quit:
            smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


def platform_mailer(settings: Mapping[str, Any]) -> SmtpProvider:
    """The platform's own mail server (account and notification emails), from the app's ``MAIL_*`` settings."""
    name, address = parseaddr(settings["MAIL_FROM"])
    return SmtpProvider(
        {"username": settings["MAIL_USERNAME"], "password": settings["MAIL_PASSWORD"]},
        {"host": settings["MAIL_HOST"], "port": settings["MAIL_PORT"], "security": settings["MAIL_SECURITY"],
         "from_address": address, "from_name": name or "Bulkapp"},
    )  # fmt: skip
