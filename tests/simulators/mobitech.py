"""Mobitech simulator: ``POST /sms/sendsms`` (one recipient, ``h_api_key``), ``GET /sms/getbalance``, optional DLRs.

Fixture: ``mobitech_sim`` (add this module to ``pytest_plugins`` in tests/conftest.py).
Mobitech's real non-1000 codes are unknown: :data:`STAND_IN_CODES` are invented stand-ins, configurable per simulator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.simulators.base import Callback, SimRequest, SimResponse, Simulator, magic, run_standalone, segments

STAND_IN_CODES = {
    "invalid_key": ("4001", "Invalid API key"),
    "invalid_sender": ("4002", "Invalid sender name"),
    "invalid_number": ("4003", "Invalid mobile number"),
    "low_credit": ("4005", "Insufficient credit"),
    "opted_out": ("4006", "Subscriber has opted out"),
}


class MobitechSimulator(Simulator):
    """Mobitech's SMS API. A wrong ``h_api_key`` answers ``auth_failure_status`` (401 by default) with the
    stand-in invalid-key code; each accepted message costs ``segments x price``. With ``send_dlrs`` and
    ``dlr_url`` set, a JSON delivery report in the one known shape follows each accepted message."""

    vendor = "mobitech"
    configurable = (*Simulator.configurable, "balance", "price", "send_dlrs", "dlr_url", "auth_failure_status")

    def __init__(
        self,
        *,
        api_key: str = "a" * 64,
        senders: tuple[str, ...] = ("23107", "ACME"),
        balance: Decimal = Decimal("100.00"),
        price: Decimal = Decimal("0.80"),
        auth_failure_status: int = 401,
        send_dlrs: bool = False,
        dlr_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.senders = set(senders)
        self.balance, self.price = balance, price
        self.auth_failure_status = auth_failure_status
        self.send_dlrs, self.dlr_url = send_dlrs, dlr_url
        self.codes = dict(STAND_IN_CODES)

    @property
    def credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"sender_name": "23107", "base_url": self.url, **extra}

    def _record_answer(self, code: str, description: str, **fields: Any) -> list[dict[str, Any]]:
        return [{"status_code": code, "status_desc": description, **fields}]

    def auth_failure(self) -> SimResponse:
        return SimResponse(self.auth_failure_status, self._record_answer(*self.codes["invalid_key"]))

    def busy(self, status: int) -> SimResponse:
        headers = {"Retry-After": str(self.retry_after)} if status == 429 else {}
        return SimResponse(status, {"message": "busy"}, headers)

    def handle(self, request: SimRequest) -> SimResponse:
        if request.headers.get("h_api_key") != self.api_key:
            return self.auth_failure()
        route = (request.method, request.path)
        if route == ("POST", "/sms/sendsms"):
            return self._send(request)
        if route == ("GET", "/sms/getbalance"):
            return SimResponse(
                200, {"status_code": "1000", "status_desc": "Success", "credit_balance": f"{self.balance}"}
            )
        return SimResponse(404, {"message": "Not Found"})

    def _send(self, request: SimRequest) -> SimResponse:
        body = request.json() or {}
        mobile, text = str(body.get("mobile") or ""), str(body.get("message") or "")
        sender = str(body.get("sender_name") or "")
        outcome = magic(mobile)
        if outcome == "server_error" and self.should_fail(mobile, outcome):
            return self.busy(503)
        if outcome == "rate_limited" and self.should_fail(mobile, outcome):
            return self.busy(429)
        refusal = None
        if sender not in self.senders:
            refusal = "invalid_sender"
        elif not re.fullmatch(r"\+?254(7\d{8}|1[0-3]\d{7})", mobile) or outcome == "invalid":
            refusal = "invalid_number"
        elif outcome == "opted_out":
            refusal = "opted_out"
        cost = self.price * segments(text)
        with self.lock:
            if refusal is None and cost > self.balance:
                refusal = "low_credit"
            if refusal is None:
                self.balance -= cost
            balance = self.balance
        if refusal:
            code, description = self.codes[refusal]
            self.record(mobile, text, sender, None, description)
            return SimResponse(200, self._record_answer(code, description, mobile_number=mobile))
        message_id = 100000 + self.next_id()
        self.record(mobile, text, sender, str(message_id), "accepted")
        if self.send_dlrs and self.dlr_url and outcome != "no_report":
            self._dlr(message_id, mobile, sender, delivered=outcome != "undelivered")
        answer = self._record_answer(
            "1000",
            "Success",
            message_id=message_id,
            mobile_number=mobile,
            network_id="1",
            message_cost=f"{cost}",
            credit_balance=f"{balance}",
        )
        return SimResponse(200, answer, delay=self.timeout_delay if outcome == "timeout" else 0.0)

    def _dlr(self, message_id: int, mobile: str, sender: str, *, delivered: bool) -> None:
        payload = {
            "messageId": str(message_id),
            "dlrTime": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "dlrStatus": 1 if delivered else 2,
            "dlrDesc": "DELIVRD" if delivered else "UNDELIV",
            "tat": 3,
            "network": "Safaricom",
            "destaddr": mobile,
            "sourceaddr": sender,
            "origin": "bulk",
        }
        headers = {"Content-Type": "application/json"}
        self.queue_callback(Callback("POST", str(self.dlr_url), headers, json.dumps(payload).encode()))


@pytest.fixture
def mobitech_sim() -> Iterator[MobitechSimulator]:
    """A fresh Mobitech simulator on loopback, stopped after the test."""
    with MobitechSimulator() as simulator:
        yield simulator


if __name__ == "__main__":
    run_standalone(MobitechSimulator)
