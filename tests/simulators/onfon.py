"""Onfon Media simulator: SendBulkSMS with per-message codes, a KSh balance ledger, GET sms, GET DLR callbacks.

Fixture: ``onfon_sim`` (add this module to ``pytest_plugins`` in tests/conftest.py).
Magic numbers: :data:`tests.simulators.base.MAGIC`; a ``55`` or ``77`` number fails the whole request (503/429).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.simulators.base import Callback, SimRequest, SimResponse, Simulator, magic, run_standalone, segments

VALID_NUMBER = r"254(7\d{8}|1[0-3]\d{7})"
BOOLEANS = (True, False, 0, 1, "0", "1", "true", "false", "True", "False")
FLAGS = ("IsUnicode", "IsFlash")


def dlr_params(
    message_id: str,
    mobile: str,
    status: str = "DELIVRD",
    error_code: str = "000",
    submit_date: str = "2026-04-08 09:30",
    done_date: str = "2026-04-08 09:31",
    short_message: str = "",
) -> dict[str, str]:
    """The query parameters of an Onfon delivery report (for endpoint tests: ``GET /webhooks/onfon/dlr``)."""
    return {
        "messageId": message_id,
        "mobile": mobile.lstrip("+"),
        "status": status,
        "errorCode": error_code,
        "submitDate": submit_date,
        "doneDate": done_date,
        "shortMessage": short_message,
    }


def jasmin_dlr_params(
    message_id: str,
    status: str = "DELIVRD",
    *,
    level: int = 2,
    err: str = "000",
    smsc_id: str = "2567",
    submit_date: str = "2604080930",
    done_date: str = "2604080931",
    text: str = "",
) -> dict[str, str]:
    """A delivery report in Jasmin's shape (the gateway under Onfon's REST service): level 1 carries only id,
    message_status (``ESME_ROK`` or another ``ESME_*``) and level; levels 2 and 3 add the SMS centre's id, the
    dates as ``YYMMDDhhmm``, sub/dlvrd counts, err and the first 20 characters of the text."""
    if level == 1:
        return {"id": message_id, "message_status": status, "level": "1"}
    return {
        "id": message_id,
        "id_smsc": smsc_id,
        "message_status": status,
        "level": str(level),
        "subdate": submit_date,
        "donedate": done_date,
        "sub": "001",
        "dlvrd": "001" if status == "DELIVRD" else "000",
        "err": err,
        "text": text[:20],
    }


def jasmin_mo_params(message_id: str, sender: str, to: str, text: str) -> dict[str, str]:
    """An incoming SMS as Jasmin forwards it to an HTTP connector."""
    return {"id": message_id, "from": sender, "to": to, "origin-connector": "onfon", "coding": "0", "content": text}


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


class OnfonSimulator(Simulator):
    """Onfon's ``/v1/sms`` API on loopback.

    ``senders`` is the sender-ID allowlist (others get per-message ``MessageErrorCode 401``), ``balance`` the
    KSh credit that each accepted message reduces by ``segments x price_per_unit`` (over it: ``021``),
    ``string_codes`` answers ``"000"`` instead of ``0``. Delivery reports go as GET to ``dlr_url`` (no retry,
    as Onfon); incoming SMS as a JSON POST to ``inbound_url``. With ``shape="jasmin"`` both follow Jasmin's
    push instead (``id, id_smsc, message_status, level, subdate, donedate, err, text`` for a report; ``id, from,
    to, origin-connector, content`` for an incoming SMS) by ``jasmin_method`` (GET query or POST form), and an
    answer other than 200 with the body ``ACK/Jasmin`` is retried, as Jasmin does. ``unicode_flags`` records the
    ``IsUnicode`` each accepted text was sent with.
    """

    vendor = "onfon"
    configurable = (
        *Simulator.configurable,
        *("balance", "price_per_unit", "string_codes", "dlr_url", "inbound_url", "shape", "jasmin_method"),
    )

    def __init__(
        self,
        *,
        access_key: str = "onfon-access-key",
        api_key: str = "onfon-api-key",
        client_id: str = "bulkapp-client",
        senders: tuple[str, ...] = ("BULKAPP", "ACME"),
        balance: Decimal = Decimal("1000.0000"),
        price_per_unit: Decimal = Decimal("0.8000"),
        string_codes: bool = False,
        dlr_url: str | None = None,
        inbound_url: str | None = None,
        shape: str = "onfon",
        jasmin_method: str = "GET",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.shape, self.jasmin_method = shape, jasmin_method
        self.unicode_flags: dict[str, Any] = {}  # text -> the IsUnicode it was sent with
        self.access_key, self.api_key, self.client_id = access_key, api_key, client_id
        self.senders = set(senders)
        self.balance = balance
        self.price_per_unit = price_per_unit
        self.string_codes = string_codes
        self.dlr_url = dlr_url
        self.inbound_url = inbound_url
        self.messages: dict[str, dict[str, Any]] = {}  # MessageId -> the GET sms record

    # -- settings for the adapter under test

    @property
    def credentials(self) -> dict[str, str]:
        return {"access_key": self.access_key, "api_key": self.api_key, "client_id": self.client_id}

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"sender_id": sorted(self.senders)[0], "base_url": f"{self.url}/v1/sms", **extra}

    # -- API

    def handle(self, request: SimRequest) -> SimResponse:
        route = (request.method, request.path)
        if route == ("POST", "/v1/sms/SendBulkSMS"):
            return self._send(request)
        if route == ("GET", "/v1/sms/Balance"):
            return self._balance(request)
        if route == ("GET", "/v1/sms/sms"):
            return self._list(request)
        return SimResponse(404, "Not Found")

    def _code(self, code: int) -> int | str:
        return f"{code:03d}" if self.string_codes else code

    def _answer(self, code: int, description: str, data: Any = None, delay: float = 0.0) -> SimResponse:
        body = {"ErrorCode": self._code(code), "ErrorDescription": description, "Data": [] if data is None else data}
        return SimResponse(200, body, delay=delay)

    def _authorised(self, request: SimRequest, fields: dict[str, Any]) -> bool:
        return (
            request.headers.get("accesskey") == self.access_key
            and fields.get("ApiKey") == self.api_key
            and str(fields.get("ClientId")) == self.client_id
        )

    def auth_failure(self) -> SimResponse:
        return self._answer(7, "Invalid api credential")

    def busy(self, status: int) -> SimResponse:
        headers = {"Retry-After": str(self.retry_after)} if status == 429 else {}
        return SimResponse(
            status, {"message": "Service Unavailable" if status == 503 else "Too Many Requests"}, headers
        )

    def _send(self, request: SimRequest) -> SimResponse:
        body = request.json()
        if not isinstance(body, dict):
            return self._answer(23, "Parameter missing")
        if not self._authorised(request, body):
            return self.auth_failure()
        sender = str(body.get("SenderId") or "")
        params = body.get("MessageParameters")
        if not sender:
            return self._answer(3, "SenderId can not be blank")
        if not isinstance(params, list) or not params:
            return self._answer(5, "Message properties can not be blank")
        if any(body.get(flag) not in (*BOOLEANS, None) for flag in FLAGS):
            return self._answer(23, "Parameter missing")
        if body.get("ScheduleDateTime") and not _valid_schedule(str(body["ScheduleDateTime"])):
            return self._answer(19, "Invalid schedule date")
        numbers = [str(p.get("Number") or "") if isinstance(p, dict) else "" for p in params]
        texts = [str(p.get("Text") or "") if isinstance(p, dict) else "" for p in params]
        with self.lock:
            self.unicode_flags.update(dict.fromkeys(texts, body.get("IsUnicode")))
        if any(not text.strip() for text in texts):
            return self._answer(4, "Message can not be blank")
        if any(not number for number in numbers):
            return self._answer(20, "Message or mobile number can not be blank")
        outcomes = [magic(number) for number in numbers]
        for number, outcome in zip(numbers, outcomes, strict=True):
            if outcome == "server_error" and self.should_fail(number, outcome):
                return self.busy(503)
            if outcome == "rate_limited" and self.should_fail(number, outcome):
                return self.busy(429)
        valid = [bool(re.fullmatch(VALID_NUMBER, n)) and o != "invalid" for n, o in zip(numbers, outcomes, strict=True)]
        if not any(valid):
            return self._answer(13, "Invalid mobile numbers")
        sender_ok = sender in self.senders
        deliverable = [v and sender_ok and o != "opted_out" for v, o in zip(valid, outcomes, strict=True)]
        cost = sum(
            (segments(t) * self.price_per_unit for t, d in zip(texts, deliverable, strict=True) if d), Decimal(0)
        )
        with self.lock:
            if cost > self.balance:
                return self._answer(21, "Insufficient wallet credits")
            self.balance -= cost
        data = [
            self._item(number, text, sender, outcome, ok, sender_ok)
            for number, text, outcome, ok in zip(numbers, texts, outcomes, valid, strict=True)
        ]
        delay = self.timeout_delay if "timeout" in outcomes else 0.0
        return self._answer(0, "Success", data, delay=delay)

    def _item(self, number: str, text: str, sender: str, outcome: str, valid: bool, sender_ok: bool) -> dict:
        if not sender_ok:
            code = 401
            description = f"Value filter failed for user [{self.client_id}] (source_address filter mismatch)."
        elif not valid:
            code, description = 13, "Invalid mobile number"
        elif outcome == "opted_out":
            code, description = 406, "Subscriber has opted out of promotional messages (DND)"
        else:
            message_id = f"Smsc{self.next_id()}"
            self.record(number, text, sender, message_id, "accepted")
            self._after_accept(message_id, number, text, sender, outcome)
            return {
                "MessageErrorCode": 0,
                "MessageErrorDescription": "Success",
                "MobileNumber": number,
                "MessageId": message_id,
            }
        self.record(number, text, sender, None, description)
        return {
            "MessageErrorCode": code,
            "MessageErrorDescription": description,
            "MobileNumber": number,
            "MessageId": "",
        }

    def _after_accept(self, message_id: str, number: str, text: str, sender: str, outcome: str) -> None:
        status = {"undelivered": "UNDELIV", "no_report": "ENROUTE"}.get(outcome, "DELIVRD")
        now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        with self.lock:
            self.messages[message_id] = {
                "MobileNumber": number,
                "SenderId": sender,
                "Message": text,
                "SubmitDate": now,
                "MessageId": message_id,
                "DoneDate": now if status != "ENROUTE" else "",
                "Status": status,
            }
        if self.dlr_url and status != "ENROUTE":
            error_code = "000" if status == "DELIVRD" else "001"
            if self.shape == "jasmin":
                stamp = datetime.now().strftime("%y%m%d%H%M")
                jasmin = jasmin_dlr_params(
                    message_id, status, err=error_code, submit_date=stamp, done_date=stamp, text=text
                )
                self.queue_callback(self._jasmin_callback(self.dlr_url, jasmin))
            else:
                params = dlr_params(message_id, number, status, error_code, now, now, text[:20])
                self.queue_callback(Callback("GET", _with_query(self.dlr_url, params), {}, b""))

    def _jasmin_callback(self, url: str, params: dict[str, str]) -> Callback:
        if self.jasmin_method == "POST":
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            return Callback("POST", url, headers, urlencode(params).encode())
        return Callback("GET", _with_query(url, params), {}, b"")

    def deliver_callbacks(self) -> list[int]:
        """Onfon's own pushes are sent once; Jasmin's are resent (up to ``callback_retries``) until the answer is
        200 with the body exactly ``ACK/Jasmin``. The final status of each (0 when never acknowledged)."""
        if self.shape != "jasmin":
            return super().deliver_callbacks()
        statuses = []
        for callback in self.take_callbacks():
            status = 0
            for _ in range(self.callback_retries + 1):
                if jasmin_acknowledged(callback):
                    status = 200
                    break
            with self.lock:
                self.delivered.append((callback, status))
            statuses.append(status)
        return statuses

    def _balance(self, request: SimRequest) -> SimResponse:
        if not self._authorised(request, request.query):
            return self.auth_failure()
        return self._answer(0, "Success", [{"PluginType": "SMS", "Credits": f"KSh{self.balance:.4f}"}])

    def _list(self, request: SimRequest) -> SimResponse:
        if not self._authorised(request, request.query):
            return self.auth_failure()
        start, length = int(request.query.get("start") or 0), int(request.query.get("length") or 100)
        first, last = request.query.get("fromdate") or "0000-00-00", request.query.get("enddate") or "9999-99-99"
        with self.lock:
            rows = [m for m in self.messages.values() if first <= m["SubmitDate"][:10] <= last]
        return self._answer(0, "Success", {"messages": rows[start : start + length], "total": len(rows)})

    # -- inbound

    def inject_inbound(self, **kwargs: Any) -> list[Callback]:
        """``inject_inbound(sender="254712345678", text="STOP", to="22384")`` -> a JSON POST to ``inbound_url``
        (in Jasmin's shape: a GET query or form POST, see ``shape``)."""
        if not self.inbound_url:
            raise NotImplementedError("set inbound_url first")
        if self.shape == "jasmin":
            params = jasmin_mo_params(
                f"MO{self.next_id()}", str(kwargs["sender"]), kwargs.get("to", "22384"), kwargs.get("text", "")
            )
            callback = self._jasmin_callback(self.inbound_url, params)
            self.queue_callback(callback)
            return [callback]
        payload = {
            "from": str(kwargs["sender"]).lstrip("+"),
            "to": kwargs.get("to", "22384"),
            "message": kwargs.get("text", ""),
            "id": f"MO{self.next_id()}",
            "date": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        }
        callback = Callback("POST", self.inbound_url, {"Content-Type": "application/json"}, _json(payload))
        self.queue_callback(callback)
        return [callback]

    # -- capacity

    def measure_capacity(self, total: int = 2000, batch_size: int = 100) -> float:
        """Messages per second this simulator accepts from one plain client in batches of ``batch_size``: the
        baseline a dispatch benchmark can compare itself with. Leaves balance, records and messages as they were."""
        saved_balance, saved_records, saved_ids = self.balance, len(self.submissions), set(self.messages)
        self.balance = Decimal(10**9)
        session = requests.Session()
        numbers = (n for n in range(254700000000, 254799999999) if magic(str(n)) == "delivered")
        headers = {"AccessKey": self.access_key}
        started = time.perf_counter()
        for _ in range(0, total, batch_size):
            params = [{"Number": str(next(numbers)), "Text": "Capacity check"} for _ in range(batch_size)]
            body = {"SenderId": sorted(self.senders)[0], "MessageParameters": params, "ApiKey": self.api_key}
            body["ClientId"] = self.client_id
            session.post(f"{self.url}/v1/sms/SendBulkSMS", json=body, headers=headers, timeout=30).raise_for_status()
        elapsed = time.perf_counter() - started
        session.close()
        with self.lock:
            self.balance = saved_balance
            del self.submissions[saved_records:]
            for message_id in set(self.messages) - saved_ids:
                del self.messages[message_id]
        return total / elapsed


def jasmin_acknowledged(callback: Callback, timeout: float = 10.0) -> bool:
    """Send ``callback`` as Jasmin does: acknowledged only by a 200 whose body is exactly ``ACK/Jasmin``."""
    try:
        response = requests.request(
            callback.method, callback.url, headers=callback.headers, data=callback.body, timeout=timeout
        )
    except requests.RequestException:
        return False
    return response.status_code == 200 and response.text == "ACK/Jasmin"


def _valid_schedule(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d %H:%M")
    except ValueError:
        return False
    return True


def _json(payload: Any) -> bytes:
    return json.dumps(payload).encode()


@pytest.fixture
def onfon_sim() -> Iterator[OnfonSimulator]:
    """A fresh Onfon simulator on loopback, stopped after the test."""
    with OnfonSimulator() as simulator:
        yield simulator


if __name__ == "__main__":
    run_standalone(OnfonSimulator)
