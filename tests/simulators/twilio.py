"""Twilio Messages API simulator: Basic auth, JSON error envelopes, signed status callbacks and inbound SMS.

Fixture: ``twilio_sim`` (add this module to ``pytest_plugins`` in tests/conftest.py).
Magic numbers: :data:`tests.simulators.base.MAGIC`
(``99`` -> 21211, ``88`` -> 21610, ``01`` -> undelivered 30003); landlines
(``+25420…``) -> 21614; an inbound ``STOP`` opts the sender out (21610 afterwards).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.simulators.base import Callback, SimRequest, SimResponse, Simulator, magic, run_standalone, segments

API_VERSION = "2010-04-01"
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
FORM = "application/x-www-form-urlencoded"


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str | list[str]]) -> str:
    """X-Twilio-Signature for a form POST: base64(HMAC-SHA1(auth_token, url + name+value for sorted names))."""
    message = url
    for name in sorted(params):
        values = params[name]
        for value in sorted(values) if isinstance(values, list) else [values]:
            message += name + value
    return base64.b64encode(hmac.new(auth_token.encode(), message.encode(), hashlib.sha1).digest()).decode()


def signed_form_callback(url: str, auth_token: str, params: Mapping[str, str]) -> Callback:
    """A form POST to ``url`` signed as Twilio signs webhooks (for endpoint tests and the simulator)."""
    headers = {"Content-Type": FORM, "X-Twilio-Signature": twilio_signature(auth_token, url, params)}
    return Callback("POST", url, headers, urlencode(params).encode())


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> SimResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return SimResponse(status, body, headers or {})


class TwilioSimulator(Simulator):
    """Twilio's 2010-04-01 REST API for one account. Status callbacks go to each message's ``StatusCallback``
    (Twilio retries once); incoming SMS go to ``inbound_url``; both signed with the auth token."""

    vendor = "twilio"
    callback_retries = 1
    configurable = (*Simulator.configurable, "balance", "price", "inbound_url")

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "1" * 32,
        auth_token: str = "twilio-auth-token",
        from_number: str = "+15005550006",
        balance: Decimal = Decimal("20.00"),
        price: Decimal = Decimal("0.0500"),
        inbound_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.account_sid, self.auth_token, self.from_number = account_sid, auth_token, from_number
        self.balance, self.price = balance, price
        self.inbound_url = inbound_url
        self.opted_out: set[str] = set()
        self.resources: dict[str, dict[str, Any]] = {}

    @property
    def credentials(self) -> dict[str, str]:
        return {"account_sid": self.account_sid, "auth_token": self.auth_token}

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"from_number": self.from_number, "base_url": self.url, **extra}

    def auth_failure(self) -> SimResponse:
        return _error(401, 20003, "Authenticate")

    def busy(self, status: int) -> SimResponse:
        if status == 429:
            return _error(429, 20429, "Too Many Requests", {"Retry-After": str(self.retry_after)})
        return _error(status, 20500, "Service Unavailable")

    def _authorised(self, request: SimRequest) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(f"{user}:{password}", f"{self.account_sid}:{self.auth_token}")

    def handle(self, request: SimRequest) -> SimResponse:
        prefix = f"/{API_VERSION}/Accounts/{self.account_sid}"
        if not request.path.startswith(f"/{API_VERSION}/Accounts/"):
            return _error(404, 20404, "The requested resource was not found")
        if not self._authorised(request) or not request.path.startswith(prefix):
            return self.auth_failure()
        route = (request.method, request.path.removeprefix(prefix))
        if route == ("POST", "/Messages.json"):
            return self._create(request)
        if route == ("GET", ".json"):
            return SimResponse(200, {"sid": self.account_sid, "friendly_name": "Bulkapp test", "status": "active"})
        if route == ("GET", "/Balance.json"):
            return SimResponse(
                200, {"account_sid": self.account_sid, "balance": f"{self.balance:.2f}", "currency": "USD"}
            )
        match = re.fullmatch(r"/Messages/(SM\w+)\.json", route[1])
        if request.method == "GET" and match and match.group(1) in self.resources:
            return SimResponse(200, self.resources[match.group(1)])
        return _error(404, 20404, "The requested resource was not found")

    def _create(self, request: SimRequest) -> SimResponse:
        form = request.form
        to, sender, body = form.get("To", ""), form.get("From"), form.get("Body")
        service = form.get("MessagingServiceSid")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not sender and not service:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        outcome = magic(to)
        if outcome == "server_error" and self.should_fail(to, outcome):
            return self.busy(503)
        if outcome == "rate_limited" and self.should_fail(to, outcome):
            return self.busy(429)
        refusal = None
        if not re.fullmatch(r"\+\d{8,15}", to) or outcome == "invalid":
            refusal = _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        elif outcome == "opted_out" or to in self.opted_out:
            refusal = _error(400, 21610, "Attempt to send to unsubscribed recipient")
        elif to.startswith("+25420"):
            refusal = _error(400, 21614, f"'To' number {to} is not a valid mobile number")
        if refusal:
            self.record(to, body, sender, None, refusal.body["message"])
            return refusal
        sid = f"SM{self.next_id():032x}"
        parts = segments(body)
        now = format_datetime(datetime.now(UTC))
        resource = {
            "sid": sid,
            "account_sid": self.account_sid,
            "messaging_service_sid": service,
            "to": to,
            "from": sender,
            "body": body,
            "status": "accepted" if service and not sender else "queued",
            "num_segments": "0" if service and not sender else str(parts),
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": API_VERSION,
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
            "subresource_uris": {"media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
        }
        with self.lock:
            self.balance -= self.price * parts
            self.resources[sid] = resource
        self.record(to, body, sender or service, sid, "accepted")
        if form.get("StatusCallback"):
            self._status_callbacks(form["StatusCallback"], resource, outcome)
        delay = self.timeout_delay if outcome == "timeout" else 0.0
        return SimResponse(201, dict(resource), delay=delay)

    def _status_callbacks(self, url: str, resource: dict[str, Any], outcome: str) -> None:
        final = {"undelivered": ("undelivered", "30003"), "no_report": None}.get(outcome, ("delivered", None))
        steps = [("sent", None)] + ([final] if final else [])
        for status, error_code in steps:
            params = {
                "MessageSid": resource["sid"],
                "MessageStatus": status,
                "SmsSid": resource["sid"],
                "SmsStatus": status,
                "AccountSid": self.account_sid,
                "From": resource["from"] or "",
                "To": resource["to"],
                "ApiVersion": API_VERSION,
            }
            if resource["messaging_service_sid"]:
                params["MessagingServiceSid"] = resource["messaging_service_sid"]
            if error_code:
                params["ErrorCode"] = error_code
            if status in ("delivered", "undelivered"):
                params["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
            with self.lock:
                resource["status"] = status
            self.queue_callback(signed_form_callback(url, self.auth_token, params))

    def inject_inbound(self, **kwargs: Any) -> list[Callback]:
        """``inject_inbound(sender="+254712345678", text="STOP")`` -> a signed POST to ``inbound_url``; a STOP
        keyword opts the sender out, as Twilio's default opt-out handling does. ``media=[url, ...]`` makes it an
        MMS (``NumMedia``, ``MediaUrl0..N``, ``MediaContentType0..N``)."""
        if not self.inbound_url:
            raise NotImplementedError("set inbound_url first")
        sender, text = str(kwargs["sender"]), str(kwargs.get("text", ""))
        media = list(kwargs.get("media", ()))  # MMS: media URLs on Twilio's side (MediaUrl0..N)
        if text.strip().upper() in STOP_WORDS:
            self.opted_out.add(sender)
        sid = f"SM{self.next_id():032x}"
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "To": str(kwargs.get("to", self.from_number)),
            "Body": text,
            "NumMedia": str(len(media)),
            "NumSegments": str(segments(text) if text else 1),
            "SmsStatus": "received",
            "FromCountry": "KE",
            "ApiVersion": API_VERSION,
        }
        for i, url in enumerate(media):
            params[f"MediaUrl{i}"] = url
            params[f"MediaContentType{i}"] = "image/jpeg"
        callback = signed_form_callback(self.inbound_url, self.auth_token, params)
        self.queue_callback(callback)
        return [callback]


@pytest.fixture
def twilio_sim() -> Iterator[TwilioSimulator]:
    """A fresh Twilio simulator on loopback, stopped after the test."""
    with TwilioSimulator() as simulator:
        yield simulator


if __name__ == "__main__":
    run_standalone(TwilioSimulator)
