"""UltraMsg (WhatsApp through a linked WhatsApp Web session): text sends, acks and incoming messages.

UltraMsg is not Meta's Cloud API: there are no templates and no 24-hour window, and the linked number can
be banned. Its webhooks are unsigned, so the registered URL carries the channel token in ``?token=``.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    parse_time,
    to_e164,
    utcnow,
)

BASE_URL = "https://api.ultramsg.com"
MAX_BODY = 4096
ACK_STATES = {
    "pending": DeliveryStatus.SENT,
    "server": DeliveryStatus.SENT,
    "device": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "played": DeliveryStatus.DELIVERED,
}
DISCONNECTED_WORDS = ("not connected", "not authorized", "not authenticated", "disconnected", "qr")


def _error_text(error: Any) -> str:
    """UltraMsg's ``error`` may be a string, an object or a list of either; flatten it to one line."""
    if isinstance(error, dict):
        return "; ".join(f"{key}: {_error_text(value)}" for key, value in error.items())
    if isinstance(error, list):
        return "; ".join(_error_text(item) for item in error)
    return str(error)


def _chat_number(chat_id: Any) -> str:
    return str(chat_id or "").split("@", 1)[0]


class UltraMsgProvider(HttpProvider):
    """UltraMsg ``messages/chat`` sends, one request per message, with our message id as ``referenceId``."""

    name = "ultramsg"
    label = "UltraMsg"
    channel = "whatsapp"
    credential_fields = (
        SettingField("instance_id", _l("Instance ID"), help=_l("e.g. instance1150")),
        SettingField("token", _l("Token"), secret=True),
    )
    config_fields = (
        SettingField(
            "priority", _l("Priority"), required=False, default=10, help=_l("0 = highest (OTP), 10 = default.")
        ),
        SettingField("base_url", _l("API base URL"), required=False, default=BASE_URL),
    )

    @property
    def _instance_url(self) -> str:
        return f"{self.base_url}/{self.credentials['instance_id']}"

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        return self.send_each(messages, self._local_problem, self._send_one)

    def _local_problem(self, message: OutboundMessage) -> SendResult | None:
        try:
            normalise_msisdn(message.to)
        except InvalidNumber as exc:
            return SendResult.rejected(message.id, exc.reason, code="invalid_number")
        if not message.body.strip():
            return SendResult.rejected(message.id, "The message text is empty.", code="empty_body")
        if len(message.body) > MAX_BODY:
            return SendResult.rejected(
                message.id, "WhatsApp messages are limited to 4096 characters.", code="body_too_long"
            )
        return None

    def _send_one(self, message: OutboundMessage) -> SendResult:
        form = {
            "token": self.credentials["token"],
            "to": normalise_msisdn(message.to),
            "body": message.body,
            "priority": str(self.config["priority"]),
            "referenceId": str(message.id),
        }
        response = self.request("POST", f"{self._instance_url}/messages/chat", idempotent=False, data=form)
        self._check_http(response, sending=True)
        data = decode_json(response)
        if not isinstance(data, dict):
            raise OutcomeUnknown(
                "UltraMsg's answer was not JSON, so the message may or may not have been accepted.",
                vendor_message=response.text[:200],
            )
        if "error" in data:
            error = self._account_error(_error_text(data["error"]))
            if error:
                raise error
            return SendResult.rejected(message.id, f"UltraMsg refused the message: {_error_text(data['error'])}")
        if str(data.get("sent")).lower() == "true":
            return SendResult.accepted(message.id, str(data["id"]) if data.get("id") not in (None, "") else None)
        if "sent" in data:
            return SendResult.rejected(message.id, f"UltraMsg did not send the message: {data.get('message', '')}")
        raise OutcomeUnknown(
            "UltraMsg's answer said neither sent nor error, so the message may have been accepted.",
            vendor_message=response.text[:200],
        )

    def _account_error(self, text: str) -> ProviderError | None:
        lowered = text.lower()
        if any(word in lowered for word in DISCONNECTED_WORDS):
            return TransientError(
                "The WhatsApp number is not connected to UltraMsg; scan the QR code in the UltraMsg dashboard.",
                vendor_message=text,
            )
        if "token" in lowered or "instance" in lowered:
            return AuthenticationError("UltraMsg rejected the instance ID or token.", vendor_message=text)
        return None

    def _check_http(self, response: requests.Response, *, sending: bool) -> None:
        if response.status_code == 404:
            raise AuthenticationError(
                "UltraMsg does not know this instance, or it is still pending.",
                code="404",
                vendor_message=response.text[:200],
            )
        self.raise_for_http_status(
            response, vendor="UltraMsg", sending=sending, auth_reason="UltraMsg rejected the token."
        )

    def test_connection(self) -> ConnectionCheck:
        try:
            response = self.request(
                "GET",
                f"{self._instance_url}/instance/status",
                idempotent=True,
                params={"token": self.credentials["token"]},
            )
            self._check_http(response, sending=False)
            data = decode_json(response)
            if isinstance(data, dict) and "error" in data:
                text = _error_text(data["error"])
                raise self._account_error(text) or PermanentError("UltraMsg refused the request.", vendor_message=text)
        except ProviderError as exc:
            return ConnectionCheck(False, exc.describe())
        account = (data or {}).get("status", {}).get("accountStatus", {}) if isinstance(data, dict) else {}
        state = str(account.get("status") or "unknown") if isinstance(account, dict) else "unknown"
        if state != "authenticated":
            return ConnectionCheck(
                False, f"The UltraMsg instance answered but WhatsApp is not linked (status: {state}); scan the QR code."
            )
        return ConnectionCheck(True, f"Connected to UltraMsg; WhatsApp is linked ({account.get('substatus', state)}).")

    # -- webhooks

    def _event(self, request: WebhookRequest) -> tuple[str, dict[str, Any], dict[str, Any]]:
        envelope = request.json()
        if (
            not isinstance(envelope, dict)
            or not envelope.get("event_type")
            or not isinstance(envelope.get("data"), dict)
        ):
            raise MalformedPayload("An UltraMsg webhook needs event_type and a data object.")
        return str(envelope["event_type"]), envelope["data"], envelope

    def parse_delivery_report(self, request: WebhookRequest) -> list[DeliveryReport]:
        """``message_ack`` events: ack ``server`` = sent, ``device`` = delivered, ``read``/``played`` also
        delivered. The report's id is the envelope's ``id`` (the send's numeric id) when present, else
        ``data.id``; ``reference`` is our ``referenceId``."""
        event, data, envelope = self._event(request)
        if event != "message_ack":
            return []
        ack = str(data.get("ack") or "").lower()
        message_id = envelope.get("id") or data.get("id")
        if not ack or not message_id:
            raise MalformedPayload("An UltraMsg ack needs an id and an ack value.")
        reference = envelope.get("referenceId") or data.get("referenceId")
        return [
            DeliveryReport(
                provider_message_id=str(message_id),
                status=ACK_STATES.get(ack, DeliveryStatus.UNKNOWN),
                vendor_status=ack,
                occurred_at=parse_time(data.get("time")),
                recipient=e164_or_none(_chat_number(data.get("to"))),
                reference=str(reference) if reference else None,
            )
        ]

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """``message_received`` events from one person (``2547…@c.us``); echoes of our own messages
        (``fromMe``) and group messages (``…@g.us``) are ignored."""
        event, data, _ = self._event(request)
        if event != "message_received" or data.get("fromMe") in (True, "true"):
            return []
        chat = str(data.get("from") or "")
        if not chat:
            raise MalformedPayload("An UltraMsg incoming message needs data.from.")
        if chat.endswith("@g.us"):
            return []
        kind = str(data.get("type") or "chat")
        return [
            InboundMessage(
                sender=to_e164(_chat_number(chat)),
                to=e164_or_none(_chat_number(data.get("to"))),
                text=str(data.get("body") or ""),
                provider_message_id=str(data["id"]) if data.get("id") else None,
                received_at=parse_time(data.get("time")) or utcnow(),
                channel="whatsapp",
                sender_name=str(data.get("pushname") or "") or None,
                kind="text" if kind == "chat" else kind,
            )
        ]
