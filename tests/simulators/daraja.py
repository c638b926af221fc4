"""A local Safaricom Daraja (M-Pesa) simulator: a real HTTP server on loopback for integration tests.

It follows reference/providers.md section 7: Basic-auth OAuth tokens, STK push with password and EAT
timestamp checks, STK callbacks POSTed to the CallBackURL from a background thread after a delay, STK
query ("being processed" until the customer has answered) and C2B URL registration plus payment
simulation (validation, then one or more confirmations).

The customer's behaviour is chosen by the last two digits of the phone number:

    32 cancels (1032)           37 cannot be reached (1037)   01 enters a wrong PIN (2001)
    11 has too little money (1) 99 pays, callback lost        88 never answers (query: being processed)
    77 pays, callback reports a different amount              98 push refused: system busy (500.003.02)
    anything else pays (0)
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from flask import Flask, current_app, jsonify, request
from werkzeug.serving import make_server

EAT = ZoneInfo("Africa/Nairobi")
DEAD_BASE_URL = "http://127.0.0.1:9"  # callbacks sent there fail: tests deliver the simulator's payloads themselves
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"

OUTCOMES = {
    "32": (1032, "Request cancelled by user"),
    "37": (1037, "DS timeout user cannot be reached"),
    "01": (2001, "The initiator information is invalid."),
    "11": (1, "The balance is insufficient for the transaction."),
}
SUCCESS = (0, "The service request is processed successfully.")


@dataclass
class Push:
    checkout_request_id: str
    merchant_request_id: str
    phone: str
    amount: int
    callback_url: str
    account_reference: str
    answer_at: float  # monotonic time when the customer has answered
    result: tuple[int, str] | None  # None: never answers


@dataclass
class Delivery:
    kind: str  # "stk", "c2b_validation", "c2b_confirmation"
    url: str
    payload: dict[str, Any]
    status: int | None = None
    body: Any = None


@dataclass
class DarajaSimulator:
    consumer_key: str = "sim-consumer-key"
    consumer_secret: str = "sim-consumer-secret"
    shortcode: str = "174379"
    passkey: str = SANDBOX_PASSKEY
    callback_delay: float = 0.0
    token_lifetime: int = 3599
    callback_copies: int = 1  # >1 replays each STK callback
    slow_seconds: float = 0.0  # every API answer waits this long (client timeouts)
    empty_token_answer: bool = False  # the token endpoint answers 200 with an empty body
    pushes: dict[str, Push] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    token_requests: int = 0
    c2b_urls: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._tokens: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._server = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def __enter__(self) -> DarajaSimulator:
        self._server = make_server("127.0.0.1", 0, self._build_app(), threaded=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.wait_idle()
        self._server.shutdown()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def app_settings(self) -> dict[str, Any]:
        """The Bulkapp settings that point its Daraja client at this simulator."""
        return {
            "MPESA_ENV": "sandbox",
            "MPESA_BASE_URL": self.url,
            "MPESA_CONSUMER_KEY": self.consumer_key,
            "MPESA_CONSUMER_SECRET": self.consumer_secret,
            "MPESA_SHORTCODE": self.shortcode,
            "MPESA_PASSKEY": self.passkey,
        }

    # -- test controls -------------------------------------------------------------------------------

    def revoke_tokens(self) -> None:
        """Make every issued token invalid, as when Daraja expires one early."""
        with self._lock:
            self._tokens.clear()

    def wait_idle(self, timeout: float = 15.0) -> None:
        """Wait until every scheduled callback has been delivered (and answered)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def deliveries_of(self, kind: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.kind == kind]

    def pay_bill(self, account: str, amount: int, msisdn: str = "254708374149", confirmations: int = 1) -> str:
        """A customer pays the paybill (C2B simulate endpoint): validation, then ``confirmations`` copies
        of the confirmation. Returns the TransID."""
        token = self._issue_token()
        response = requests.post(
            f"{self.url}/mpesa/c2b/v1/simulate",
            json={
                "ShortCode": self.shortcode,
                "CommandID": "CustomerPayBillOnline",
                "Amount": amount,
                "Msisdn": msisdn,
                "BillRefNumber": account,
                "Confirmations": confirmations,
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["TransID"]

    # -- the HTTP API --------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("daraja-simulator")

        @app.before_request
        def slow_down():
            if self.slow_seconds:
                time.sleep(self.slow_seconds)

        @app.get("/oauth/v1/generate")
        def generate_token():
            auth = request.authorization
            if (
                request.args.get("grant_type") != "client_credentials"
                or auth is None
                or (auth.username, auth.password) != (self.consumer_key, self.consumer_secret)
            ):
                return _error(400, "400.008.01", "Invalid Authentication passed")
            if self.empty_token_answer:
                return ""
            return jsonify({"access_token": self._issue_token(), "expires_in": str(self.token_lifetime)})

        @app.post("/mpesa/stkpush/v1/processrequest")
        def stk_push():
            refused = self._check_bearer() or self._check_password()
            if refused:
                return refused
            body = request.get_json()
            phone = str(body.get("PhoneNumber", ""))
            problems = {
                "TransactionType": body.get("TransactionType")
                not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"),
                "Amount": not isinstance(body.get("Amount"), int) or body["Amount"] < 1,
                "PhoneNumber": len(phone) != 12 or not phone.startswith(("2547", "2541")) or not phone.isdigit(),
                "PartyA": str(body.get("PartyA")) != phone,
                "PartyB": str(body.get("PartyB")) != self.shortcode,
                "CallBackURL": not str(body.get("CallBackURL", "")).startswith(("http://", "https://")),
                "AccountReference": not 0 < len(str(body.get("AccountReference", ""))) <= 12,
                "TransactionDesc": not 0 < len(str(body.get("TransactionDesc", ""))) <= 13,
            }
            bad = [name for name, wrong in problems.items() if wrong]
            if bad:
                return _error(400, "400.002.02", f"Bad Request - Invalid {bad[0]}")
            if phone.endswith("98"):
                return _error(500, "500.003.02", "System is busy. Please try again in few minutes.")
            n = next(self._ids)
            push = Push(
                checkout_request_id=f"ws_CO_{datetime.now(EAT):%d%m%Y%H%M%S}{n:06d}",
                merchant_request_id=f"29115-3462056{n}-1",
                phone=phone,
                amount=body["Amount"],
                callback_url=body["CallBackURL"],
                account_reference=body["AccountReference"],
                answer_at=time.monotonic() + self.callback_delay,
                result=None if phone.endswith("88") else OUTCOMES.get(phone[-2:], SUCCESS),
            )
            with self._lock:
                self.pushes[push.checkout_request_id] = push
            if push.result is not None and not phone.endswith("99"):
                for _ in range(self.callback_copies):
                    self._later(self.callback_delay, "stk", push.callback_url, self._stk_callback(push))
            return jsonify(
                {
                    "MerchantRequestID": push.merchant_request_id,
                    "CheckoutRequestID": push.checkout_request_id,
                    "ResponseCode": "0",
                    "ResponseDescription": "Success. Request accepted for processing",
                    "CustomerMessage": "Success. Request accepted for processing",
                }
            )

        @app.post("/mpesa/stkpushquery/v1/query")
        def stk_query():
            refused = self._check_bearer() or self._check_password()
            if refused:
                return refused
            push = self.pushes.get(str(request.get_json().get("CheckoutRequestID")))
            if push is None:
                return _error(400, "400.002.02", "Bad Request - Invalid CheckoutRequestID")
            if push.result is None or time.monotonic() < push.answer_at:
                return _error(500, "500.001.1001", "The transaction is being processed")
            code, desc = push.result
            return jsonify(
                {
                    "ResponseCode": "0",
                    "ResponseDescription": "The service request has been accepted successsfully",
                    "MerchantRequestID": push.merchant_request_id,
                    "CheckoutRequestID": push.checkout_request_id,
                    "ResultCode": str(code),
                    "ResultDesc": desc,
                }
            )

        @app.post("/mpesa/c2b/v1/registerurl")
        def register_urls():
            refused = self._check_bearer()
            if refused:
                return refused
            body = request.get_json()
            if body.get("ResponseType") not in ("Completed", "Cancelled"):
                return _error(400, "400.002.02", "Bad Request - Invalid ResponseType")
            self.c2b_urls[str(body.get("ShortCode"))] = body
            return jsonify({"OriginatorCoversationID": "sim-1", "ResponseCode": "0", "ResponseDescription": "Success"})

        @app.post("/mpesa/c2b/v1/simulate")
        def simulate_c2b():
            refused = self._check_bearer()
            if refused:
                return refused
            body = request.get_json()
            urls = self.c2b_urls.get(str(body.get("ShortCode")))
            if urls is None:
                return _error(400, "400.002.02", "Bad Request - No URLs registered for ShortCode")
            trans_id = f"SIC{next(self._ids):07d}"
            payload = c2b_payload(
                body.get("BillRefNumber", ""),
                f"{int(body['Amount']):.2f}",
                trans_id,
                TransTime=f"{datetime.now(EAT):%Y%m%d%H%M%S}",
                BusinessShortCode=self.shortcode,
                MSISDN=f"{str(body.get('Msisdn'))[:4]} ***** {str(body.get('Msisdn'))[-3:]}",
                FirstName="John",
                LastName="",
            )
            copies = int(body.get("Confirmations", 1))
            thread = threading.Thread(target=self._run_c2b, args=(urls, payload, copies), daemon=True)
            self._threads.append(thread)
            thread.start()
            return jsonify(
                {
                    "ConversationID": f"AG_{trans_id}",
                    "OriginatorConversationID": f"sim-{trans_id}",
                    "ResponseDescription": "Accept the service request successfully.",
                    "TransID": trans_id,
                }
            )

        return app

    # -- internals -----------------------------------------------------------------------------------

    def _issue_token(self) -> str:
        with self._lock:
            self.token_requests += 1
            token = base64.b64encode(f"sim-token-{self.token_requests}".encode()).decode()
            self._tokens.add(token)
        return token

    def _check_bearer(self):
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header[7:] not in self._tokens:
            return _error(401, "404.001.03", "Invalid Access Token")
        return None

    def _check_password(self):
        body = request.get_json(silent=True) or {}
        timestamp = str(body.get("Timestamp", ""))
        try:
            sent_at = datetime.strptime(timestamp, "%Y%m%d%H%M%S").replace(tzinfo=EAT)
        except ValueError:
            return _error(400, "400.002.02", "Bad Request - Invalid Timestamp")
        if abs(datetime.now(UTC) - sent_at) > timedelta(minutes=5):  # not Kenyan time, or stale
            return _error(400, "400.002.02", "Bad Request - Invalid Timestamp")
        if str(body.get("BusinessShortCode")) != self.shortcode:
            return _error(500, "500.001.1001", "Merchant does not exist")
        expected = base64.b64encode(f"{self.shortcode}{self.passkey}{timestamp}".encode()).decode()
        if body.get("Password") != expected:
            return _error(500, "500.001.1001", "Wrong credentials")
        return None

    def _stk_callback(self, push: Push) -> dict[str, Any]:
        code, desc = push.result
        callback: dict[str, Any] = {
            "MerchantRequestID": push.merchant_request_id,
            "CheckoutRequestID": push.checkout_request_id,
            "ResultCode": code,
            "ResultDesc": desc,
        }
        if code == 0:
            amount = push.amount + 1 if push.phone.endswith("77") else push.amount
            receipt = f"SIM{push.checkout_request_id[-7:]}"
            callback["CallbackMetadata"] = {
                "Item": [
                    {"Name": "Amount", "Value": amount},
                    {"Name": "MpesaReceiptNumber", "Value": receipt},
                    {"Name": "Balance"},
                    {"Name": "TransactionDate", "Value": int(f"{datetime.now(EAT):%Y%m%d%H%M%S}")},
                    {"Name": "PhoneNumber", "Value": int(push.phone)},
                ]
            }
        return {"Body": {"stkCallback": callback}}

    def _later(self, delay: float, kind: str, url: str, payload: dict[str, Any]) -> None:
        def deliver():
            time.sleep(delay)
            self._post(kind, url, payload)

        thread = threading.Thread(target=deliver, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _post(self, kind: str, url: str, payload: dict[str, Any]) -> Delivery:
        delivery = Delivery(kind, url, payload)
        try:
            response = requests.post(url, json=payload, timeout=30)
            delivery.status = response.status_code
            delivery.body = response.json() if "json" in response.headers.get("Content-Type", "") else response.text
        except requests.RequestException as exc:
            delivery.body = repr(exc)
        with self._lock:
            self.deliveries.append(delivery)
        return delivery

    def _run_c2b(self, urls: dict[str, str], payload: dict[str, Any], copies: int) -> None:
        if urls.get("ValidationURL"):
            answer = self._post("c2b_validation", urls["ValidationURL"], payload)
            if answer.status is None:
                accepted = urls.get("ResponseType") == "Completed"
            else:
                body = answer.body if isinstance(answer.body, dict) else {}
                accepted = answer.status == 200 and str(body.get("ResultCode")) == "0"
            if not accepted:
                return
        confirmation = {**payload, "OrgAccountBalance": "49197.00"}
        for _ in range(copies):
            self._post("c2b_confirmation", urls["ConfirmationURL"], confirmation)


def _error(status: int, code: str, message: str):
    return jsonify({"requestId": f"sim-{time.monotonic_ns()}", "errorCode": code, "errorMessage": message}), status


def c2b_payload(account: str, amount: str = "250.00", trans_id: str = "RKT9XYZ123", **fields: Any) -> dict[str, Any]:
    """A paybill (C2B) validation or confirmation body as Daraja sends it (v2: masked MSISDN); ``fields``
    replace any of its keys."""
    return {
        "TransactionType": "Pay Bill",
        "TransID": trans_id,
        "TransTime": "20260408093000",
        "TransAmount": amount,
        "BusinessShortCode": "600134",
        "BillRefNumber": account,
        "InvoiceNumber": "",
        "OrgAccountBalance": "",
        "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 126",
        "FirstName": "Wanjiku",
        "MiddleName": "",
        "LastName": "Kamau",
        **fields,
    }


# -- fixtures: the app under test wired to M-Pesa (import them into the test module that uses them) --------


def configure(app, monkeypatch, **settings: Any) -> None:
    """Change settings for this test, in the app serving requests and in the one the test body runs in."""
    for config in (app.config, current_app.config):
        for key, value in settings.items():
            monkeypatch.setitem(config, key, value)


@pytest.fixture
def daraja(app, monkeypatch):
    """The app's Daraja client pointed at a local simulator whose callbacks go nowhere: a top-up stays
    pending until the test delivers the simulator's payload itself."""
    with DarajaSimulator() as sim:
        configure(app, monkeypatch, **sim.app_settings(), MPESA_CALLBACK_BASE_URL=DEAD_BASE_URL)
        yield sim


@pytest.fixture
def simulated_mpesa(app, monkeypatch):
    """MPESA_ENV=simulated: the embedded simulated M-Pesa, answering at once."""
    configure(
        app,
        monkeypatch,
        MPESA_ENV="simulated",
        MPESA_CONSUMER_KEY=None,
        MPESA_CONSUMER_SECRET=None,
        MPESA_SIMULATED_DELAY_SECONDS=0,
    )
