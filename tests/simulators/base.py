"""Shared harness for the vendor simulators: a threaded HTTP server on loopback, magic numbers, a record of every
submission, callbacks (webhooks) with the vendor's retry rules, fault toggles and ``/_sim/...`` control routes.

A simulator is a context manager (``with OnfonSimulator() as sim: ...``) and each vendor module also exposes
a pytest fixture; ``python -m tests.simulators.onfon --port 9001`` serves one for the local dev loop.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import re
import sys
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

import requests

# Last two digits of the recipient -> outcome (providers.md, "What a local simulator must do").
MAGIC = {
    "00": "delivered",
    "01": "undelivered",  # accepted, then a failed delivery report
    "02": "no_report",  # accepted, no delivery report ever
    "55": "server_error",  # the whole request fails with a 5xx, ``transient_failures`` times, then works
    "66": "timeout",  # accepted, but the answer comes after ``timeout_delay`` seconds
    "77": "rate_limited",  # 429 with Retry-After, ``transient_failures`` times, then works
    "88": "opted_out",  # refused: the recipient opted out
    "99": "invalid",  # refused: invalid number
}
FAULTS = ("timeout", "5xx", "429", "malformed_json", "empty_body", "auth_fail")

# The GSM 03.38 basic set less ESC (0x1B), which only introduces an extension character: a literal ESC in a text
# makes it UCS-2, as the app prices it.
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("\f^{}\\[~]|€")


def magic(number: str) -> str:
    """The outcome a recipient's last two digits select (``delivered`` for any other ending)."""
    digits = re.sub(r"\D", "", number)
    return MAGIC.get(digits[-2:], "delivered")


def segments(text: str) -> int:
    """SMS parts for billing: GSM-7 160/153 septets (extension characters count 2), else UCS-2 70/67 units."""
    if all(ch in GSM7 or ch in GSM7_EXTENSION for ch in text):
        length, single, multi = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text), 160, 153
    else:
        length, single, multi = len(text.encode("utf-16-le")) // 2, 70, 67
    return 1 if length <= single else math.ceil(length / multi)


@dataclass
class SimRequest:
    """One request as the simulator sees it."""

    method: str
    target: str  # path and query exactly as sent
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @cached_property
    def path(self) -> str:
        return urlsplit(self.target).path

    @cached_property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    @cached_property
    def form(self) -> dict[str, str]:
        if "application/x-www-form-urlencoded" not in self.headers.get("content-type", ""):
            return {}
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def json(self) -> Any:
        """The JSON body, or None when there is none or it does not parse."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def fields(self) -> dict[str, Any]:
        """Query arguments overlaid with the form or JSON object body."""
        data = self.json()
        return {**self.query, **(data if isinstance(data, dict) else self.form)}


@dataclass
class SimResponse:
    status: int = 200
    body: Any = b""  # bytes/str as they are; anything else is sent as JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering, after the work is done (timeouts)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream" if self.body else "text/plain"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


@dataclass
class Submission:
    """One message the vendor received; ``outcome`` is ``accepted`` or why it was refused."""

    recipient: str
    text: str
    sender: str | None
    provider_message_id: str | None
    outcome: str
    at: float = field(default_factory=time.time)


@dataclass
class Callback:
    """An HTTP request a vendor makes to us (or that arrived at a :class:`CallbackReceiver`).

    ``url`` is absolute; ``path`` (path + query) suits Flask's test client:
    ``client.open(cb.path, method=cb.method, headers=cb.headers, data=cb.body)``.
    """

    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def send(self, timeout: float = 10.0) -> int:
        """Deliver it over HTTP; the status code, or 0 when the connection failed or timed out."""
        try:
            response = requests.request(self.method, self.url, headers=self.headers, data=self.body, timeout=timeout)
        except requests.RequestException:
            return 0
        return response.status_code


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client's connection pool is exercised
    timeout = 60  # idle keep-alive connections are closed after this
    server: _Server

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = SimRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        response = self.server.simulator.serve(request)
        if response.delay:
            time.sleep(response.delay)
        payload, content_type = response.encoded()
        try:
            self.send_response(response.status)
            headers = {"Content-Type": content_type, **response.headers, "Content-Length": str(len(payload))}
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch  # noqa: N815 - http.server's method names

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        pass


class Simulator(ABC):
    """Base of every vendor simulator.

    Settings tests may change at any time (also through ``POST /_sim/config``): ``fault`` (one of
    :data:`FAULTS`), ``latency`` (seconds added to every answer), ``timeout_delay`` (how late a ``66`` or
    ``timeout`` answer comes), ``transient_failures`` (how often ``55``/``77`` fail per recipient before
    working), ``retry_after`` (seconds, on 429s) and ``callback_delay`` (None: callbacks wait for
    :meth:`deliver_callbacks` / :meth:`take_callbacks`; a number: a background thread sends each one that
    many seconds after it was made, retrying ``callback_retries`` times like the vendor does).
    """

    vendor: ClassVar[str] = "vendor"
    callback_retries: ClassVar[int] = 0
    configurable: ClassVar[tuple[str, ...]] = (
        "fault",
        "latency",
        "timeout_delay",
        "transient_failures",
        "retry_after",
        "callback_delay",
    )

    def __init__(
        self,
        *,
        port: int = 0,
        callback_delay: float | None = None,
        timeout_delay: float = 2.0,
        transient_failures: int = 2,
        retry_after: int = 1,
    ) -> None:
        self.port = port
        self.callback_delay = callback_delay
        self.timeout_delay = timeout_delay
        self.transient_failures = transient_failures
        self.retry_after = retry_after
        self.fault: str | None = None
        self.latency = 0.0
        self.lock = threading.RLock()
        self.submissions: list[Submission] = []
        self.callbacks: list[Callback] = []  # every callback ever made
        self.delivered: list[tuple[Callback, int]] = []  # (callback, final HTTP status) once sent
        self.errors: list[str] = []  # simulator crashes, so tests can assert there were none
        self._pending: list[tuple[float, int, Callback]] = []  # (due, attempt, callback)
        self._failures: Counter[tuple[str, str]] = Counter()
        self._ids = itertools.count(1)
        self._stats = {"requests": 0, "messages": 0, "busy_seconds": 0.0}
        self._server: _Server | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifetime

    def start(self) -> Self:
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        self._stop.clear()
        server = self._server
        for target in (lambda: server.serve_forever(poll_interval=0.05), self._dispatch_loop):
            thread = threading.Thread(target=target, name=f"{self.vendor}-sim", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Forget submissions, callbacks, failure counters and faults (settings stay)."""
        with self.lock:
            self.submissions.clear()
            self.callbacks.clear()
            self.delivered.clear()
            self._pending.clear()
            self._failures.clear()
            self.fault = None
            self._stats.update(requests=0, messages=0, busy_seconds=0.0)

    # -- serving

    def serve(self, request: SimRequest) -> SimResponse:
        if request.path.startswith("/_sim/"):
            return self._control(request)
        started = time.perf_counter()
        try:
            if self.latency:
                time.sleep(self.latency)
            if self.fault == "auth_fail":
                return self.auth_failure()
            if self.fault in ("5xx", "429"):
                return self.busy(503 if self.fault == "5xx" else 429)
            response = self.handle(request)
        except Exception:  # a simulator bug must show up in the test, not as a hung client
            self.errors.append(traceback.format_exc())
            traceback.print_exc()
            return SimResponse(500, {"error": "simulator crashed"})
        finally:
            with self.lock:
                self._stats["requests"] += 1
                self._stats["busy_seconds"] += time.perf_counter() - started
        if self.fault == "timeout":
            response.delay = max(response.delay, self.timeout_delay)
        elif self.fault == "malformed_json":
            response.body = b'{"not": json'
        elif self.fault == "empty_body":
            response.body = b""
        return response

    @abstractmethod
    def handle(self, request: SimRequest) -> SimResponse:
        """The vendor API itself."""

    @abstractmethod
    def auth_failure(self) -> SimResponse:
        """The vendor's answer to wrong credentials."""

    @abstractmethod
    def busy(self, status: int) -> SimResponse:
        """The vendor's 5xx or 429 answer (nothing accepted)."""

    def inject_inbound(self, **kwargs: Any) -> list[Callback]:
        """Make the vendor send us an incoming message (vendor modules define the arguments)."""
        raise NotImplementedError(f"{self.vendor} has no inbound messages")

    def _control(self, request: SimRequest) -> SimResponse:
        route = (request.method, request.path)
        if route == ("GET", "/_sim/outbox"):
            return SimResponse(body={"submissions": [asdict(s) for s in self.submissions]})
        if route == ("GET", "/_sim/stats"):
            return SimResponse(body=self.stats())
        if route == ("POST", "/_sim/reset"):
            self.reset()
            return SimResponse(body={"ok": True})
        if route == ("POST", "/_sim/deliver"):
            return SimResponse(body={"delivered": self.deliver_callbacks()})
        if route == ("POST", "/_sim/inbound"):
            try:
                made = self.inject_inbound(**(request.json() or {}))
            except (NotImplementedError, TypeError) as exc:
                return SimResponse(400, {"error": str(exc)})
            return SimResponse(body={"callbacks": len(made)})
        if route == ("POST", "/_sim/config"):
            settings = request.json() or {}
            unknown = sorted(set(settings) - set(self.configurable))
            if unknown:
                return SimResponse(400, {"error": f"not configurable: {', '.join(unknown)}"})
            for name, value in settings.items():
                setattr(self, name, Decimal(str(value)) if isinstance(getattr(self, name, None), Decimal) else value)
            return SimResponse(body={"ok": True})
        return SimResponse(404, {"error": "unknown simulator control route"})

    # -- bookkeeping for vendor modules

    def next_id(self) -> int:
        return next(self._ids)

    def record(
        self, recipient: str, text: str, sender: str | None, provider_message_id: str | None, outcome: str
    ) -> None:
        with self.lock:
            self.submissions.append(Submission(recipient, text, sender, provider_message_id, outcome))
            if outcome == "accepted":
                self._stats["messages"] += 1

    def should_fail(self, recipient: str, outcome: str) -> bool:
        """True the first ``transient_failures`` times ``recipient`` asks for ``outcome`` (55 or 77)."""
        with self.lock:
            key = (re.sub(r"\D", "", recipient), outcome)
            if self._failures[key] >= self.transient_failures:
                return False
            self._failures[key] += 1
            return True

    def accepted(self) -> list[Submission]:
        return [s for s in self.submissions if s.outcome == "accepted"]

    def duplicate_recipients(self) -> dict[str, int]:
        """Recipients the vendor accepted more than one message for, with their counts (expected: none)."""
        counts = Counter(re.sub(r"\D", "", s.recipient) for s in self.accepted())
        return {number: n for number, n in counts.items() if n > 1}

    def stats(self) -> dict[str, Any]:
        """Requests served, messages accepted and the time spent handling them: ``capacity_per_second`` is
        accepted messages per second of handler time, the ceiling this simulator could serve."""
        with self.lock:
            stats = dict(self._stats)
        busy = stats["busy_seconds"]
        stats["capacity_per_second"] = round(stats["messages"] / busy, 1) if busy else None
        return stats

    # -- callbacks

    def queue_callback(self, callback: Callback, delay: float = 0.0) -> None:
        """Make ``callback`` (sent ``delay`` seconds after ``callback_delay`` when dispatching automatically)."""
        with self.lock:
            self.callbacks.append(callback)
            self._pending.append((time.monotonic() + delay, 0, callback))

    def take_callbacks(self) -> list[Callback]:
        """The callbacks not sent yet, removed from the queue (to replay through a Flask test client)."""
        with self.lock:
            taken = [callback for _, _, callback in self._pending]
            self._pending.clear()
        return taken

    def deliver_callbacks(self) -> list[int]:
        """Send every queued callback now, with the vendor's retries; the final status of each."""
        statuses = []
        for callback in self.take_callbacks():
            for _ in range(self.callback_retries + 1):
                status = callback.send()
                if 200 <= status < 300:
                    break
            with self.lock:
                self.delivered.append((callback, status))
            statuses.append(status)
        return statuses

    def _dispatch_loop(self) -> None:
        while not self._stop.wait(0.02):
            if self.callback_delay is None:
                continue
            now = time.monotonic()
            with self.lock:
                due = [item for item in self._pending if item[0] + self.callback_delay <= now]
                self._pending = [item for item in self._pending if item[0] + self.callback_delay > now]
            for _, attempt, callback in due:
                status = callback.send()
                if not 200 <= status < 300 and attempt < self.callback_retries:
                    with self.lock:  # back off like the vendor: 0.2 s, 0.4 s, 0.8 s ... in simulated time
                        self._pending.append((time.monotonic() + 0.2 * 2**attempt, attempt + 1, callback))
                    continue
                with self.lock:
                    self.delivered.append((callback, status))


class CallbackReceiver(Simulator):
    """A loopback endpoint that records every request it receives (``received``) and answers ``status``;
    point a simulator's callback URL at ``receiver.url + "/any/path?token=..."``."""

    vendor = "receiver"

    def __init__(self, status: int = 200, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.status = status
        self.received: list[Callback] = []

    def handle(self, request: SimRequest) -> SimResponse:
        with self.lock:
            self.received.append(Callback(request.method, self.url + request.target, request.headers, request.body))
        return SimResponse(self.status, b"")

    def auth_failure(self) -> SimResponse:
        return SimResponse(403, b"")

    def busy(self, status: int) -> SimResponse:
        return SimResponse(status, b"")

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Callback]:
        """Block until ``count`` requests arrived (AssertionError after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} callbacks, got {len(self.received)}")


def run_standalone(simulator_class: type[Simulator], **kwargs: Any) -> None:
    """Serve one simulator until interrupted: ``python -m tests.simulators.<vendor> --port N``."""
    parser = argparse.ArgumentParser(description=f"Run the {simulator_class.vendor} simulator on loopback.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--callback-delay", type=float, default=2.0, help="seconds before webhooks are sent")
    options = parser.parse_args()
    simulator = simulator_class(port=options.port, callback_delay=options.callback_delay, **kwargs)
    with simulator:
        print(f"{simulator.vendor} simulator on {simulator.url} (control routes under /_sim/)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
