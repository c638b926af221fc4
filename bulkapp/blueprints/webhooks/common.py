"""Shared pieces of the webhook endpoints: secret-token checks, JSON bodies and JSON errors."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException

from bulkapp.extensions import db
from bulkapp.providers.onfon import JASMIN_FIELDS


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


# Callers that read a plain-text answer: Twilio (TwiML or text, never JSON) and Jasmin, Onfon's gateway, whose
# pushes carry these fields and which takes any body but ``ACK/Jasmin`` as "retry later".
PLAIN_TEXT_PATHS = ("/webhooks/twilio/",)
# Words for the HTTP errors a vendor can meet on /webhooks/* (routing, size, method, rate limit, our failure).
HTTP_ERRORS = {
    400: ("malformed", "The request could not be read."),
    403: ("forbidden", "Missing or wrong token."),
    404: ("not_found", "No webhook endpoint at this address."),
    405: ("method_not_allowed", "This webhook endpoint does not take that HTTP method."),
    413: ("too_large", "The request body is too large."),
    415: ("unsupported_media_type", "The request body has an unsupported content type."),
    429: ("rate_limited", "Too many requests; retry later."),
    500: ("server_error", "The webhook could not be processed; retry later."),
}


def is_jasmin_call() -> bool:
    """True when the call carries the fields of a Jasmin push (DLR or incoming SMS), in the query or the form."""
    keys = set(request.args)
    try:
        if request.mimetype == "application/x-www-form-urlencoded":
            keys |= set(request.form)
    except HTTPException:  # a body too large to read: the query string alone decides
        pass
    return not keys.isdisjoint(JASMIN_FIELDS)


def wants_plain_text() -> bool:
    """Whether this caller expects a plain-text answer rather than JSON."""
    if request.path.startswith(PLAIN_TEXT_PATHS):
        return True
    return request.path.startswith("/webhooks/onfon/") and is_jasmin_call()


def error_response(status: int, code: str, message: str) -> Response:
    """A webhook error in the caller's format: JSON ``{"error": {"code", "message"}}``, or plain text for the
    vendors that expect it; never an HTML page."""
    if wants_plain_text():
        response = Response(f"{code}: {message}\n", status=status, mimetype="text/plain")
    else:
        response = jsonify({"error": {"code": code, "message": message}})
        response.status_code = status
    return response


def status_response(status: int) -> Response:
    """The answer for an HTTP error status on a /webhooks/* path outside a view (routing, size, rate limit)."""
    code, message = HTTP_ERRORS.get(status, ("http_error", "The request failed."))
    return error_response(status, code, message)


def rejection(error: WebhookRejected):
    return error_response(error.status, error.code, error.message)


def http_error(error: HTTPException):
    """Any HTTP error raised inside a webhook view (a body over the size limit, an unexpected failure)."""
    status = error.code or 500
    if status >= 500:
        db.session.rollback()
    response = status_response(status)
    if status == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response
