"""Safaricom M-Pesa Daraja: OAuth, STK push, STK query and C2B URL registration, plus a simulated stand-in."""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import requests
from requests.adapters import HTTPAdapter

EAT = ZoneInfo("Africa/Nairobi")
MSISDN = re.compile(r"254[17]\d{8}")
# Daraja answers "500.001.1001" for several things; on a query it means "the user has not answered yet".
BEING_PROCESSED = "500.001.1001"
INVALID_TOKEN_CODES = frozenset({"400.003.01", "404.001.03"})
RATE_LIMITED = "500.003.02"
ACCOUNT_REFERENCE_MAX = 12
DESCRIPTION_MAX = 13  # longer TransactionDesc values are a known cause of 1025/9999 failures

StkState = Literal["pending", "completed", "failed"]


class MpesaError(Exception):
    """A Daraja call failed. ``code`` is Daraja's ``errorCode`` when it sent one, ``status`` the HTTP status."""

    transient = False

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class MpesaTransientError(MpesaError):
    """M-Pesa is unreachable, slow, busy or rate-limiting: the same call may succeed later."""

    transient = True


class MpesaTimeout(MpesaTransientError):
    """No answer within the read timeout: the request may or may not have reached M-Pesa."""


class MpesaPermanentError(MpesaError):
    """Daraja refused the request itself; repeating it unchanged fails again."""


class MpesaAuthError(MpesaPermanentError):
    """The consumer key and secret were refused."""


@dataclass(frozen=True)
class StkPushResult:
    merchant_request_id: str
    checkout_request_id: str
    customer_message: str


@dataclass(frozen=True)
class StkQueryResult:
    """What M-Pesa knows about an STK push: still ``pending``, or final with its result code."""

    state: StkState
    result_code: int | None
    result_desc: str


def daraja_msisdn(phone: str) -> str:
    """``+254712345678`` or ``254712345678`` -> ``254712345678``; anything else is refused."""
    digits = (phone or "").strip().lstrip("+")
    if not MSISDN.fullmatch(digits):
        raise ValueError(f"not a Kenyan mobile number in 2547.../2541... form: {phone!r}")
    return digits


def whole_amount(amount: Any) -> int:
    """Daraja takes whole shillings only."""
    if isinstance(amount, bool) or int(amount) != amount or int(amount) < 1:
        raise ValueError(f"M-Pesa amounts are whole shillings of at least 1, not {amount!r}")
    return int(amount)


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """``base64(BusinessShortCode + Passkey + Timestamp)``, as Daraja checks it."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode()


def eat_timestamp(moment: datetime) -> str:
    """``YYYYMMDDHHmmss`` in Kenyan time (EAT), the form STK requests carry."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(EAT).strftime("%Y%m%d%H%M%S")


class DarajaClient:
    """One Daraja app (consumer key/secret) and one STK shortcode, over a pooled session.

    The OAuth token is cached until shortly before it expires and fetched again when Daraja calls it
    invalid. Thread-safe: one instance serves a whole process.
    """

    simulated = False

    def __init__(
        self,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        shortcode: str,
        passkey: str,
        *,
        timeout: tuple[float, float] = (5.0, 20.0),
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.shortcode = str(shortcode)
        self._key = consumer_key
        self._secret = consumer_secret
        self._passkey = passkey
        self.timeout = timeout
        self._clock = clock
        self._now = now
        self._session = session or _pooled_session()
        self._token: str | None = None
        self._token_valid_until = 0.0
        self._lock = threading.Lock()

    # -- OAuth ---------------------------------------------------------------------------------------

    def access_token(self, *, refresh: bool = False) -> str:
        """A bearer token, from the cache unless it is about to expire or ``refresh`` is asked."""
        with self._lock:
            if refresh or self._token is None or self._clock() >= self._token_valid_until:
                self._token, lifetime = self._fetch_token()
                # Renew a little early (Daraja tokens live ~1 h) so a call never carries a dying token.
                self._token_valid_until = self._clock() + lifetime - min(300, lifetime // 10)
            return self._token

    def _fetch_token(self) -> tuple[str, int]:
        response = self._send(
            "GET",
            "/oauth/v1/generate",
            params={"grant_type": "client_credentials"},
            auth=(self._key, self._secret),
        )
        if response.status_code in (400, 401, 403):
            raise MpesaAuthError("M-Pesa refused the consumer key and secret", status=response.status_code)
        body = self._json(response)
        if response.status_code >= 300:
            raise _error_from(response, body)
        if not body.get("access_token"):  # Daraja has answered bad credentials with an empty 200
            raise MpesaAuthError("M-Pesa issued no access token; check the consumer key and secret")
        try:
            lifetime = int(body.get("expires_in", 3599))
        except (TypeError, ValueError):
            lifetime = 3599
        return body["access_token"], max(lifetime, 1)

    # -- STK push (M-Pesa Express) -------------------------------------------------------------------

    def timestamp(self) -> str:
        return eat_timestamp(self._now())

    def password(self, timestamp: str) -> str:
        return stk_password(self.shortcode, self._passkey, timestamp)

    def stk_push(
        self, *, phone: str, amount: int, account_reference: str, description: str, callback_url: str
    ) -> StkPushResult:
        """Ask M-Pesa to prompt ``phone`` for ``amount`` KSH to this paybill; the result comes by callback."""
        msisdn = daraja_msisdn(phone)
        timestamp = self.timestamp()
        body = {
            "BusinessShortCode": self.shortcode,
            "Password": self.password(timestamp),
            "Timestamp": timestamp,
            "TransactionType": "CustomerPayBillOnline",
            "Amount": whole_amount(amount),
            "PartyA": msisdn,
            "PartyB": self.shortcode,
            "PhoneNumber": msisdn,
            "CallBackURL": callback_url,
            "AccountReference": account_reference[:ACCOUNT_REFERENCE_MAX],
            "TransactionDesc": description[:DESCRIPTION_MAX],
        }
        response, data = self._post("/mpesa/stkpush/v1/processrequest", body)
        if response.status_code >= 300 or "errorCode" in data:
            raise _error_from(response, data)
        if str(data.get("ResponseCode")) != "0" or not data.get("CheckoutRequestID"):
            raise MpesaPermanentError(data.get("ResponseDescription") or "M-Pesa did not accept the request")
        return StkPushResult(
            merchant_request_id=str(data.get("MerchantRequestID", "")),
            checkout_request_id=str(data["CheckoutRequestID"]),
            customer_message=str(data.get("CustomerMessage", "")),
        )

    def stk_query(self, checkout_request_id: str) -> StkQueryResult:
        """The state of an STK push; "the transaction is being processed" is reported as ``pending``."""
        timestamp = self.timestamp()
        body = {
            "BusinessShortCode": self.shortcode,
            "Password": self.password(timestamp),
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        }
        response, data = self._post("/mpesa/stkpushquery/v1/query", body)
        if data.get("errorCode") == BEING_PROCESSED and "processed" in str(data.get("errorMessage", "")).lower():
            return StkQueryResult("pending", None, str(data.get("errorMessage")))
        if response.status_code >= 300 or "errorCode" in data:
            raise _error_from(response, data)
        try:
            code = int(data["ResultCode"])
        except (KeyError, TypeError, ValueError):
            raise MpesaPermanentError("M-Pesa's status answer has no ResultCode", status=response.status_code) from None
        return StkQueryResult("completed" if code == 0 else "failed", code, str(data.get("ResultDesc", "")))

    # -- C2B (paybill) -------------------------------------------------------------------------------

    def register_c2b_urls(
        self, *, confirmation_url: str, validation_url: str, response_type: str = "Completed"
    ) -> dict[str, Any]:
        """Tell M-Pesa where to send paybill validation/confirmation requests (once per shortcode).

        ``response_type`` ("Completed" or "Cancelled") is what M-Pesa does when validation is unreachable.
        """
        body = {
            "ShortCode": self.shortcode,
            "ResponseType": response_type,
            "ConfirmationURL": confirmation_url,
            "ValidationURL": validation_url,
        }
        response, data = self._post("/mpesa/c2b/v1/registerurl", body)
        if response.status_code >= 300 or "errorCode" in data or str(data.get("ResponseCode", "0")) != "0":
            raise _error_from(response, data)
        return data

    # -- transport -----------------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> tuple[requests.Response, dict[str, Any]]:
        """POST with the bearer token; an "invalid access token" answer refreshes it and retries once."""
        for attempt in range(2):
            token = self.access_token(refresh=attempt > 0)
            response = self._send("POST", path, json=body, headers={"Authorization": f"Bearer {token}"})
            data = self._json(response)
            if response.status_code == 401 or data.get("errorCode") in INVALID_TOKEN_CODES:
                continue
            return response, data
        raise MpesaAuthError("M-Pesa refused a freshly issued access token", status=response.status_code)

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self._session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            raise MpesaTimeout(f"M-Pesa did not answer within {self.timeout[1]:g} s") from exc
        except requests.RequestException as exc:
            raise MpesaTransientError(f"M-Pesa could not be reached: {exc.__class__.__name__}") from exc

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


def _pooled_session() -> requests.Session:
    session = requests.Session()
    # No automatic retries: a retried POST could prompt a customer twice.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _error_from(response: requests.Response, data: dict[str, Any]) -> MpesaError:
    code = data.get("errorCode")
    message = str(data.get("errorMessage") or data.get("ResponseDescription") or f"HTTP {response.status_code}")
    status = response.status_code
    busy = code == RATE_LIMITED or status in (429, 502, 503, 504)
    locked = code == BEING_PROCESSED and "lock" in message.lower()  # another M-Pesa session on the phone
    if busy or locked or (status >= 500 and code is None):
        return MpesaTransientError(message, code=code, status=status)
    return MpesaPermanentError(message, code=code, status=status)


class SimulatedDaraja:
    """Stands in for Daraja when ``MPESA_ENV=simulated`` (development, demos; never in production).

    It accepts every push; the ``simulate_stk_callback`` job then delivers a successful callback, and a
    status query reports success, so the whole top-up flow runs on a newcomer's machine.
    """

    simulated = True

    def stk_push(
        self, *, phone: str, amount: int, account_reference: str, description: str, callback_url: str
    ) -> StkPushResult:
        daraja_msisdn(phone)
        whole_amount(amount)
        return StkPushResult(
            merchant_request_id=f"SIM-{secrets.token_hex(4)}",
            checkout_request_id=f"ws_CO_SIM_{secrets.token_hex(10)}",
            customer_message="Success. Request accepted for processing (simulated M-Pesa)",
        )

    def stk_query(self, checkout_request_id: str) -> StkQueryResult:
        return StkQueryResult("completed", 0, "The service request is processed successfully. (simulated)")


def simulated_stk_callback(
    *, checkout_request_id: str, merchant_request_id: str, amount: int, phone: str, paid_at: datetime
) -> dict[str, Any]:
    """A successful STK callback in Daraja's shape, for the simulated M-Pesa."""
    receipt = "SIM" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(7))
    items = [
        {"Name": "Amount", "Value": amount},
        {"Name": "MpesaReceiptNumber", "Value": receipt},
        {"Name": "Balance"},
        {"Name": "TransactionDate", "Value": int(eat_timestamp(paid_at))},
        {"Name": "PhoneNumber", "Value": int(daraja_msisdn(phone))},
    ]
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": merchant_request_id,
                "CheckoutRequestID": checkout_request_id,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {"Item": items},
            }
        }
    }


_cache_lock = threading.Lock()


def is_simulated(config) -> bool:
    """Top-ups run against the simulated M-Pesa: chosen explicitly, with ``MPESA_ENV=simulated``."""
    return config.get("MPESA_ENV") == "simulated"


def client_for(app) -> DarajaClient | SimulatedDaraja | None:
    """The app's M-Pesa client: the simulation when ``MPESA_ENV=simulated`` (never in production), Daraja
    when its credentials are set, ``None`` when top-ups are not configured. One instance per configuration."""
    config = app.config
    if is_simulated(config):
        return None if config.get("ENV_NAME") == "production" else SimulatedDaraja()
    key, secret = config.get("MPESA_CONSUMER_KEY"), config.get("MPESA_CONSUMER_SECRET")
    if not (key and secret):
        return None
    settings = (
        config["MPESA_BASE_URL"],
        key,
        secret,
        str(config["MPESA_SHORTCODE"]),
        config["MPESA_PASSKEY"],
        (float(config["MPESA_CONNECT_TIMEOUT"]), float(config["MPESA_READ_TIMEOUT"])),
    )
    with _cache_lock:
        cached = app.extensions.get("bulkapp_mpesa")
        if cached is None or cached[0] != settings:
            base_url, key, secret, shortcode, passkey, timeout = settings
            client = DarajaClient(base_url, key, secret, shortcode, passkey, timeout=timeout)
            cached = app.extensions["bulkapp_mpesa"] = (settings, client)
        return cached[1]
