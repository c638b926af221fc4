"""The provider interface: plain messages in, typed results out; webhook requests and shared helpers.

The errors (:mod:`~bulkapp.providers.errors`), the HTTP transport (:mod:`~bulkapp.providers.http`) and the
webhook request and parsers (:mod:`~bulkapp.providers.webhooks`) are re-exported here for the vendor modules.
Every vendor module builds on this file and nothing here touches the database or Flask's request globals:
the send pipeline and the webhook endpoints hand adapters plain data and store what comes back.
"""

from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal, NamedTuple, Self
from urllib.parse import quote, quote_plus

import requests
from flask_babel import force_locale

from bulkapp.providers import http
from bulkapp.providers.errors import AuthenticationError as AuthenticationError
from bulkapp.providers.errors import ConfigurationError as ConfigurationError
from bulkapp.providers.errors import MalformedPayload as MalformedPayload
from bulkapp.providers.errors import NotSupported as NotSupported
from bulkapp.providers.errors import OutcomeUnknown as OutcomeUnknown
from bulkapp.providers.errors import PermanentError as PermanentError
from bulkapp.providers.errors import ProviderError as ProviderError
from bulkapp.providers.errors import TransientError as TransientError
from bulkapp.providers.http import decode_json as decode_json
from bulkapp.providers.http import new_session as new_session
from bulkapp.providers.http import retry_after_seconds as retry_after_seconds
from bulkapp.providers.webhooks import NAIROBI as NAIROBI
from bulkapp.providers.webhooks import WebhookRequest as WebhookRequest
from bulkapp.providers.webhooks import e164_or_none as e164_or_none
from bulkapp.providers.webhooks import national_digits as national_digits
from bulkapp.providers.webhooks import parse_time as parse_time
from bulkapp.providers.webhooks import to_e164 as to_e164
from bulkapp.providers.webhooks import token_matches as token_matches
from bulkapp.providers.webhooks import utcnow as utcnow

ChannelKind = Literal["sms", "whatsapp", "email"]


# ---------------------------------------------------------------------------------------- data types


class SendStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # the vendor took it; ``provider_message_id`` names it (may be None, Onfon)
    REJECTED = "rejected"  # refused for good (invalid number, opted out, unapproved sender ...): do not retry
    UNKNOWN = "unknown"  # may have reached the vendor (timeout or reset after sending): never resend blindly
    DEFERRED = "deferred"  # certainly not sent (a batch stopped early): safe to send again later


class DeliveryStatus(enum.StrEnum):
    SENT = "sent"  # the vendor or carrier has it, no final outcome yet
    DELIVERED = "delivered"  # reached the handset (WhatsApp "read" is also delivered)
    FAILED = "failed"  # final failure
    UNKNOWN = "unknown"  # the vendor itself does not know


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to send, as the pipeline hands it to a provider.

    ``to`` is E.164 (``+254712345678``) for SMS and WhatsApp, an address for email. ``sender`` overrides the
    channel's configured sender ID / number / from address. WhatsApp template sends set ``template_name``,
    ``template_language`` and ``template_params`` (body parameters in order); free-text WhatsApp sends need
    ``last_inbound_at`` (the customer's last message to us) because Meta refuses them outside the 24-hour
    window. ``callback_url`` is where vendors that take a per-message status URL (Twilio) should report.
    """

    id: int | str
    to: str
    body: str = ""
    sender: str | None = None
    channel: ChannelKind = "sms"
    subject: str | None = None
    template_name: str | None = None
    template_language: str | None = None
    template_params: tuple[str, ...] = ()
    callback_url: str | None = None
    last_inbound_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What happened to one :class:`OutboundMessage`; ``message_id`` is our id, results keep the input order.

    ``reason`` is a plain sentence (the vendor's words are folded in where they help), ``code`` the vendor's
    code, ``retry_after`` a hint in seconds for ``deferred`` results, ``cost`` the vendor's charge when it says.
    """

    message_id: int | str
    status: SendStatus
    provider_message_id: str | None = None
    code: str | None = None
    reason: str | None = None
    retry_after: float | None = None
    cost: Decimal | None = None

    @classmethod
    def accepted(cls, message_id: int | str, provider_message_id: str | None, *, cost: Decimal | None = None) -> Self:
        return cls(message_id, SendStatus.ACCEPTED, provider_message_id=provider_message_id, cost=cost)

    @classmethod
    def rejected(cls, message_id: int | str, reason: str, *, code: str | None = None) -> Self:
        return cls(message_id, SendStatus.REJECTED, code=code, reason=reason)

    @classmethod
    def unknown(cls, message_id: int | str, reason: str) -> Self:
        return cls(message_id, SendStatus.UNKNOWN, reason=reason)

    @classmethod
    def deferred(
        cls, message_id: int | str, reason: str, *, code: str | None = None, retry_after: float | None = None
    ) -> Self:
        return cls(message_id, SendStatus.DEFERRED, code=code, reason=reason, retry_after=retry_after)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A status change for a message we sent, parsed from a vendor webhook.

    ``vendor_status`` is the raw word (``DELIVRD``, ``read``, ``undelivered``); ``occurred_at`` is timezone-aware
    UTC, or None when the vendor gave no usable time (use the time of receipt). ``reference`` is our own message
    id when the vendor echoes it (WhatsApp ``biz_opaque_callback_data``, UltraMsg ``referenceId``).
    """

    provider_message_id: str
    status: DeliveryStatus
    vendor_status: str
    error_code: str | None = None
    error_reason: str | None = None
    occurred_at: datetime | None = None
    recipient: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a customer sent us. ``sender`` is E.164; ``received_at`` is timezone-aware UTC."""

    sender: str
    to: str | None
    text: str
    provider_message_id: str | None
    received_at: datetime
    channel: ChannelKind
    sender_name: str | None = None
    kind: str = "text"  # the vendor's message type when it is not plain text (image, button, ...)
    media_urls: tuple[str, ...] = ()  # links to attachments at the vendor (Twilio MMS), never fetched by us


@dataclass(frozen=True, slots=True)
class Balance:
    """A vendor account balance, exact; ``raw`` is the vendor's own string (``"KSh7578560.8000"``)."""

    amount: Decimal
    currency: str | None
    raw: str


class ConnectionCheck(NamedTuple):
    """The answer to the settings page's "Test connection" button; ``message`` carries the vendor's own text."""

    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class SettingField:
    """One field of a channel's settings form: stored in ``credentials`` (encrypted) or in ``config``."""

    name: str
    label: str  # label and help are lazy (_l): words in the reader's language where a form shows them
    secret: bool = False
    required: bool = True
    default: str | int | None = None
    help: str = ""
    choices: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------- the base


class Provider(ABC):
    """One vendor account (a tenant's channel), built from the settings form's ``credentials`` and ``config``.

    Subclasses declare ``name`` (the registry key stored in ``channels.provider``), ``label``, ``channel``,
    their ``credential_fields`` / ``config_fields`` and ``preferred_batch_size`` (how many messages the
    pipeline should hand to one :meth:`send_batch` call). ``signs_webhooks`` tells whether
    :meth:`verify_request` checks a vendor signature (True) or the channel token in ``?token=`` (False).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    channel: ClassVar[ChannelKind]
    credential_fields: ClassVar[tuple[SettingField, ...]] = ()
    config_fields: ClassVar[tuple[SettingField, ...]] = ()
    preferred_batch_size: ClassVar[int] = 50
    signs_webhooks: ClassVar[bool] = False

    def __init__(self, credentials: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None) -> None:
        self.credentials, missing = _settings(self.credential_fields, credentials)
        self.config, missing_config = _settings(self.config_fields, config)
        missing += missing_config
        if missing:
            with force_locale("en"):  # provider errors are English, like the vendors' own messages
                labels = ", ".join(str(spec.label) for spec in missing)
            raise ConfigurationError(f"{self.label} needs: {labels}.", fields=[spec.name for spec in missing])

    def redact(self, text: str) -> str:
        """``text`` with this account's secrets blanked out."""
        return redact_secrets(text, self.credential_fields, self.credentials)

    # -- sending

    @abstractmethod
    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        """Send ``messages`` and return one :class:`SendResult` per message, in input order.

        Uses the vendor's batch API where it has one, else one request per message on the pooled session.
        Per-message outcomes are results, never exceptions: ``accepted``, ``rejected`` (with a plain reason),
        ``unknown`` (the request may have reached the vendor: a read timeout or a reset after sending; never
        resend these) and ``deferred`` (certainly not sent because the batch stopped early; safe to retry).

        Raises :class:`TransientError` or :class:`PermanentError` (e.g. :class:`AuthenticationError`) only when
        the vendor refused the first request as a whole, so that no message of the batch was accepted.
        """

    def fetch_balance(self) -> Balance | None:
        """The vendor account balance, or None when the vendor has no balance API."""
        return None

    @abstractmethod
    def test_connection(self) -> ConnectionCheck:
        """Check the credentials with a harmless call; the message carries the vendor's own error text."""

    # -- webhooks

    def verify_request(self, request: WebhookRequest, *, webhook_token: str | None = None) -> bool:
        """True when ``request`` really comes from the vendor for this channel.

        Vendors without signatures: the ``?token=`` query argument must equal the channel's ``webhook_token``
        (constant-time compare). Vendors that sign (Twilio, Meta) override this and ignore ``webhook_token``.
        """
        return token_matches(request.args.get("token"), webhook_token)

    def parse_delivery_report(self, request: WebhookRequest) -> list[DeliveryReport]:
        """Delivery reports in a verified webhook; [] when the webhook carries none (e.g. an inbound message).
        Raises :class:`MalformedPayload` for a payload that cannot be understood."""
        raise NotSupported(f"{self.label} does not send delivery reports to us.")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Customer messages in a verified webhook; [] when it carries none (e.g. a status update).
        Raises :class:`MalformedPayload` for a payload that cannot be understood."""
        raise NotSupported(f"{self.label} does not send incoming messages to us.")

    # -- lifetime

    def close(self) -> None:  # noqa: B027 - nothing to release unless a subclass holds connections
        """Release pooled connections (only those this instance created)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers for subclasses

    def send_each(
        self,
        messages: Sequence[OutboundMessage],
        local_problem: Callable[[OutboundMessage], SendResult | None],
        send_one: Callable[[OutboundMessage], SendResult],
    ) -> list[SendResult]:
        """One request per message (:meth:`send_groups` with groups of one); a message ``local_problem`` finds
        fault with (a bad number, an empty text ...) is rejected without a request."""
        presets: dict[int, SendResult] = {}
        groups: list[list[int]] = []
        for i, message in enumerate(messages):
            problem = local_problem(message)
            if problem:
                presets[i] = problem
            else:
                groups.append([i])
        return self.send_groups(messages, groups, lambda batch: [send_one(batch[0])], presets)

    def send_groups(
        self,
        messages: Sequence[OutboundMessage],
        groups: Sequence[Sequence[int]],
        send_group: Callable[[list[OutboundMessage]], list[SendResult]],
        presets: Mapping[int, SendResult] | None = None,
    ) -> list[SendResult]:
        """Send ``groups`` (lists of indexes into ``messages``) one request at a time and merge the results
        back into input order; ``presets`` are results decided without a request (invalid numbers ...).

        A request that got no answer makes its messages ``unknown`` and stops the batch: the messages not yet
        sent become ``deferred``. An error raised for the whole request is re-raised when it is the first
        request (nothing of the batch was accepted), else the remaining messages become ``deferred``.
        """
        results: dict[int, SendResult] = dict(presets or {})
        for position, group in enumerate(groups):
            batch = [messages[i] for i in group]
            try:
                outcome = send_group(batch)
            except OutcomeUnknown as exc:
                results.update((i, SendResult.unknown(messages[i].id, exc.reason)) for i in group)
                reason = f"Not sent: the previous request to {self.label} got no answer, so sending stopped."
                _defer_rest(results, messages, groups[position + 1 :], reason, None, None)
                break
            except (TransientError, PermanentError) as exc:
                if position == 0:
                    raise
                retry_after = exc.retry_after if isinstance(exc, TransientError) else None
                _defer_rest(results, messages, groups[position:], f"Not sent: {exc.reason}", exc.code, retry_after)
                break
            results.update(zip(group, outcome, strict=True))
        return [results[i] for i in range(len(messages))]


def _defer_rest(
    results: dict[int, SendResult],
    messages: Sequence[OutboundMessage],
    groups: Sequence[Sequence[int]],
    reason: str,
    code: str | None,
    retry_after: float | None,
) -> None:
    for group in groups:
        for i in group:
            results[i] = SendResult.deferred(messages[i].id, reason, code=code, retry_after=retry_after)


def redact_secrets(text: str, fields: Sequence[SettingField], credentials: Mapping[str, Any]) -> str:
    """``text`` with the secret credentials (as written and URL-encoded) replaced by ``[hidden]``: transport
    errors quote the request URL, and Onfon puts its API key in the query string."""
    for spec in fields:
        value = str(credentials.get(spec.name) or "") if spec.secret else ""
        if len(value) < 4:
            continue
        for form in {value, quote(value, safe=""), quote_plus(value)}:
            text = text.replace(form, "[hidden]")
    return text


def _settings(
    fields: Sequence[SettingField], values: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[SettingField]]:
    """Stripped values with defaults filled in, and the required fields left empty."""
    settings = {k: v.strip() if isinstance(v, str) else v for k, v in dict(values or {}).items()}
    missing = []
    for spec in fields:
        if settings.get(spec.name) in (None, ""):
            if spec.default is not None:
                settings[spec.name] = spec.default
            elif spec.required:
                missing.append(spec)
    return settings, missing


# ---------------------------------------------------------------------------------------- HTTP vendors


class HttpProvider(Provider):
    """A vendor reached over HTTP through one pooled ``requests.Session`` (this instance's own, or injected)
    with explicit (connect, read) timeouts; the transport itself is :mod:`bulkapp.providers.http`."""

    default_timeout: ClassVar[tuple[float, float]] = (5.0, 30.0)

    def __init__(
        self,
        credentials: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(credentials, config)
        self._owns_session = session is None
        self.session = session or new_session()
        self.timeout = timeout or self.default_timeout

    @property
    def base_url(self) -> str:
        """The vendor's API base URL (``config["base_url"]``) without a trailing slash."""
        return str(self.config["base_url"]).rstrip("/")

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def raise_for_http_status(
        self, response: requests.Response, *, vendor: str, sending: bool, auth_reason: str
    ) -> None:
        """See :func:`bulkapp.providers.http.raise_for_http_status`."""
        http.raise_for_http_status(response, vendor=vendor, sending=sending, auth_reason=auth_reason)

    def request(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> requests.Response:
        """Make one HTTP request on the pooled session through the outbound guard; never retries. See
        :func:`bulkapp.providers.http.send` for what each failure raises."""
        return http.send(
            self.session,
            method,
            url,
            vendor=self.label,
            timeout=self.timeout,
            idempotent=idempotent,
            redact=self.redact,
            **kwargs,
        )


# ---------------------------------------------------------------------------------------- small helpers


def parse_amount(raw: Any) -> Balance:
    """``"KSh7578560.8000"``, ``"€0.6991"``, ``"1,234.50"`` -> an exact :class:`Balance` (currency from the
    prefix: KSh/KES -> ``KES``); :class:`MalformedPayload` when there is no number in it."""
    text = str(raw if raw is not None else "").strip()
    match = re.fullmatch(r"([^\d\-+.]*?)\s*([-+]?[\d,]*\.?\d+)\s*([A-Za-z]*)", text)
    if not match:
        raise MalformedPayload(f"The balance {text!r} is not an amount.")
    prefix, number, suffix = match.groups()
    amount = Decimal(number.replace(",", ""))
    symbol = (prefix or suffix).strip()
    currency = {"ksh": "KES", "kes": "KES", "$": "USD", "usd": "USD", "€": "EUR"}.get(symbol.lower(), symbol or None)
    return Balance(amount, currency, text)
