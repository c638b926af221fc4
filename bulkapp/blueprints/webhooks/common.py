"""Shared pieces of the webhook endpoints: secret-token checks, JSON bodies and JSON errors."""

from __future__ import annotations

import hmac
from typing import Any

from flask import jsonify, request


class WebhookRejected(Exception):
    """Answer the caller with ``status`` and a JSON error; nothing is stored."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def require_token(expected: str | None) -> None:
    """``?token=`` must equal ``expected`` (constant-time); no expected token means none is required."""
    if expected is None:
        return
    given = request.args.get("token", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookRejected(403, "forbidden", "Missing or wrong token.")


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, whatever Content-Type the sender used."""
    payload = request.get_json(force=True, silent=True)
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "malformed", "The body must be a JSON object.")
    return payload


def rejection(error: WebhookRejected):
    return jsonify({"error": {"code": error.code, "message": error.message}}), error.status
