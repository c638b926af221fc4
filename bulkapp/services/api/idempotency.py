"""Idempotency keys for REST API POSTs: the first successful answer is stored per (tenant, key) and replayed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bulkapp.extensions import db
from bulkapp.models import ApiIdempotencyKey

MAX_KEY_LENGTH = 255


class IdempotencyConflict(Exception):
    """The key was already used for a different request (another body, method or path)."""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]
    replayed: bool = True  # False only for the answer just stored by this request


def request_hash(method: str, path: str, payload: Any) -> str:
    """SHA-256 of the method, path and the JSON body in canonical form (key order and spacing do not matter)."""
    canonical = json.dumps([method.upper(), path, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def valid_key(key: str | None) -> bool:
    return key is not None and 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()


def stored_response(client_id: int, key: str, fingerprint: str) -> StoredResponse | None:
    """The answer stored for ``key``, None when the key is new. Raises IdempotencyConflict when the key was used
    with another request."""
    row = db.session.scalar(
        sa.select(ApiIdempotencyKey).where(ApiIdempotencyKey.client_id == client_id, ApiIdempotencyKey.key == key)
    )
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyConflict(key)
    return StoredResponse(row.status_code, row.response_body)


def store_response(
    client_id: int, key: str, fingerprint: str, *, method: str, path: str, status: int, body: dict[str, Any]
) -> StoredResponse:
    """Record the answer in the caller's transaction, next to the effect it describes (committed together).

    When a concurrent request with the same key stored first, its answer is returned instead (``replayed``
    True) or IdempotencyConflict raised; the caller must then roll back its own effect.
    """
    row = ApiIdempotencyKey(
        client_id=client_id,
        key=key,
        method=method.upper(),
        path=path[:255],
        request_hash=fingerprint,
        status_code=status,
        response_body=body,
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        existing = stored_response(client_id, key, fingerprint)
        if existing is None:
            raise
        return existing
    return StoredResponse(status, body, replayed=False)
