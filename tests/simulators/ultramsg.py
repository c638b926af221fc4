"""UltraMsg simulator: ``messages/chat``, message list and statistics, instance status, and JSON webhooks
(``message_create``, ``message_ack`` server -> device -> read, ``message_received``) to ``webhook_url``.

Fixture: ``ultramsg_sim`` (add this module to ``pytest_plugins`` in tests/conftest.py).
Magic numbers: :data:`tests.simulators.base.MAGIC`
(``99`` -> ``{"error": [{"to": ...}]}``, ``88`` -> ``{"sent": "false"}``,
``01`` -> acks stop at ``server``). ``connected = False`` queues sends until :meth:`reconnect`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.simulators.base import Callback, SimRequest, SimResponse, Simulator, magic, run_standalone

WRONG_TOKEN = "Wrong token. Please provide token as a GET parameter."


def event_callback(url: str, event_type: str, data: dict[str, Any], **envelope: Any) -> Callback:
    """An UltraMsg webhook POST (for endpoint tests: ``/webhooks/ultramsg?token=...``)."""
    body = {"event_type": event_type, "instanceId": "1150", "id": "", "referenceId": "", **envelope, "data": data}
    return Callback("POST", url, {"Content-Type": "application/json"}, json.dumps(body).encode())


class UltraMsgSimulator(Simulator):
    """One UltraMsg instance; ``webhook_url`` receives its events."""

    vendor = "ultramsg"
    configurable = (*Simulator.configurable, "connected", "webhook_url")

    def __init__(
        self,
        *,
        instance_id: str = "instance1150",
        token: str = "ultramsg-token",
        phone: str = "254700000100",
        connected: bool = True,
        webhook_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.instance_id, self.token, self.phone = instance_id, token, phone
        self.connected = connected
        self.webhook_url = webhook_url
        self.messages: list[dict[str, Any]] = []
        self._queued: list[tuple[dict[str, Any], str]] = []  # sent while disconnected

    @property
    def credentials(self) -> dict[str, str]:
        return {"instance_id": self.instance_id, "token": self.token}

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"base_url": self.url, **extra}

    def auth_failure(self) -> SimResponse:
        return SimResponse(200, {"error": WRONG_TOKEN})

    def busy(self, status: int) -> SimResponse:
        headers = {"Retry-After": str(self.retry_after)} if status == 429 else {}
        return SimResponse(status, {"error": "Service temporarily unavailable"}, headers)

    def handle(self, request: SimRequest) -> SimResponse:
        prefix = f"/{self.instance_id}/"
        if not request.path.startswith(prefix):
            return SimResponse(404, {"error": "instance not found"})
        fields = request.fields()
        if fields.get("token") != self.token:
            return self.auth_failure()
        route = (request.method, request.path.removeprefix(prefix))
        if route == ("POST", "messages/chat"):
            return self._send(fields)
        if route == ("GET", "messages"):
            status = fields.get("status", "all")
            rows = [m for m in self.messages if status == "all" or m["status"] == status]
            return SimResponse(200, {"total": len(rows), "pages": 1, "limit": 100, "page": 1, "messages": rows})
        if route == ("GET", "messages/statistics"):
            counts = {key: sum(m["status"] == key for m in self.messages) for key in ("sent", "queue", "unsent")}
            return SimResponse(200, {**counts, "invalid": 0, "expired": 0})
        if route == ("GET", "instance/status"):
            state = ("authenticated", "connected") if self.connected else ("disconnected", "qr")
            return SimResponse(200, {"status": {"accountStatus": {"status": state[0], "substatus": state[1]}}})
        return SimResponse(404, {"error": "method not found"})

    def _send(self, fields: dict[str, Any]) -> SimResponse:
        to, body = str(fields.get("to") or ""), str(fields.get("body") or "")
        outcome = magic(to)
        if outcome == "server_error" and self.should_fail(to, outcome):
            return self.busy(503)
        if outcome == "rate_limited" and self.should_fail(to, outcome):
            return self.busy(429)
        if not body:
            return SimResponse(200, {"error": [{"body": "is required"}]})
        if len(body) > 4096:
            return SimResponse(200, {"error": [{"body": "max length is 4096 characters"}]})
        if not re.fullmatch(r"\+?\d{8,15}(@c\.us)?", to) or outcome == "invalid":
            self.record(to, body, None, None, "invalid number")
            return SimResponse(200, {"error": [{"to": "Invalid phone number"}]})
        if outcome == "opted_out":
            self.record(to, body, None, None, "blocked")
            return SimResponse(200, {"sent": "false", "message": "The recipient has blocked this number"})
        message_id = self.next_id()
        chat = to.lstrip("+").split("@")[0] + "@c.us"
        message = {
            "id": message_id,
            "referenceId": str(fields.get("referenceId") or ""),
            "from": f"{self.phone}@c.us",
            "to": chat,
            "body": body,
            "priority": int(fields.get("priority") or 10),
            "status": "sent" if self.connected else "queue",
            "ack": "pending",
            "type": "chat",
            "created_at": int(time.time()),
            "sent_at": int(time.time()) if self.connected else None,
        }
        with self.lock:
            self.messages.append(message)
            if self.connected:
                self._events(message, outcome)
            else:
                self._queued.append((message, outcome))
        self.record(to, body, None, str(message_id), "accepted")
        delay = self.timeout_delay if outcome == "timeout" else 0.0
        return SimResponse(200, {"sent": "true", "message": "ok", "id": message_id}, delay=delay)

    def _events(self, message: dict[str, Any], outcome: str) -> None:
        if not self.webhook_url or outcome == "no_report":
            return
        wa_id = f"true_{message['to']}_3EB0{message['id']:016X}"
        data = {**{k: message[k] for k in ("from", "to", "body", "type")}, "id": wa_id, "fromMe": True}
        envelope = {"id": str(message["id"]), "referenceId": message["referenceId"]}
        self.queue_callback(event_callback(self.webhook_url, "message_create", {**data, "ack": "pending"}, **envelope))
        acks = ["server"] if outcome == "undelivered" else ["server", "device", "read"]
        for ack in acks:
            stamped = {**data, "ack": ack, "time": int(time.time())}
            self.queue_callback(event_callback(self.webhook_url, "message_ack", stamped, **envelope))

    def reconnect(self) -> None:
        """Link WhatsApp again: everything sent while disconnected goes out now, in a burst."""
        with self.lock:
            self.connected = True
            queued, self._queued = self._queued, []
            for message, outcome in queued:
                message.update(status="sent", sent_at=int(time.time()))
                self._events(message, outcome)

    def inject_inbound(self, **kwargs: Any) -> list[Callback]:
        """``inject_inbound(sender="254712345678", text="Hi", from_me=False, name="Jane")`` -> a
        ``message_received`` webhook (``from_me=True`` makes an echo of our own message)."""
        if not self.webhook_url:
            raise NotImplementedError("set webhook_url first")
        sender = str(kwargs["sender"]).lstrip("+")
        from_me = bool(kwargs.get("from_me", False))
        ours, theirs = f"{self.phone}@c.us", f"{sender}@c.us"
        data = {
            "id": f"{str(from_me).lower()}_{theirs}_3EB0{self.next_id():016X}",
            "from": ours if from_me else theirs,
            "to": theirs if from_me else ours,
            "author": "",
            "pushname": kwargs.get("name", ""),
            "ack": "",
            "type": "chat",
            "body": str(kwargs.get("text", "")),
            "media": "",
            "fromMe": from_me,
            "isForwarded": False,
            "isMentioned": False,
            "quotedMsg": {},
            "mentionedIds": [],
            "time": int(time.time()),
        }
        callback = event_callback(self.webhook_url, "message_received", data)
        self.queue_callback(callback)
        return [callback]


@pytest.fixture
def ultramsg_sim() -> Iterator[UltraMsgSimulator]:
    """A fresh UltraMsg simulator on loopback, stopped after the test."""
    with UltraMsgSimulator() as simulator:
        yield simulator


if __name__ == "__main__":
    run_standalone(UltraMsgSimulator)
