"""A tenant's webhook endpoint on loopback: records every POST, verifies its Standard Webhooks signature with the
independent ``standardwebhooks`` package, and answers with scripted status codes (redirects, delays, 410...)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class WebhookReceiver:
    """``with WebhookReceiver() as hook:``; set ``hook.secret`` to verify, queue answers with ``hook.replies``."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.received: list[Received] = []
        self.replies: list[Reply] = []  # answered in order; afterwards ``default``
        self.default = Reply()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                reply = receiver._record(self.path, dict(self.headers.items()), body)
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/hooks"

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        verified, error = False, None
        if self.secret:
            try:
                Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError as exc:
                error = str(exc)
        with self._lock:
            self.received.append(Received(path, headers, body, verified, error))
            return self.replies.pop(0) if self.replies else self.default

    @property
    def count(self) -> int:
        return len(self.received)

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
