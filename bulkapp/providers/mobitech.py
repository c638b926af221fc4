"""Mobitech Technologies SMS (Kenya): one recipient per request, balance, and the one known DLR shape.

Mobitech publishes no usable API document. The send call (``POST /sms/sendsms`` with the ``h_api_key``
header, a JSON array answer with ``status_code "1000"`` on success) is known from many integrations; its
other status codes are not, so any code but 1000 is reported as a refusal in Mobitech's own words.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from flask_babel import lazy_gettext as _l

from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.providers.base import (
    Balance,
    ConnectionCheck,
    DeliveryReport,
    DeliveryStatus,
    HttpProvider,
    MalformedPayload,
    OutboundMessage,
    OutcomeUnknown,
    PermanentError,
    ProviderError,
    SendResult,
    SettingField,
    WebhookRequest,
    decode_json,
    e164_or_none,
    national_digits,
    parse_amount,
    parse_time,
)

BASE_URL = "https://app.mobitechtechnologies.com"
SUCCESS = "1000"
# dlrStatus as documented (one integration's model: 1 delivered, 2 failed, 3 pending). 0 has no documented
# meaning: it is a valid report that moves nothing (unknown), like any value Mobitech may add later.
DLR_STATES = {
    "0": DeliveryStatus.UNKNOWN,
    "1": DeliveryStatus.DELIVERED,
    "2": DeliveryStatus.FAILED,
    "3": DeliveryStatus.SENT,
}


def _first_record(data: Any) -> dict[str, Any] | None:
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0]
    return data if isinstance(data, dict) else None


class MobitechProvider(HttpProvider):
    """Mobitech bulk SMS: ``POST /sms/sendsms`` once per recipient on the pooled session."""

    name = "mobitech"
    label = "Mobitech"
    channel = "sms"
    credential_fields = (SettingField("api_key", _l("API key"), secret=True, help=_l("The h_api_key from Mobitech.")),)
    config_fields = (
        SettingField(
            "sender_name", _l("Sender ID or shortcode"), help=_l("e.g. 23107 (shared) or your own sender ID.")
        ),
        SettingField("service_id", _l("Service ID"), required=False, default=0, help=_l("0 for bulk SMS.")),
        SettingField("base_url", _l("API base URL"), required=False, default=BASE_URL),
    )

    @property
    def _headers(self) -> dict[str, str]:
        return {"h_api_key": self.credentials["api_key"], "Accept": "application/json"}

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        return self.send_each(messages, self._local_problem, self._send_one)

    def _local_problem(self, message: OutboundMessage) -> SendResult | None:
        try:
            normalise_msisdn(message.to)
        except InvalidNumber as exc:
            return SendResult.rejected(message.id, exc.reason, code="invalid_number")
        if not message.body.strip():
            return SendResult.rejected(message.id, "The message text is empty.", code="empty_body")
        return None

    def _send_one(self, message: OutboundMessage) -> SendResult:
        payload = {
            "mobile": national_digits(normalise_msisdn(message.to)),
            "response_type": "json",
            "sender_name": message.sender or str(self.config["sender_name"]),
            "service_id": int(self.config["service_id"]),
            "message": message.body,
        }
        response = self.request(
            "POST", f"{self.base_url}/sms/sendsms", idempotent=False, json=payload, headers=self._headers
        )
        self._check_http(response, sending=True)
        record = _first_record(decode_json(response))
        if record is None or "status_code" not in record:
            raise OutcomeUnknown(
                "Mobitech's answer was not the JSON it normally sends, so the message may have been accepted.",
                vendor_message=response.text[:200],
            )
        code = str(record["status_code"]).strip()
        if code != SUCCESS:
            vendor = str(record.get("status_desc") or "no description")
            return SendResult.rejected(message.id, f"Mobitech refused the message: {vendor}", code=code)
        message_id = record.get("message_id")
        return SendResult.accepted(
            message.id,
            str(message_id) if message_id not in (None, "") else None,
            cost=_decimal(record.get("message_cost")),
        )

    def _check_http(self, response: requests.Response, *, sending: bool) -> None:
        self.raise_for_http_status(
            response, vendor="Mobitech", sending=sending, auth_reason="Mobitech rejected the API key."
        )

    def fetch_balance(self) -> Balance:
        response = self.request("GET", f"{self.base_url}/sms/getbalance", idempotent=True, headers=self._headers)
        self._check_http(response, sending=False)
        record = _first_record(decode_json(response))
        if record is None or record.get("credit_balance") in (None, ""):
            raise MalformedPayload(
                "Mobitech's balance answer has no credit_balance.", vendor_message=response.text[:200]
            )
        if str(record.get("status_code", SUCCESS)) != SUCCESS:
            raise PermanentError(
                "Mobitech refused the balance request.",
                code=str(record.get("status_code")),
                vendor_message=str(record.get("status_desc") or ""),
            )
        return parse_amount(record["credit_balance"])

    def test_connection(self) -> ConnectionCheck:
        try:
            balance = self.fetch_balance()
        except ProviderError as exc:
            return ConnectionCheck(False, exc.describe())
        return ConnectionCheck(True, f"Connected to Mobitech. Credit balance: {balance.raw}")

    def parse_delivery_report(self, request: WebhookRequest) -> list[DeliveryReport]:
        """The one DLR shape seen in an integration (unconfirmed by Mobitech): messageId, dlrStatus (1 delivered,
        2 failed, 3 pending; 0 and others unknown, a number or a string), dlrDesc, dlrTime, destaddr; JSON or form."""
        reports = []
        for record in request.payload_records():
            message_id = record.get("messageId")
            if message_id in (None, ""):
                message_id = record.get("message_id")
            status = record.get("dlrStatus")
            code = "" if status is None or isinstance(status, bool) else str(status).strip()  # 0 is a status
            if message_id in (None, "") or not code:
                raise MalformedPayload("A Mobitech delivery report needs messageId and dlrStatus.")
            state = DLR_STATES.get(code, DeliveryStatus.UNKNOWN)
            description = str(record.get("dlrDesc") or "").strip() or None
            reports.append(
                DeliveryReport(
                    provider_message_id=str(message_id),
                    status=state,
                    vendor_status=description or code,
                    error_code=code if state is DeliveryStatus.FAILED else None,
                    error_reason=_failure_reason(description) if state is DeliveryStatus.FAILED else None,
                    occurred_at=parse_time(record.get("dlrTime")),
                    recipient=e164_or_none(record.get("destaddr")),
                )
            )
        return reports


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def _failure_reason(description: str | None) -> str:
    return (
        f"The message could not be delivered ({description})." if description else "The message could not be delivered."
    )
