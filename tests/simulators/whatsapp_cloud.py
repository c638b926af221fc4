"""WhatsApp Cloud API simulator: Graph ``/{version}/{phone_number_id}/messages`` with Bearer auth, a template
registry, the 24-hour window, rate limits, and webhooks signed with ``X-Hub-Signature-256``.

Fixture: ``whatsapp_cloud_sim`` (add this module to ``pytest_plugins`` in tests/conftest.py).
Magic numbers: :data:`tests.simulators.base.MAGIC`
(``99`` and ``01`` -> a ``failed`` status 131026, ``55`` -> 503 code 2,
``77`` -> 429 code 130429). Free text outside the window answers 200, then a ``failed`` status 131047.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.simulators.base import Callback, SimRequest, SimResponse, Simulator, magic, run_standalone

WINDOW_SECONDS = 24 * 3600
ERROR_TITLES = {
    131026: "Message undeliverable",
    131047: "Re-engagement message",
}


def meta_signature(app_secret: str, raw_body: bytes) -> str:
    """``X-Hub-Signature-256`` for a raw body: ``sha256=`` + hex HMAC-SHA256 keyed by the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def signed_webhook(url: str, app_secret: str, payload: dict[str, Any]) -> Callback:
    """A webhook POST exactly as Meta sends it (for endpoint tests: ``POST /webhooks/whatsapp``)."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(app_secret, raw)}
    return Callback("POST", url, headers, raw)


def subscription_request(url: str, verify_token: str, challenge: str = "1158201444") -> Callback:
    """Meta's GET verification handshake against our endpoint."""
    query = urlencode({"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token})
    return Callback("GET", url + ("&" if "?" in url else "?") + query, {})


def webhook_payload(phone_number_id: str, display_number: str, **value: Any) -> dict[str, Any]:
    """The ``whatsapp_business_account`` envelope around one ``messages`` change (``statuses=[...]`` or
    ``messages=[...], contacts=[...]``)."""
    metadata = {"display_phone_number": display_number, "phone_number_id": phone_number_id}
    change = {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": metadata, **value}}
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [change]}]}


def status_item(
    wamid: str, status: str, recipient: str, reference: str | None = None, error: int | None = None
) -> dict:
    """One ``statuses[]`` item; ``error`` adds the ``errors[]`` of a failed status."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient,
    }
    if reference is not None:
        item["biz_opaque_callback_data"] = reference
    if status in ("sent", "delivered"):
        item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
    if error is not None:
        title = ERROR_TITLES.get(error, "Error")
        item["errors"] = [
            {
                "code": error,
                "title": title,
                "message": title,
                "error_data": {"details": f"{title} (simulated)"},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
        ]
    return item


def _template_label(body: dict[str, Any]) -> str:
    """How a template send is recorded: ``template:<name>@<language code>`` (Meta matches both exactly)."""
    template = body.get("template") or {}
    return f"template:{template.get('name')}@{(template.get('language') or {}).get('code')}"


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> SimResponse:
    body = {
        "error": {
            "message": f"(#{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "AbCdEfGhIjK",
        }
    }
    return SimResponse(status, body, headers or {})


class WhatsAppCloudSimulator(Simulator):
    """One business phone number. ``templates`` maps name -> language -> body parameter count;
    ``throughput`` (messages per second, None = unlimited) and ``pair_interval`` (seconds between messages
    to one recipient, None = unlimited) enable Meta's rate limits; status webhooks go to ``webhook_url``,
    signed, retried 3 times on non-2xx; ``duplicate_statuses`` / ``reverse_statuses`` reproduce Meta's
    at-least-once, out-of-order delivery."""

    vendor = "whatsapp_cloud"
    callback_retries = 3
    configurable = (
        *Simulator.configurable,
        "webhook_url",
        "throughput",
        "pair_interval",
        "duplicate_statuses",
        "reverse_statuses",
    )

    def __init__(
        self,
        *,
        access_token: str = "EAAG-simulated-token",
        app_secret: str = "meta-app-secret",
        phone_number_id: str = "114896151713920",
        display_number: str = "15550984277",
        templates: dict[str, dict[str, int]] | None = None,
        webhook_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.access_token, self.app_secret = access_token, app_secret
        self.phone_number_id, self.display_number = phone_number_id, display_number
        self.templates = templates or {"order_confirmation": {"en": 2}, "hello_world": {"en_US": 0}}
        self.webhook_url = webhook_url
        self.throughput: float | None = None
        self.pair_interval: float | None = None
        self.duplicate_statuses = False
        self.reverse_statuses = False
        self.last_inbound: dict[str, float] = {}  # wa_id -> unix time of the customer's last message
        self._sent_at: list[float] = []
        self._last_to: dict[str, float] = {}

    @property
    def credentials(self) -> dict[str, str]:
        return {
            "access_token": self.access_token,
            "app_secret": self.app_secret,
            "phone_number_id": self.phone_number_id,
        }

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"base_url": self.url, **extra}

    def open_window(self, number: str, at: float | None = None) -> None:
        """Pretend ``number`` wrote to us at ``at`` (default now), opening the 24-hour window."""
        self.last_inbound[number.lstrip("+")] = time.time() if at is None else at

    def auth_failure(self) -> SimResponse:
        return _error(401, 190, "Invalid OAuth access token - Cannot parse access token")

    def busy(self, status: int) -> SimResponse:
        if status == 429:
            return _error(429, 130429, "Rate limit hit", {"Retry-After": str(self.retry_after)})
        return _error(status, 2, "Service temporarily unavailable")

    def handle(self, request: SimRequest) -> SimResponse:
        match = re.fullmatch(r"/v\d+\.\d+/(\w+)(/messages)?", request.path)
        if not match or match.group(1) != self.phone_number_id:
            return _error(400, 100, "Unsupported request - object does not exist or lacks permissions")
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return self.auth_failure()
        if request.method == "GET" and not match.group(2):
            number = {"display_phone_number": "+1 555-098-4277", "verified_name": "Bulkapp Test"}
            return SimResponse(200, {**number, "quality_rating": "GREEN", "id": self.phone_number_id})
        if request.method == "POST" and match.group(2):
            return self._send(request.json())
        return _error(400, 100, "Unsupported request")

    def _send(self, body: Any) -> SimResponse:
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return _error(400, 100, "The parameter messaging_product is required.")
        to = str(body.get("to") or "")
        if not to:
            return _error(400, 100, "The parameter to is required.")
        outcome = magic(to)
        if outcome == "server_error" and self.should_fail(to, outcome):
            return self.busy(503)
        if outcome == "rate_limited" and self.should_fail(to, outcome):
            return self.busy(429)
        problem = self._validate(body) or self._rate_limit(to)
        if problem:
            return problem
        text = body["text"]["body"] if body.get("type") == "text" else _template_label(body)
        wamid = f"wamid.HBgM{to}{self.next_id():08d}"
        self.record(to, text, self.display_number, wamid, "accepted")
        self._statuses(wamid, to, body, outcome)
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid, "message_status": "accepted"}],
        }
        return SimResponse(200, answer, delay=self.timeout_delay if outcome == "timeout" else 0.0)

    def _validate(self, body: dict[str, Any]) -> SimResponse | None:
        kind = body.get("type")
        if kind == "text":
            text = (body.get("text") or {}).get("body")
            if not text:
                return _error(400, 100, "The parameter text['body'] is required.")
            if len(text) > 4096:
                return _error(400, 100, "Param text['body'] must be at most 4096 characters long.")
            return None
        if kind != "template":
            return _error(400, 131051, "Unsupported message type")
        template = body.get("template") or {}
        languages = self.templates.get(template.get("name"), {})
        expected = languages.get((template.get("language") or {}).get("code"))
        if expected is None:
            return _error(404, 132001, "Template name does not exist in the translation")
        given = sum(
            len(component.get("parameters") or [])
            for component in template.get("components") or []
            if component.get("type") == "body"
        )
        if given != expected:
            return _error(400, 132000, "Number of parameters does not match the expected number of params")
        return None

    def _rate_limit(self, to: str) -> SimResponse | None:
        now = time.monotonic()
        with self.lock:
            if self.throughput:
                self._sent_at = [t for t in self._sent_at if now - t < 1.0]
                if len(self._sent_at) >= self.throughput:
                    return _error(400, 130429, "Rate limit hit")
                self._sent_at.append(now)
            if self.pair_interval and now - self._last_to.get(to, -1e9) < self.pair_interval:
                return _error(400, 131056, "(Business Account, Consumer Account) pair rate limit hit")
            self._last_to[to] = now
        return None

    def _statuses(self, wamid: str, to: str, body: dict[str, Any], outcome: str) -> None:
        if not self.webhook_url:
            return
        reference = body.get("biz_opaque_callback_data")
        window_open = time.time() - self.last_inbound.get(to, -1e12) < WINDOW_SECONDS
        if body.get("type") == "text" and not window_open:
            steps = [("failed", 131047)]
        elif outcome == "invalid":
            steps = [("failed", 131026)]
        elif outcome == "undelivered":
            steps = [("sent", None), ("failed", 131026)]
        elif outcome == "no_report":
            steps = [("sent", None)]
        else:
            steps = [("sent", None), ("delivered", None), ("read", None)]
        if self.reverse_statuses:
            steps.reverse()
        for status, error in steps:
            payload = webhook_payload(
                self.phone_number_id, self.display_number, statuses=[status_item(wamid, status, to, reference, error)]
            )
            for _ in range(2 if self.duplicate_statuses else 1):
                self.queue_callback(signed_webhook(self.webhook_url, self.app_secret, payload))

    def inject_inbound(self, **kwargs: Any) -> list[Callback]:
        """``inject_inbound(sender="254712345678", text="Hi", name="Jane")`` -> a signed ``messages`` webhook;
        it opens the sender's 24-hour window."""
        if not self.webhook_url:
            raise NotImplementedError("set webhook_url first")
        sender = str(kwargs["sender"]).lstrip("+")
        self.open_window(sender)
        message = {
            "from": sender,
            "id": f"wamid.IN{self.next_id():010d}",
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": str(kwargs.get("text", ""))},
        }
        contacts = [{"profile": {"name": kwargs.get("name", "Customer")}, "wa_id": sender}]
        payload = webhook_payload(self.phone_number_id, self.display_number, contacts=contacts, messages=[message])
        callback = signed_webhook(self.webhook_url, self.app_secret, payload)
        self.queue_callback(callback)
        return [callback]


@pytest.fixture
def whatsapp_cloud_sim() -> Iterator[WhatsAppCloudSimulator]:
    """A fresh WhatsApp Cloud API simulator on loopback, stopped after the test."""
    with WhatsAppCloudSimulator() as simulator:
        yield simulator


if __name__ == "__main__":
    run_standalone(WhatsAppCloudSimulator)
