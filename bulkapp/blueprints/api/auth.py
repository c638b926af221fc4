"""API authentication (Bearer or X-API-Key), per-key rate limits, JSON bodies and Idempotency-Key handling."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, g, jsonify, request
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse

from bulkapp.blueprints.api.blueprint import bp
from bulkapp.blueprints.api.errors import ApiError, error_response
from bulkapp.extensions import db, limiter
from bulkapp.models import Client
from bulkapp.parsing import MalformedJson, has_unstorable_text, parse_json, storable_text
from bulkapp.services.accounts.api_key_settings import authenticate_api_key, presented_key
from bulkapp.services.accounts.api_keys import hash_api_key
from bulkapp.services.api import idempotency as api_idempotency

# Readable without a key: the API's own description.
PUBLIC_ENDPOINTS = frozenset({"api.openapi", "api.docs"})
FAILED_AUTH_SCOPE = "api-auth-failures"
MAX_JSON_BYTES = 1024 * 1024


def _presented() -> str | None:
    return presented_key(request.headers.get("Authorization"), request.headers.get("X-API-Key"))


def rate_limit_key() -> str:
    """Requests are counted per API key (its hash, never the key itself); per IP when no key is sent."""
    key = _presented()
    return f"api-key:{hash_api_key(key)}" if key else f"api-ip:{get_remote_address()}"


limiter.limit(lambda: current_app.config.get("API_RATE_LIMIT", "120 per minute"), key_func=rate_limit_key)(bp)


def current_api_client() -> Client:
    return g.api_client


def _suspended(key: str) -> bool:
    """A key that would work but for its tenant being suspended (so the answer can say so)."""
    if not key.startswith("bk_"):
        return False
    client = db.session.scalar(sa.select(Client).where(Client.api_key == hash_api_key(key)))
    return client is not None and client.api_key_revoked_at is None and not client.status


def _failed_auth_limit() -> RateLimitItem:
    return parse(current_app.config["API_AUTH_FAILURE_RATE_LIMIT"])


def _failed_auth_throttled() -> Response | None:
    """429 while this address is over its budget of missing or unknown keys: random keys are throttled too,
    not only each key on its own (a valid key from the same address waits as well, or guessing would pay)."""
    if not limiter.enabled:
        return None
    limit, address = _failed_auth_limit(), get_remote_address()
    if limiter.limiter.test(limit, FAILED_AUTH_SCOPE, address):
        return None
    reset_at = limiter.limiter.get_window_stats(limit, FAILED_AUTH_SCOPE, address).reset_time
    response = error_response(
        429, "rate_limited", "Too many requests with a missing or unknown API key from this address. "
        "Wait and retry after the Retry-After seconds."
    )  # fmt: skip
    response.headers["Retry-After"] = str(max(1, math.ceil(reset_at - time.time())))
    return response


@bp.before_request
def _authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if (throttled := _failed_auth_throttled()) is not None:
        return throttled
    key = _presented()
    client = authenticate_api_key(key)
    if client is None:
        if limiter.enabled:
            limiter.limiter.hit(_failed_auth_limit(), FAILED_AUTH_SCOPE, get_remote_address())
        if key and _suspended(key):
            return error_response(403, "account_suspended", "This account is suspended. Contact support.")
        if key:
            return error_response(401, "invalid_api_key", "This API key is unknown or was revoked.")
        return error_response(
            401, "missing_api_key", "Send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
        )
    db.session.commit()  # the last-used time, written at most once a minute
    g.api_client = client
    for name, value in request.args.items(multi=True):
        if not storable_text(value):  # no text column can hold a NUL character or a lone surrogate
            return error_response(422, "invalid_parameter", "A query parameter contains a NUL character.", name[:40])
    return None


def json_body() -> dict[str, Any]:
    """The request's JSON object; ApiError 400 when it is not one, 413 when it is too large."""
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise ApiError(413, "payload_too_large", f"The body can be at most {MAX_JSON_BYTES // 1024} KB.")
    data = request.get_data(cache=True)
    try:
        payload = parse_json(data) if data else None
    except MalformedJson:
        raise ApiError(400, "malformed_json", "The body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "malformed_json", "The body must be a JSON object.")
    if has_unstorable_text(payload):
        message = "Text in the body cannot contain NUL (\\u0000) characters or unpaired surrogates (\\ud800)."
        raise ApiError(422, "invalid_characters", message)
    return payload


def _nothing() -> None:
    return None


def _result(result: tuple) -> tuple[dict[str, Any], int, Callable[[], None]]:
    return result if len(result) == 3 else (*result, _nothing)


def idempotent(view):
    """For POST views that return ``(body, status)`` or ``(body, status, after_commit)`` without committing:
    commits their effect, then calls ``after_commit`` (e.g. to queue jobs).

    With an ``Idempotency-Key`` header the first successful answer is stored in the same transaction as the
    effect; the same key and body answer it again (``Idempotent-Replayed: true``), another body gets 409.
    Errors are not stored, so a request that failed (e.g. insufficient balance) can be retried with the key."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            body, status, after_commit = _result(view(*args, **kwargs))
            db.session.commit()
            after_commit()
            return jsonify(body), status
        key = key.strip()
        if not api_idempotency.valid_key(key):
            raise ApiError(422, "invalid_idempotency_key", "An Idempotency-Key is 1 to 255 printable characters.")
        client_id = current_api_client().id
        fingerprint = api_idempotency.request_hash(request.method, request.path, json_body())
        try:
            after_commit = _nothing
            stored = api_idempotency.stored_response(client_id, key, fingerprint)
            if stored is None:
                body, status, after_commit = _result(view(*args, **kwargs))
                stored = api_idempotency.store_response(
                    client_id, key, fingerprint, method=request.method, path=request.path, status=status, body=body
                )
        except api_idempotency.IdempotencyConflict:
            db.session.rollback()
            raise ApiError(
                409, "idempotency_conflict", "This Idempotency-Key was already used with a different request."
            ) from None
        if stored.replayed:
            db.session.rollback()  # a concurrent twin stored first: drop this request's effect
        else:
            db.session.commit()
            after_commit()
        response = jsonify(stored.body)
        response.status_code = stored.status
        if stored.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    return wrapper
