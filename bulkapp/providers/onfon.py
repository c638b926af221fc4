"""Onfon Media SMS (Kenya): SendBulkSMS batches, balance, delivery reports and incoming SMS."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import requests
from flask_babel import lazy_gettext as _l

from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.providers.base import (
    NAIROBI,
    AuthenticationError,
    Balance,
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
    parse_amount,
    parse_time,
    to_e164,
    utcnow,
)
from bulkapp.providers.encoding import GSM7, detect_encoding

BASE_URL = "https://api.onfonmedia.co.ke/v1/sms"

# Top-level ErrorCode values from Onfon's REST documentation, in plain words.
TOP_LEVEL_REASONS = {
    "003": "The sender ID is missing.",
    "004": "The message text is empty.",
    "005": "The message has no recipients.",
    "006": "Onfon reported an internal error; nothing was sent.",
    "007": "Onfon rejected the API credentials (access key, API key or client ID).",
    "008": "The Onfon account is inactive.",
    "009": "The Onfon account is locked.",
    "010": "This Onfon account is not allowed to use the API.",
    "011": "Onfon refused this server's IP address; ask Onfon to allow it.",
    "013": "None of the numbers is a valid mobile number.",
    "015": "The sender ID is not valid for this Onfon account.",
    "019": "The schedule date is not valid.",
    "020": "A message or a mobile number is empty.",
    "021": "The Onfon account has run out of SMS credit; top it up with Onfon.",
    "023": "A required parameter is missing.",
    "024": "The template does not exist or does not match.",
}
AUTH_CODES = {"007", "008", "009", "010", "011"}
TRANSIENT_CODES = {"006"}
# Fields only Jasmin's pushes carry (a DLR, an incoming SMS): Onfon's REST service runs on Jasmin.
JASMIN_FIELDS = ("message_status", "id_smsc", "origin-connector")
MESSAGE_REASONS = {"401": "The sender ID is not approved for this Onfon account, so Onfon refused the message."}

DLR_STATES = {
    "DELIVRD": DeliveryStatus.DELIVERED,
    "DELIVERED": DeliveryStatus.DELIVERED,
    "UNDELIV": DeliveryStatus.FAILED,
    "UNDELIVERED": DeliveryStatus.FAILED,
    "EXPIRED": DeliveryStatus.FAILED,
    "REJECTD": DeliveryStatus.FAILED,
    "REJECTED": DeliveryStatus.FAILED,
    "DELETED": DeliveryStatus.FAILED,
    "FAILED": DeliveryStatus.FAILED,
    "ACCEPTD": DeliveryStatus.SENT,
    "ENROUTE": DeliveryStatus.SENT,
    "SENT": DeliveryStatus.SENT,
    "SUBMITTED": DeliveryStatus.SENT,
    "PENDING": DeliveryStatus.SENT,
    "UNKNOWN": DeliveryStatus.UNKNOWN,
}
DLR_REASONS = {
    "UNDELIV": "The network could not deliver the message to the handset.",
    "UNDELIVERED": "The network could not deliver the message to the handset.",
    "EXPIRED": "The handset stayed unreachable until the message expired.",
    "REJECTD": "The network rejected the message.",
    "REJECTED": "The network rejected the message.",
    "DELETED": "The network deleted the message before delivering it.",
    "FAILED": "The message could not be delivered.",
}


def is_gsm7(text: str) -> bool:
    """Whether Onfon should send ``text`` as GSM-7 (``IsUnicode: false``): the pricing rule itself, so what is
    sent is what was quoted (a literal ESC, which only introduces an extension character, forces UCS-2)."""
    return detect_encoding(text) == GSM7


def _code(value: Any) -> str:
    """Onfon sends codes as the int ``0`` or the string ``"000"``; compare them as three-digit strings."""
    text = str(value).strip()
    return f"{int(text):03d}" if text.lstrip("-").isdigit() else text


def _first(record: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if record.get(key) not in (None, ""):
            return record[key]
    return None


def is_jasmin_record(record: dict[str, Any]) -> bool:
    """A push in Jasmin's shape (a DLR has ``message_status``; an incoming SMS ``origin-connector``)."""
    return any(key in record for key in JASMIN_FIELDS)


def _jasmin_report(record: dict[str, Any]) -> DeliveryReport:
    """Jasmin's DLR: ``id`` is the message id Onfon returned on send; level 1 reports the SMS centre's answer
    (``ESME_ROK`` = accepted, another ``ESME_*`` = refused), levels 2 and 3 the handset's (``DELIVRD`` ...)."""
    message_id = str(record.get("id") or "").strip()
    vendor_status = str(record.get("message_status") or "").strip().upper()
    if not message_id or not vendor_status:
        raise MalformedPayload("A Jasmin delivery report needs id and message_status.")
    if vendor_status.startswith("ESME_"):
        state = DeliveryStatus.SENT if vendor_status == "ESME_ROK" else DeliveryStatus.FAILED
        reason = f"The SMS centre refused the message ({vendor_status})."
    else:
        state = DLR_STATES.get(vendor_status, DeliveryStatus.UNKNOWN)
        reason = DLR_REASONS.get(vendor_status, "The message could not be delivered.")
    error_code = str(record.get("err") or "").strip()
    return DeliveryReport(
        provider_message_id=message_id,
        status=state,
        vendor_status=vendor_status,
        error_code=error_code if error_code.strip("0") else None,
        error_reason=reason if state is DeliveryStatus.FAILED else None,
        occurred_at=_jasmin_time(record.get("donedate")) or _jasmin_time(record.get("subdate")),
    )


def _jasmin_time(value: Any) -> datetime | None:
    """Jasmin's ``YYMMDDhhmm`` (SMPP receipts; some SMS centres add seconds), Kenyan local time, as aware UTC."""
    text = str(value or "").strip()
    for fmt in ("%y%m%d%H%M", "%y%m%d%H%M%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=NAIROBI).astimezone(UTC)
        except ValueError:
            continue
    return None


class OnfonProvider(HttpProvider):
    """Onfon Media bulk SMS: one ``SendBulkSMS`` request carries up to ``batch_size`` personalised messages.

    Onfon answers HTTP 200 even for errors: a top-level ``ErrorCode`` other than 0 refuses the whole request,
    and each ``Data`` item has its own ``MessageErrorCode`` (401 = sender ID not whitelisted) even when the
    top-level code is 0. Delivery reports and incoming SMS carry no signature: they are checked with the
    channel token in ``?token=``.
    """

    name = "onfon"
    label = "Onfon Media"
    channel = "sms"
    preferred_batch_size = 100
    credential_fields = (
        SettingField("access_key", _l("Access key"), secret=True, help=_l("The AccessKey header value Onfon issued.")),
        SettingField("api_key", _l("API key"), secret=True),
        SettingField("client_id", _l("Client ID")),
    )
    config_fields = (
        SettingField("sender_id", _l("Sender ID"), help=_l("Must be whitelisted on the Onfon account.")),
        SettingField("base_url", _l("API base URL"), required=False, default=BASE_URL),
        SettingField("batch_size", _l("Recipients per request"), required=False, default=100),
    )

    @property
    def _headers(self) -> dict[str, str]:
        return {"AccessKey": self.credentials["access_key"], "Accept": "application/json"}

    # -- sending

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        presets: dict[int, SendResult] = {}
        prepared: list[OutboundMessage] = []
        groups: dict[tuple[str, bool], list[int]] = {}
        for i, message in enumerate(messages):
            try:
                number = national_digits(normalise_msisdn(message.to))
            except InvalidNumber as exc:
                presets[i] = SendResult.rejected(message.id, exc.reason, code="invalid_number")
                number = message.to
            if i not in presets and not message.body.strip():
                presets[i] = SendResult.rejected(message.id, "The message text is empty.", code="empty_body")
            sender = message.sender or str(self.config["sender_id"])
            prepared.append(replace(message, to=number, sender=sender))
            if i not in presets:
                groups.setdefault((sender, not is_gsm7(message.body)), []).append(i)
        size = max(1, int(self.config["batch_size"]))
        chunks = [indexes[k : k + size] for indexes in groups.values() for k in range(0, len(indexes), size)]
        return self.send_groups(prepared, chunks, self._send_request, presets)

    def _send_request(self, batch: list[OutboundMessage]) -> list[SendResult]:
        payload = {
            "SenderId": batch[0].sender,
            "IsUnicode": not all(is_gsm7(m.body) for m in batch),
            "IsFlash": False,
            "MessageParameters": [{"Number": m.to, "Text": m.body} for m in batch],
            "ApiKey": self.credentials["api_key"],
            "ClientId": self.credentials["client_id"],
        }
        response = self.request(
            "POST", f"{self.base_url}/SendBulkSMS", idempotent=False, json=payload, headers=self._headers
        )
        self._check_http(response, sending=True)
        data = decode_json(response)
        if not isinstance(data, dict) or "ErrorCode" not in data:
            raise OutcomeUnknown(
                "Onfon's answer was not the JSON it normally sends, so the messages may or may not have been accepted.",
                vendor_message=response.text[:200],
            )
        code = _code(data["ErrorCode"])
        description = str(data.get("ErrorDescription") or "")
        if code == "013":
            return [SendResult.rejected(m.id, TOP_LEVEL_REASONS[code], code=code) for m in batch]
        if code != "000":
            raise self._top_level_error(code, description)
        return self._per_message(batch, data.get("Data") or [])

    def _per_message(self, batch: list[OutboundMessage], items: list[Any]) -> list[SendResult]:
        waiting: dict[str, list[int]] = {}
        for i, message in enumerate(batch):
            waiting.setdefault(message.to, []).append(i)
        matched: dict[int, dict[str, Any]] = {}
        unnumbered: list[dict[str, Any]] = []
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            number = re.sub(r"\D", "", str(item.get("MobileNumber") or ""))
            if re.fullmatch(r"0\d{9}", number):
                number = "254" + number[1:]
            if not number:
                unnumbered.append(item)
            elif waiting.get(number):
                matched[waiting[number].pop(0)] = item
        for i in range(len(batch)):  # items without MobileNumber are taken in order (Data follows the request)
            if i not in matched and unnumbered:
                matched[i] = unnumbered.pop(0)
        return [self._item_result(message, matched.get(i)) for i, message in enumerate(batch)]

    def _item_result(self, message: OutboundMessage, item: dict[str, Any] | None) -> SendResult:
        if item is None:
            return SendResult.unknown(
                message.id, "Onfon's answer did not mention this number, so it may or may not have been accepted."
            )
        code = _code(item.get("MessageErrorCode", 0))
        if code == "000":
            message_id = item.get("MessageId")
            return SendResult.accepted(message.id, str(message_id) if message_id not in (None, "") else None)
        vendor = str(item.get("MessageErrorDescription") or "").strip()
        reason = MESSAGE_REASONS.get(code) or "Onfon refused this message."
        if vendor:
            reason = f"{reason} Onfon said: {vendor}"
        return SendResult.rejected(message.id, reason, code=code)

    def _top_level_error(self, code: str, description: str) -> ProviderError:
        reason = TOP_LEVEL_REASONS.get(code, f"Onfon refused the request (error {code}).")
        if code in AUTH_CODES:
            return AuthenticationError(reason, code=code, vendor_message=description)
        if code in TRANSIENT_CODES:
            return TransientError(reason, code=code, vendor_message=description)
        return PermanentError(reason, code=code, vendor_message=description)

    def _check_http(self, response: requests.Response, *, sending: bool) -> None:
        self.raise_for_http_status(
            response, vendor="Onfon", sending=sending, auth_reason="Onfon refused the credentials."
        )

    def fetch_balance(self) -> Balance:
        params = {"ApiKey": self.credentials["api_key"], "ClientId": self.credentials["client_id"]}
        url = f"{self.base_url}/Balance"
        response = self.request("GET", url, idempotent=True, params=params, headers=self._headers)
        self._check_http(response, sending=False)
        data = decode_json(response)
        if not isinstance(data, dict) or "ErrorCode" not in data:
            raise MalformedPayload(
                "Onfon's balance answer is not the expected JSON.", vendor_message=response.text[:200]
            )
        code = _code(data["ErrorCode"])
        if code != "000":
            raise self._top_level_error(code, str(data.get("ErrorDescription") or ""))
        items = [item for item in data.get("Data") or [] if isinstance(item, dict) and "Credits" in item]
        if not items:
            raise MalformedPayload("Onfon's balance answer has no Credits.", vendor_message=response.text[:200])
        sms = next((item for item in items if str(item.get("PluginType", "")).upper() == "SMS"), items[0])
        return parse_amount(sms["Credits"])

    def test_connection(self) -> ConnectionCheck:
        try:
            balance = self.fetch_balance()
        except ProviderError as exc:
            return ConnectionCheck(False, exc.describe())
        return ConnectionCheck(True, f"Connected to Onfon. Balance: {balance.raw}")

    # -- webhooks

    def parse_delivery_report(self, request: WebhookRequest) -> list[DeliveryReport]:
        """Onfon's DLR push (GET query or POST form/JSON) in either shape: Onfon's own (messageId, mobile, status
        (DELIVRD, UNDELIV, ...), errorCode, submitDate, doneDate) or Jasmin's, the gateway Onfon runs on (id,
        id_smsc, message_status, level, subdate, donedate, err, text). Times are read as Kenyan local time."""
        reports = []
        for record in request.payload_records():
            if is_jasmin_record(record):
                reports.append(_jasmin_report(record))
                continue
            message_id = _first(record, "messageId", "MessageId", "messageid")
            vendor_status = str(_first(record, "status", "Status") or "").strip().upper()
            if message_id is None or not vendor_status:
                raise MalformedPayload("An Onfon delivery report needs messageId and status.")
            state = DLR_STATES.get(vendor_status, DeliveryStatus.UNKNOWN)
            error_code = str(_first(record, "errorCode", "ErrorCode") or "").strip()
            if error_code.strip("0") == "":
                error_code = ""
            reason = None
            if state is DeliveryStatus.FAILED:
                reason = DLR_REASONS.get(vendor_status, "The message could not be delivered.")
            reports.append(
                DeliveryReport(
                    provider_message_id=str(message_id),
                    status=state,
                    vendor_status=vendor_status,
                    error_code=error_code or None,
                    error_reason=reason,
                    occurred_at=parse_time(_first(record, "doneDate", "DoneDate", "submitDate")),
                    recipient=e164_or_none(_first(record, "mobile", "MobileNumber", "msisdn")),
                )
            )
        return reports

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        """An incoming SMS (GET query, or POST JSON or form) with any of from/mobile/msisdn, to/shortcode/sender_id,
        message/text/content (Jasmin's name) and id/messageId."""
        messages = []
        for record in request.payload_records():
            sender = _first(record, "from", "mobile", "msisdn")
            if sender is None:
                raise MalformedPayload("An Onfon incoming message needs from, mobile or msisdn.")
            text = next((record[k] for k in ("message", "text", "content") if record.get(k) is not None), None)
            if text is None:
                raise MalformedPayload("An Onfon incoming message needs message, text or content.")
            to = _first(record, "to", "shortcode", "sender_id")
            message_id = _first(record, "id", "messageId")
            messages.append(
                InboundMessage(
                    sender=to_e164(sender),
                    to=str(to) if to is not None else None,
                    text=str(text),
                    provider_message_id=str(message_id) if message_id is not None else None,
                    received_at=parse_time(_first(record, "date", "timestamp", "received_at")) or utcnow(),
                    channel="sms",
                )
            )
        return messages
