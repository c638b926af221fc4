"""The provider interface: plain messages in, typed results out; errors, webhook requests and shared helpers.

Every vendor module builds on this file and nothing here touches the database or Flask's request globals:
the send pipeline and the webhook endpoints hand adapters plain data and store what comes back.
"""

from __future__ import annotations

import enum
import hmac
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any, ClassVar, Literal, NamedTuple, Self
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit
from zoneinfo import ZoneInfo

import requests
from flask_babel import force_locale
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from bulkapp.services.phones import InvalidNumber, normalise_msisdn

ChannelKind = Literal["sms", "whatsapp", "email"]
NAIROBI = ZoneInfo("Africa/Nairobi")


# --------------------------------------------------------------------------------------------- errors


class ProviderError(Exception):
    """Base of every provider failure.

    ``reason`` is a plain sentence a tenant can read, ``code`` the vendor's own code (as a string) when it gave
    one, and ``vendor_message`` the vendor's own words, kept verbatim for support.
    """

    def __init__(self, reason: str, *, code: str | None = None, vendor_message: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.vendor_message = vendor_message

    def describe(self) -> str:
        """The reason followed by the vendor's own words, for people reading a settings page or a log."""
        if self.vendor_message and self.vendor_message not in self.reason:
            return f"{self.reason} (the provider said: {self.vendor_message})"
        return self.reason


class TransientError(ProviderError):
    """Nothing was accepted and the same request may be made again later.

    Raised for a connection refused or timed out before anything was sent, 429 (``retry_after`` seconds when the
    vendor said), and the 5xx answers a vendor documents as "nothing accepted" (503, Meta's code 2, ...).
    """

    def __init__(self, reason: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(reason, **kwargs)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """The vendor refused the request as a whole and will refuse it again until someone changes something."""


class AuthenticationError(PermanentError):
    """The vendor rejected the channel's credentials (wrong key or token, inactive or locked account)."""


class ConfigurationError(PermanentError):
    """The channel settings are incomplete or invalid; ``fields`` names the settings at fault."""

    def __init__(self, reason: str, *, fields: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(reason, **kwargs)
        self.fields = tuple(fields)


class MalformedPayload(ProviderError):
    """A webhook (or a vendor answer) that cannot be understood; an endpoint answers 400 and stores nothing."""


class NotSupported(ProviderError):
    """The vendor has no such feature (e.g. Mobitech sends no incoming messages to us)."""


class OutcomeUnknown(ProviderError):
    """The request was sent but no usable answer came back, so the vendor may have accepted it.

    Raised by :meth:`HttpProvider.request` for non-idempotent calls; ``send_batch`` turns it into ``unknown``
    results and never sends the same messages again.
    """


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


# ----------------------------------------------------------------------------------- webhook requests


@dataclass(frozen=True)
class WebhookRequest:
    """An incoming vendor webhook as plain data: method, the full public URL (with its query string), headers
    and the raw body bytes. Query arguments, form fields and JSON are derived from those, lazily, so that
    signatures are always checked over exactly what arrived.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    raw_body: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", {k.lower(): v for k, v in dict(self.headers).items()})

    @classmethod
    def from_werkzeug(cls, request: Any, url: str | None = None) -> WebhookRequest:
        """Build from a werkzeug/Flask request object passed in explicitly; ``url`` overrides ``request.url``
        when the public URL differs (TLS-terminating proxy without ProxyFix). Reads the body with caching, so
        ``request.form`` still works afterwards."""
        raw = request.get_data(cache=True)
        return cls(request.method, url or request.url, dict(request.headers.items()), raw)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @cached_property
    def args(self) -> dict[str, str]:
        """Query-string arguments (first value of each)."""
        return _first_values(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    @cached_property
    def form_items(self) -> tuple[tuple[str, str], ...]:
        """Every form-encoded body field in arrival order, repeats kept (Twilio signs them all)."""
        if self.content_type != "application/x-www-form-urlencoded":
            return ()
        try:
            text = self.raw_body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPayload("The form body is not valid UTF-8.") from exc
        return tuple(parse_qsl(text, keep_blank_values=True))

    @cached_property
    def form(self) -> dict[str, str]:
        return _first_values(self.form_items)

    def json(self) -> Any:
        """The body parsed as JSON; :class:`MalformedPayload` when it is empty or not JSON."""
        if not self.raw_body.strip():
            raise MalformedPayload("The request body is empty; a JSON document was expected.")
        try:
            return json.loads(self.raw_body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedPayload(f"The request body is not valid JSON ({exc}).") from exc

    def payload_records(self) -> list[dict[str, Any]]:
        """Flat records for vendors that send either a form, a JSON object (or list of objects) or a bare GET:
        query arguments first, body fields over them."""
        body_is_json = self.content_type.endswith("json") or self.raw_body.lstrip()[:1] in (b"{", b"[")
        if self.method == "GET" or not self.raw_body.strip() or not body_is_json:
            return [{**self.args, **self.form}]
        data = self.json()
        items = data if isinstance(data, list) else [data]
        if not items or not all(isinstance(item, dict) for item in items):
            raise MalformedPayload("The JSON body must be an object or a list of objects.")
        return [{**self.args, **item} for item in items]


def _first_values(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


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


def new_session(pool_size: int = 16) -> requests.Session:
    """A pooled session: keep-alive connections, no automatic retries (a retry could send twice)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "Bulkapp/1.0"
    return session


class HttpProvider(Provider):
    """A vendor reached over HTTP through one pooled ``requests.Session`` (this instance's own, or injected)
    with explicit (connect, read) timeouts."""

    default_timeout: ClassVar[tuple[float, float]] = (5.0, 30.0)

    def raise_for_http_status(
        self, response: requests.Response, *, vendor: str, sending: bool, auth_reason: str
    ) -> None:
        """What a non-200 status means when the vendor says nothing more specific.

        401/403: bad credentials. 429/503: busy, nothing accepted (retry after the vendor's delay). Another
        5xx while sending: the vendor may have accepted the messages, so the outcome is unknown (never
        resend blindly); outside a send it is just transient. Anything else is permanent.
        """
        status = response.status_code
        if status == 200:
            return
        text = response.text[:200]
        if status in (401, 403):
            raise AuthenticationError(auth_reason, code=str(status), vendor_message=text)
        if status in (429, 503):
            raise TransientError(
                f"{vendor} is busy (HTTP {status}); nothing was accepted.",
                code=str(status),
                vendor_message=text,
                retry_after=retry_after_seconds(response),
            )
        if status >= 500 and sending:
            raise OutcomeUnknown(
                f"{vendor} failed with HTTP {status} while handling the request; it may have been accepted.",
                vendor_message=text,
            )
        if status >= 500:
            raise TransientError(f"{vendor} failed with HTTP {status}.", code=str(status), vendor_message=text)
        raise PermanentError(f"{vendor} answered HTTP {status}.", code=str(status), vendor_message=text)

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

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def request(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> requests.Response:
        """Make one HTTP request; never retries.

        Raises :class:`TransientError` when nothing was sent (connection refused, connect timeout, TLS
        handshake failure) and, for ``idempotent`` calls, also when the answer never came. For other calls a
        read timeout or a connection broken after sending raises :class:`OutcomeUnknown`.
        """
        try:
            return self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.ConnectTimeout as exc:
            raise TransientError(f"{self.label} did not accept the connection in time; nothing was sent.") from exc
        except requests.ReadTimeout as exc:
            if idempotent:
                raise TransientError(f"{self.label} took too long to answer.") from exc
            raise OutcomeUnknown(
                f"{self.label} did not answer in time after receiving the request; it may have accepted it."
            ) from exc
        except requests.ConnectionError as exc:
            if _failed_before_sending(exc):
                raise TransientError(
                    f"Could not connect to {self.label}; nothing was sent.", vendor_message=self.redact(str(exc))
                ) from exc
            if idempotent:
                raise TransientError(
                    f"The connection to {self.label} broke.", vendor_message=self.redact(str(exc))
                ) from exc
            raise OutcomeUnknown(
                f"The connection to {self.label} broke after the request was sent; it may have accepted it.",
                vendor_message=self.redact(str(exc)),
            ) from exc
        except requests.RequestException as exc:
            raise ConfigurationError(
                f"Could not call {self.label}: {self.redact(str(exc))}", fields=["base_url"]
            ) from exc


def _failed_before_sending(exc: requests.ConnectionError) -> bool:
    if isinstance(exc, requests.exceptions.SSLError):
        return True  # the TLS handshake comes before any byte of the request
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def decode_json(response: requests.Response) -> Any:
    """The answer's JSON, or None when the body is empty or not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def retry_after_seconds(response: requests.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or None."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# ---------------------------------------------------------------------------------------- small helpers


def token_matches(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a channel token; False when either side is missing."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def to_e164(raw: Any) -> str:
    """A sender number from a webhook as E.164 (``2547…``, ``+2547…``, ``07…`` all work); MalformedPayload
    when it is not a phone number. Foreign numbers keep their country code."""
    text = str(raw or "").strip()
    digits = re.sub(r"\D", "", text)
    try:
        return normalise_msisdn(text)
    except InvalidNumber:
        if 8 <= len(digits) <= 15 and not digits.startswith("0"):
            return "+" + digits  # a valid-looking international number libphonenumber does not classify
        raise MalformedPayload(f"{text!r} is not a phone number.") from None


def e164_or_none(raw: Any) -> str | None:
    """Like :func:`to_e164` for optional fields (a DLR's recipient): None instead of an error."""
    if raw in (None, ""):
        return None
    try:
        return to_e164(str(raw).removeprefix("whatsapp:"))
    except MalformedPayload:
        return None


def national_digits(e164: str) -> str:
    """``+254712345678`` -> ``254712345678`` (Onfon, Mobitech, WhatsApp Cloud want no ``+``)."""
    return e164.lstrip("+")


def parse_time(value: Any, tz: ZoneInfo = NAIROBI) -> datetime | None:
    """A vendor timestamp as aware UTC, leniently: Unix seconds (or milliseconds), ISO 8601, ``YYYY-mm-dd HH:MM
    [:SS]`` and ``YYYYmmddHHMMSS``. Naive times are read in ``tz`` (Kenyan vendors report local time). None when
    the value is empty or unreadable: a delivery report is still worth applying without its time."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if re.fullmatch(r"\d{9,10}(\.\d+)?", text) or re.fullmatch(r"\d{13}", text):
        seconds = float(text) / (1000 if len(text) == 13 else 1)
        return datetime.fromtimestamp(seconds, UTC)
    parsed = None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y%m%d%H%M%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"):
        try:
            parsed = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


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


def utcnow() -> datetime:
    return datetime.now(UTC)
