"""A tenant's REST API key: create, rotate and revoke it (the key is shown once, only its SHA-256 is stored),
and authenticate a presented key."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm.attributes import set_committed_value

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Client
from bulkapp.services.accounts.api_keys import generate_api_key, hash_api_key

LAST_USED_RESOLUTION = timedelta(minutes=1)  # last-used time is written at most once a minute
MAX_KEY_LENGTH = 200


class ApiKeyError(ValueError):
    """The change cannot be made; ``message`` says why, in words for the tenant (lazy: in their language)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ApiKeyStatus:
    """What the settings page shows about the key: never the key itself."""

    prefix: str | None
    created_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.prefix is not None and self.revoked_at is None


def api_key_status(client_id: int) -> ApiKeyStatus:
    client = db.session.get(Client, client_id)
    has_key = client.api_key is not None
    return ApiKeyStatus(
        prefix=client.api_key_prefix if has_key else None,
        created_at=client.api_key_created_at if has_key else None,
        last_used_at=client.api_key_last_used_at if has_key else None,
        revoked_at=client.api_key_revoked_at if has_key else None,
    )


def _replace_key(client_id: int, condition, now: datetime | None) -> str | None:
    client = db.session.get(Client, client_id)
    key, key_hash, prefix = generate_api_key(client.is_test_mode)
    changed = db.session.execute(
        sa.update(Client)
        .where(Client.id == client_id, condition)
        .values(
            api_key=key_hash,
            api_key_prefix=prefix,
            api_key_created_at=now or utcnow(),
            api_key_last_used_at=None,
            api_key_revoked_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        return None
    db.session.refresh(client)
    return key


def create_api_key(client_id: int, now: datetime | None = None) -> str:
    """A key for a tenant that has none (or only a revoked one); returns it, to be shown once.
    Raises ApiKeyError when an active key exists (e.g. a double submit): rotate it instead."""
    no_active_key = sa.or_(Client.api_key.is_(None), Client.api_key_revoked_at.is_not(None))
    key = _replace_key(client_id, no_active_key, now)
    if key is None:
        raise ApiKeyError(_l("You already have an active key. Rotate it to get a new one."))
    return key


def rotate_api_key(client_id: int, expected_prefix: str | None, now: datetime | None = None) -> str:
    """Replace the active key whose prefix is ``expected_prefix``; the old key stops working at once.
    Returns the new key, to be shown once. Raises ApiKeyError when the key changed meanwhile (another tab,
    a double submit) or there is no active key."""
    same_key = sa.and_(
        Client.api_key.is_not(None), Client.api_key_revoked_at.is_(None), Client.api_key_prefix == expected_prefix
    )
    key = _replace_key(client_id, same_key, now)
    if key is None:
        raise ApiKeyError(
            _l("The key changed since this page was loaded, so nothing was rotated. Reload and try again.")
        )
    return key


def revoke_api_key(client_id: int, expected_prefix: str | None, now: datetime | None = None) -> None:
    """Revoke the active key (it fails at once); its prefix stays on record. Raises ApiKeyError when there is
    no active key with that prefix."""
    changed = db.session.execute(
        sa.update(Client)
        .where(
            Client.id == client_id,
            Client.api_key.is_not(None),
            Client.api_key_revoked_at.is_(None),
            Client.api_key_prefix == expected_prefix,
        )
        .values(api_key_revoked_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        raise ApiKeyError(_l("That key is already revoked or was replaced. Reload the page to see the current key."))
    db.session.refresh(db.session.get(Client, client_id))


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` header values, if any."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return (x_api_key or "").strip() or None


def authenticate_api_key(key: str | None, now: datetime | None = None) -> Client | None:
    """The active tenant owning ``key``, or None (unknown, revoked, malformed, or a suspended tenant).

    The lookup is by the key's SHA-256, so timing says nothing about the key; ``api_key_last_used_at`` is
    updated at most once a minute (the caller commits).
    """
    if not key or len(key) > MAX_KEY_LENGTH or not key.startswith("bk_"):
        return None
    digest = hash_api_key(key)
    client = db.session.scalar(sa.select(Client).where(Client.api_key == digest))
    if client is None or not hmac.compare_digest(client.api_key, digest):
        return None
    if client.api_key_revoked_at is not None or not client.status:
        return None
    now = now or utcnow()
    touched = db.session.execute(
        sa.update(Client)
        .where(
            Client.id == client.id,
            sa.or_(Client.api_key_last_used_at.is_(None), Client.api_key_last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(api_key_last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    if touched.rowcount == 1:
        set_committed_value(client, "api_key_last_used_at", now)
    return client
