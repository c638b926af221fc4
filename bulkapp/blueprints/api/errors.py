"""API errors: always ``{"error": {"code", "message"}}`` JSON, never an HTML page."""

from __future__ import annotations

import time
from typing import Any

from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException

from bulkapp.blueprints.api.blueprint import bp
from bulkapp.extensions import limiter

API_PREFIX = "/api/"
# The code answered for an HTTP error raised by Flask itself (routing, size limit, rate limit...).
HTTP_CODES = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "Send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."),
    403: ("forbidden", "This key may not do that."),
    404: ("not_found", "There is nothing at this address, or it is not yours to see."),
    405: ("method_not_allowed", "This method is not allowed on this path."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."),
    429: ("rate_limited", "Too many requests for this API key. Wait and retry after the Retry-After seconds."),
    500: ("server_error", "Something went wrong on our side. Nothing was charged twice; retry later."),
}


class ApiError(Exception):
    """Raised by API views for an answer with an error code; ``status`` is the HTTP status."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    response = jsonify({"error": error})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def http_error_response(error: HTTPException) -> Response:
    """The JSON answer for a werkzeug HTTP error (used for API paths by the app-wide handlers too)."""
    status = error.code or 500
    code, message = HTTP_CODES.get(status, ("http_error", error.description or "The request failed."))
    response = error_response(status, code, message)
    if status == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return _with_retry_after(response)


@bp.errorhandler(ApiError)
def _api_error(error: ApiError):
    return error_response(error.status, error.code, error.message, error.field)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    return http_error_response(error)


def status_error_response(status: int) -> Response:
    """The JSON answer for an error status outside an API view (routing, rate limit, server error)."""
    code, message = HTTP_CODES.get(status, ("http_error", "The request failed."))
    return _with_retry_after(error_response(status, code, message))


def _with_retry_after(response: Response) -> Response:
    """A 429 says when to come back. Computed here rather than by Flask-Limiter's headers, which would cost
    every limited request a storage read."""
    if response.status_code == 429 and (limit := limiter.current_limit) is not None:
        response.headers["Retry-After"] = str(max(1, limit.reset_at - int(time.time())))
    return response
