"""Twilio Programmable Messaging (SMS): one request per message, signed status callbacks and inbound SMS."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from flask_babel import lazy_gettext as _l

from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.providers.base import (
    AuthenticationError,
    Balance,
    ConfigurationError,
    ConnectionCheck,
    DeliveryReport,
    DeliveryStatus,
    HttpProvider,
    InboundMessage,
    MalformedPayload,
    OutboundMessage,
    OutcomeUnknown,
    PermanentError,
    ProviderError,
    SendResult,
    SettingField,
    TransientError,
    WebhookRequest,
    decode_json,
    e164_or_none,
    parse_amount,
    retry_after_seconds,
    to_e164,
    utcnow,
)

BASE_URL = "https://api.twilio.com"
MAX_BODY = 1600
MAX_MEDIA = 10  # Twilio delivers at most 10 media items per MMS
MAX_MEDIA_URL = 2048

ERROR_REASONS = {
    "20003": "Twilio rejected the Account SID or Auth Token.",
    "20404": "Twilio could not find that resource (check the Account SID).",
    "20429": "Twilio is rate limiting this account.",
    "21211": "This is not a valid phone number.",
    "21408": "Sending to this country is not enabled on the Twilio account.",
    "21602": "The message text is empty.",
    "21606": "The From number cannot send SMS.",
    "21608": "A Twilio trial account can only send to verified numbers.",
    "21610": "The recipient has opted out (replied STOP) and cannot be messaged.",
    "21612": "Twilio cannot route a message to this number.",
    "21614": "This number cannot receive SMS (a landline or not SMS-capable).",
    "21617": "The message is longer than Twilio's 1600-character limit.",
    "30001": "Twilio's queue for this sender overflowed.",
    "30003": "The handset is unreachable (switched off or out of coverage).",
    "30005": "The number is unknown to the network or no longer exists.",
    "30006": "The number is a landline or its carrier cannot be reached.",
    "30007": "The carrier filtered the message (suspected spam).",
    "30008": "The carrier reported an unknown error.",
}
STATUS_MAP = {
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
    "sent": DeliveryStatus.SENT,
    "queued": DeliveryStatus.SENT,
    "accepted": DeliveryStatus.SENT,
    "scheduled": DeliveryStatus.SENT,
    "sending": DeliveryStatus.SENT,
}


def twilio_signature(auth_token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """Base64 HMAC-SHA1 of the URL followed by every POST parameter sorted by name (repeats by value)."""
    payload = url + "".join(key + value for key, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as given, plus the same URL with or without its default port, as Twilio's own validator does."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if not default or not parts.hostname:
        return [url]
    if parts.port is None:
        return [url, urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))]
    if parts.port == default:
        return [url, urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0]))]
    return [url]


class TwilioProvider(HttpProvider):
    """Twilio SMS through the 2010-04-01 Messages API with HTTP Basic auth (Account SID + Auth Token).

    Status callbacks go to each message's ``callback_url``; callbacks and inbound SMS are verified with the
    ``X-Twilio-Signature`` header (HMAC-SHA1 keyed by the Auth Token, over the public URL + sorted params).
    """

    name = "twilio"
    label = "Twilio"
    channel = "sms"
    signs_webhooks = True
    credential_fields = (
        SettingField("account_sid", _l("Account SID"), help=_l("Starts with AC.")),
        SettingField("auth_token", _l("Auth Token"), secret=True),
    )
    config_fields = (
        SettingField("from_number", _l("From number or sender ID"), required=False),
        SettingField("messaging_service_sid", _l("Messaging Service SID"), required=False, help=_l("Starts with MG.")),
        SettingField("base_url", _l("API base URL"), required=False, default=BASE_URL),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not (self.config.get("from_number") or self.config.get("messaging_service_sid")):
            raise ConfigurationError(
                "Twilio needs a From number or a Messaging Service SID.",
                fields=["from_number", "messaging_service_sid"],
            )
        sid = self.credentials["account_sid"]
        self._account_url = f"{self.base_url}/2010-04-01/Accounts/{sid}"
        self._auth = (sid, self.credentials["auth_token"])

    # -- sending

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        return self.send_each(messages, self._local_problem, self._send_one)

    def _local_problem(self, message: OutboundMessage) -> SendResult | None:
        try:
            normalise_msisdn(message.to)
        except InvalidNumber as exc:
            return SendResult.rejected(message.id, exc.reason, code="invalid_number")
        if not message.body.strip():
            return SendResult.rejected(message.id, ERROR_REASONS["21602"], code="21602")
        if len(message.body) > MAX_BODY:
            return SendResult.rejected(message.id, ERROR_REASONS["21617"], code="21617")
        return None

    def _send_one(self, message: OutboundMessage) -> SendResult:
        form = {"To": normalise_msisdn(message.to), "Body": message.body}
        if message.sender or not self.config.get("messaging_service_sid"):
            form["From"] = message.sender or self.config["from_number"]
        else:
            form["MessagingServiceSid"] = self.config["messaging_service_sid"]
        if message.callback_url:
            form["StatusCallback"] = message.callback_url
        response = self.request(
            "POST", f"{self._account_url}/Messages.json", idempotent=False, data=form, auth=self._auth
        )
        data = decode_json(response)
        if response.status_code in (200, 201):
            if not isinstance(data, dict) or not data.get("sid"):
                raise OutcomeUnknown(
                    "Twilio's answer had no message SID, so the message may or may not have been accepted.",
                    vendor_message=response.text[:200],
                )
            return SendResult.accepted(message.id, str(data["sid"]), cost=_price(data.get("price")))
        error = self._error(response, data, sending=True)
        if isinstance(error, PermanentError) and not isinstance(error, AuthenticationError):
            return SendResult.rejected(message.id, error.reason, code=error.code)
        raise error

    def _error(self, response: requests.Response, data: Any, *, sending: bool) -> ProviderError:
        """Twilio's JSON error envelope as an exception (``{"code", "message", "more_info", "status"}``)."""
        status = response.status_code
        body = data if isinstance(data, dict) else {}
        code = str(body.get("code") or status)
        vendor = str(body.get("message") or response.text[:200])
        reason = ERROR_REASONS.get(code, f"Twilio refused the request: {vendor}")
        if status == 401 or code == "20003":
            return AuthenticationError(reason, code=code, vendor_message=vendor)
        if status in (429, 503) or code == "20429":
            return TransientError(reason, code=code, vendor_message=vendor, retry_after=retry_after_seconds(response))
        if status >= 500:
            if sending:
                return OutcomeUnknown(
                    f"Twilio failed with HTTP {status} while handling the message; it may have been accepted.",
                    code=code,
                    vendor_message=vendor,
                )
            return TransientError(f"Twilio failed with HTTP {status}.", code=code, vendor_message=vendor)
        return PermanentError(reason, code=code, vendor_message=vendor)

    # -- account

    def fetch_balance(self) -> Balance:
        response = self.request("GET", f"{self._account_url}/Balance.json", idempotent=True, auth=self._auth)
        data = decode_json(response)
        if response.status_code != 200:
            raise self._error(response, data, sending=False)
        if not isinstance(data, dict) or data.get("balance") in (None, ""):
            raise MalformedPayload("Twilio's balance answer has no balance.", vendor_message=response.text[:200])
        currency = str(data.get("currency") or "").upper() or None
        return Balance(parse_amount(data["balance"]).amount, currency, f"{data['balance']} {currency or ''}".strip())

    def test_connection(self) -> ConnectionCheck:
        try:
            response = self.request("GET", f"{self._account_url}.json", idempotent=True, auth=self._auth)
            data = decode_json(response)
            if response.status_code != 200:
                raise self._error(response, data, sending=False)
        except ProviderError as exc:
            return ConnectionCheck(False, exc.describe())
        data = data if isinstance(data, dict) else {}
        name = data.get("friendly_name") or self.credentials["account_sid"]
        return ConnectionCheck(True, f"Connected to Twilio account {name} ({data.get('status', 'active')}).")

    # -- webhooks

    def verify_request(self, request: WebhookRequest, *, webhook_token: str | None = None) -> bool:
        """Check ``X-Twilio-Signature`` against the Auth Token. ``request.url`` must be the public URL Twilio
        called, query string included. JSON bodies are checked through the ``bodySHA256`` query parameter."""
        given = request.header("X-Twilio-Signature")
        if not given:
            return False
        token = self.credentials["auth_token"]
        params = list(request.form_items)
        if request.content_type.endswith("json"):
            expected_hash = hashlib.sha256(request.raw_body).hexdigest()
            if not hmac.compare_digest(request.args.get("bodySHA256", ""), expected_hash):
                return False
            params = []
        return any(
            hmac.compare_digest(twilio_signature(token, url, params).encode(), given.encode())
            for url in _url_variants(request.url)
        )

    def parse_delivery_report(self, request: WebhookRequest) -> list[DeliveryReport]:
        """A StatusCallback: MessageSid, MessageStatus (or the legacy SmsSid/SmsStatus), ErrorCode, To and, on
        final SMS statuses, RawDlrDoneDate (YYMMDDhhmm, read as UTC)."""
        form = {**request.args, **request.form}
        sid = form.get("MessageSid") or form.get("SmsSid")
        vendor_status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        if not sid or not vendor_status:
            raise MalformedPayload("A Twilio status callback needs MessageSid and MessageStatus.")
        if vendor_status in ("received", "receiving"):
            return []
        state = STATUS_MAP.get(vendor_status, DeliveryStatus.UNKNOWN)
        code = form.get("ErrorCode") or None
        reason = None
        if state is DeliveryStatus.FAILED:
            reason = ERROR_REASONS.get(code or "", form.get("ErrorMessage") or "The message could not be delivered.")
        recipient = form.get("To")
        return [
            DeliveryReport(
                provider_message_id=sid,
                status=state,
                vendor_status=vendor_status,
                error_code=code,
                error_reason=reason,
                occurred_at=_dlr_time(form.get("RawDlrDoneDate")),
                recipient=e164_or_none(recipient),
            )
        ]

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """An incoming SMS or MMS: From, To, Body, MessageSid (or SmsMessageSid/SmsSid), NumMedia and MediaUrl0..N
        (an MMS may have an empty or no Body; its media URLs are kept as links, never fetched)."""
        form = request.form
        sender = form.get("From")
        sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
        count = form.get("NumMedia") or "0"
        media = min(int(count), MAX_MEDIA) if count.isascii() and count.isdigit() else 0
        urls = tuple(url for i in range(media) if _is_web_url(url := form.get(f"MediaUrl{i}") or ""))
        if not sender or not sid or ("Body" not in form and not urls):
            raise MalformedPayload("A Twilio incoming message needs From, Body (or media) and MessageSid.")
        return [
            InboundMessage(
                sender=to_e164(sender.removeprefix("whatsapp:")),
                to=form.get("To"),
                text=form.get("Body", ""),
                provider_message_id=sid,
                received_at=utcnow(),
                channel="sms",
                kind="media" if urls else "text",
                media_urls=urls,
            )
        ]


def _is_web_url(url: str) -> bool:
    """Only http(s) links are kept: a ``javascript:`` or ``data:`` "media URL" would be a trap in the inbox."""
    parts = urlsplit(url)
    return parts.scheme in ("https", "http") and bool(parts.netloc) and len(url) <= MAX_MEDIA_URL


def _price(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return abs(Decimal(str(value)))
    except InvalidOperation:
        return None


def _dlr_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None
