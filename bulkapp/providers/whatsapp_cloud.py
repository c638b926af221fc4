"""WhatsApp Cloud API (Meta Graph): text and template sends, the 24-hour window, signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from flask_babel import lazy_gettext as _l

from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.providers.base import (
    AuthenticationError,
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
    national_digits,
    parse_time,
    retry_after_seconds,
    to_e164,
    token_matches,
    utcnow,
)

BASE_URL = "https://graph.facebook.com"
MAX_BODY = 4096
CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)
WINDOW_CLOSED = "131047"

ERROR_REASONS = {
    "0": "Meta rejected the access token.",
    "190": "The WhatsApp access token has expired or is invalid.",
    "10": "The access token lacks permission for this WhatsApp number.",
    "100": "Meta rejected a parameter of the message.",
    "368": "Meta blocked this account for a policy violation.",
    "130429": "Meta's throughput limit for this number was reached.",
    "131026": "The message could not be delivered: the number is not on WhatsApp, blocked us, or uses an old app.",
    "131031": "The WhatsApp Business account is locked.",
    "131047": "More than 24 hours have passed since the customer last wrote, so only a template message is allowed.",
    "131048": "Meta limited sending from this number because too many messages were reported as spam.",
    "131049": "Meta chose not to deliver this marketing message to keep engagement healthy.",
    "131051": "WhatsApp does not support this message type.",
    "131056": "Too many messages to the same customer in a short time; try again shortly.",
    "131057": "The WhatsApp number is being upgraded for more throughput; try again shortly.",
    "132000": "The number of template parameters does not match the approved template.",
    "132001": "The template does not exist in that language, or is not approved.",
    "132005": "The template text is too long once the parameters are filled in.",
    "132007": "The template text breaks WhatsApp's formatting policy.",
    "132012": "A template parameter has the wrong format.",
    "132015": "The template is paused because of low quality.",
    "132016": "The template is disabled.",
}
ACCOUNT_CODES = {"0", "190", "10", "368", "131031"}
TRANSIENT_CODES = {"1", "2", "4", "130429", "131048", "131057", "80007"}
STATUS_MAP = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "failed": DeliveryStatus.FAILED,
}


def customer_service_window_open(last_inbound_at: datetime | None, now: datetime | None = None) -> bool:
    """True while free-form WhatsApp messages are allowed: within 24 hours of the customer's last message to
    us. No inbound message at all means the window is closed (only templates). Naive times are read as UTC."""
    if last_inbound_at is None:
        return False
    if last_inbound_at.tzinfo is None:
        last_inbound_at = last_inbound_at.replace(tzinfo=UTC)
    return (now or utcnow()) - last_inbound_at < CUSTOMER_SERVICE_WINDOW


def verify_subscription(args: Mapping[str, str], verify_token: str | None) -> str | None:
    """Meta's GET handshake: the ``hub.challenge`` to echo back (200, raw body) when ``hub.mode`` is
    ``subscribe`` and ``hub.verify_token`` matches ours; None means answer 403."""
    if args.get("hub.mode") != "subscribe" or not token_matches(args.get("hub.verify_token"), verify_token):
        return None
    return args.get("hub.challenge")


def webhook_phone_number_ids(request: WebhookRequest) -> set[str]:
    """The ``metadata.phone_number_id`` values in a webhook, to find the channel (and its app secret) before
    the signature is checked. Raises MalformedPayload for a body that is not a WhatsApp webhook."""
    ids = {(value.get("metadata") or {}).get("phone_number_id") for value in _values(request)}
    return {str(i) for i in ids if i}


def _values(request: WebhookRequest) -> Iterator[dict[str, Any]]:
    body = request.json()
    if not isinstance(body, dict) or body.get("object") != "whatsapp_business_account":
        raise MalformedPayload("This is not a WhatsApp Business Account webhook.")
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise MalformedPayload("A WhatsApp webhook needs an entry list.")
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            if isinstance(change, dict) and change.get("field") == "messages" and isinstance(change.get("value"), dict):
                yield change["value"]


def _account_level(code: str | None, status: int) -> bool:
    """Errors about the token, permissions or the account refuse every message alike: raise, don't reject."""
    permission = (code or "").isdigit() and 200 <= int(code or 0) <= 299
    return status in (401, 403) or permission or code in ACCOUNT_CODES


def _inbound_text(message: dict[str, Any]) -> str:
    kind = message.get("type")
    part = message.get(kind) if isinstance(message.get(kind), dict) else {}
    if kind == "text":
        return str(part.get("body") or "")
    if kind == "button":
        return str(part.get("text") or "")
    if kind == "interactive":
        reply = part.get("button_reply") or part.get("list_reply") or {}
        return str(reply.get("title") or "")
    if kind == "reaction":
        return str(part.get("emoji") or "")
    if kind == "location":
        return str(part.get("name") or f"Location {part.get('latitude')}, {part.get('longitude')}")
    return str(part.get("caption") or part.get("body") or "")


class WhatsAppCloudProvider(HttpProvider):
    """Meta's WhatsApp Cloud API for one business phone number.

    Free-form text is refused before any request when the 24-hour customer-service window is closed (see
    :func:`customer_service_window_open`); template sends are allowed at any time. Our message id travels as
    ``biz_opaque_callback_data`` and comes back as :attr:`DeliveryReport.reference`. Webhooks are verified with
    ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body keyed by the app secret); the GET handshake's verify
    token is the channel's webhook token (:func:`verify_subscription`).
    """

    name = "whatsapp_cloud"
    label = "WhatsApp Cloud API"
    channel = "whatsapp"
    signs_webhooks = True
    credential_fields = (
        SettingField(
            "access_token", _l("Access token"), secret=True, help=_l("A system-user token with whatsapp scopes.")
        ),
        SettingField("app_secret", _l("App secret"), secret=True, help=_l("Used to check Meta's webhook signatures.")),
        SettingField("phone_number_id", _l("Phone number ID")),
    )
    config_fields = (
        SettingField("api_version", _l("Graph API version"), required=False, default="v23.0"),
        SettingField("template_language", _l("Default template language"), required=False, default="en"),
        SettingField("base_url", _l("API base URL"), required=False, default=BASE_URL),
    )

    @property
    def _number_url(self) -> str:
        return f"{self.base_url}/{self.config['api_version']}/{self.credentials['phone_number_id']}"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials['access_token']}"}

    # -- sending

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        return self.send_each(messages, self._local_problem, self._send_one)

    def _local_problem(self, message: OutboundMessage) -> SendResult | None:
        try:
            normalise_msisdn(message.to)
        except InvalidNumber as exc:
            return SendResult.rejected(message.id, exc.reason, code="invalid_number")
        if message.template_name:
            return None
        if not message.body.strip():
            return SendResult.rejected(message.id, "The message text is empty.", code="empty_body")
        if len(message.body) > MAX_BODY:
            return SendResult.rejected(message.id, "WhatsApp messages are limited to 4096 characters.", code="100")
        if not customer_service_window_open(message.last_inbound_at):
            return SendResult.rejected(message.id, ERROR_REASONS[WINDOW_CLOSED], code=WINDOW_CLOSED)
        return None

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        """The Graph API body for one message: a template when ``template_name`` is set, else text."""
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": national_digits(normalise_msisdn(message.to)),
            "biz_opaque_callback_data": str(message.id),
        }
        if message.template_name:
            template: dict[str, Any] = {
                "name": message.template_name,
                "language": {"code": message.template_language or self.config["template_language"]},
            }
            if message.template_params:
                parameters = [{"type": "text", "text": str(value)} for value in message.template_params]
                template["components"] = [{"type": "body", "parameters": parameters}]
            payload.update(type="template", template=template)
        else:
            payload.update(type="text", text={"preview_url": False, "body": message.body})
        return payload

    def _send_one(self, message: OutboundMessage) -> SendResult:
        response = self.request(
            "POST", f"{self._number_url}/messages", idempotent=False, json=self.payload(message), headers=self._headers
        )
        data = decode_json(response)
        if response.status_code == 200:
            sent = (data or {}).get("messages") if isinstance(data, dict) else None
            if not sent or not isinstance(sent[0], dict) or not sent[0].get("id"):
                raise OutcomeUnknown(
                    "Meta's answer had no message id, so the message may or may not have been accepted.",
                    vendor_message=response.text[:200],
                )
            return SendResult.accepted(message.id, str(sent[0]["id"]))
        error = self._error(response, data, sending=True)
        if error.code == "131056":
            return SendResult.deferred(message.id, error.reason, code=error.code, retry_after=6.0)
        if isinstance(error, PermanentError) and not _account_level(error.code, response.status_code):
            return SendResult.rejected(message.id, error.reason, code=error.code)
        raise error

    def _error(self, response: requests.Response, data: Any, *, sending: bool) -> ProviderError:
        """Meta's error envelope ``{"error": {"message", "code", "error_data": {"details"}, ...}}`` as an
        exception, classified by ``code`` and HTTP status."""
        status = response.status_code
        body = data.get("error") if isinstance(data, dict) and isinstance(data.get("error"), dict) else {}
        code = str(body.get("code", status))
        details = (body.get("error_data") or {}).get("details") if isinstance(body.get("error_data"), dict) else None
        vendor = " ".join(str(part) for part in (body.get("message"), details) if part) or response.text[:200]
        reason = ERROR_REASONS.get(code, f"Meta refused the request: {vendor}")
        if status == 401 or code in ("0", "190"):
            return AuthenticationError(reason, code=code, vendor_message=vendor)
        if code in TRANSIENT_CODES or status in (429, 503):
            return TransientError(reason, code=code, vendor_message=vendor, retry_after=retry_after_seconds(response))
        if status >= 500:
            if sending:
                return OutcomeUnknown(
                    f"Meta failed with HTTP {status} while handling the message; it may have been accepted.",
                    code=code,
                    vendor_message=vendor,
                )
            return TransientError(f"Meta failed with HTTP {status}.", code=code, vendor_message=vendor)
        return PermanentError(reason, code=code, vendor_message=vendor)

    def test_connection(self) -> ConnectionCheck:
        try:
            response = self.request(
                "GET",
                self._number_url,
                idempotent=True,
                params={"fields": "display_phone_number,verified_name,quality_rating"},
                headers=self._headers,
            )
            data = decode_json(response)
            if response.status_code != 200:
                raise self._error(response, data, sending=False)
        except ProviderError as exc:
            return ConnectionCheck(False, exc.describe())
        data = data if isinstance(data, dict) else {}
        number = data.get("display_phone_number") or self.credentials["phone_number_id"]
        name = data.get("verified_name") or "unverified name"
        return ConnectionCheck(True, f"Connected to WhatsApp number {number} ({name}).")

    # -- webhooks

    def verify_request(self, request: WebhookRequest, *, webhook_token: str | None = None) -> bool:
        """Check ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the raw body keyed by the app secret."""
        given = request.header("X-Hub-Signature-256") or ""
        if not given.startswith("sha256="):
            return False
        digest = hmac.new(self.credentials["app_secret"].encode(), request.raw_body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given.removeprefix("sha256=").lower().encode(), digest.encode())

    def parse_delivery_report(self, request: WebhookRequest) -> list[DeliveryReport]:
        """Every ``statuses[]`` item: sent, delivered, read (reported as delivered) or failed with ``errors[]``.
        Statuses may arrive out of order or twice; the caller must never move a message backwards."""
        reports = []
        for value in _values(request):
            for status in value.get("statuses") or []:
                if not isinstance(status, dict) or not status.get("id") or not status.get("status"):
                    raise MalformedPayload("A WhatsApp status needs id and status.")
                vendor_status = str(status["status"]).lower()
                state = STATUS_MAP.get(vendor_status, DeliveryStatus.UNKNOWN)
                errors = [e for e in status.get("errors") or [] if isinstance(e, dict)]
                code = str(errors[0].get("code")) if errors and errors[0].get("code") is not None else None
                reason = None
                if errors:
                    first = errors[0]
                    details = (
                        (first.get("error_data") or {}).get("details")
                        if isinstance(first.get("error_data"), dict)
                        else None
                    )
                    reason = ERROR_REASONS.get(code or "") or details or first.get("message") or first.get("title")
                elif state is DeliveryStatus.FAILED:
                    reason = "WhatsApp could not deliver the message."
                reference = status.get("biz_opaque_callback_data")
                reports.append(
                    DeliveryReport(
                        provider_message_id=str(status["id"]),
                        status=state,
                        vendor_status=vendor_status,
                        error_code=code,
                        error_reason=str(reason) if reason else None,
                        occurred_at=parse_time(status.get("timestamp")),
                        recipient=e164_or_none(status.get("recipient_id")),
                        reference=str(reference) if reference else None,
                    )
                )
        return reports

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """Every ``messages[]`` item; text, button and interactive replies give their text, media its caption
        (``kind`` names the type), and the sender's profile name comes from ``contacts[]``."""
        inbound = []
        for value in _values(request):
            names = {
                str(c.get("wa_id")): (c.get("profile") or {}).get("name")
                for c in value.get("contacts") or []
                if isinstance(c, dict)
            }
            business = (value.get("metadata") or {}).get("display_phone_number")
            for message in value.get("messages") or []:
                if not isinstance(message, dict) or not message.get("from"):
                    raise MalformedPayload("A WhatsApp message needs from.")
                sender = str(message["from"])
                inbound.append(
                    InboundMessage(
                        sender=to_e164(sender),
                        to=e164_or_none(business),
                        text=_inbound_text(message),
                        provider_message_id=str(message["id"]) if message.get("id") else None,
                        received_at=parse_time(message.get("timestamp")) or utcnow(),
                        channel="whatsapp",
                        sender_name=names.get(sender),
                        kind=str(message.get("type") or "text"),
                    )
                )
        return inbound
