"""A tenant's webhook endpoint: URL, subscribed events, on/off, and its signing secret (encrypted at rest)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l

from bulkapp.columns import utcnow
from bulkapp.crypto import decrypt, encrypt
from bulkapp.extensions import db
from bulkapp.i18n import lazy_stored
from bulkapp.models import Client
from bulkapp.services.notifications.events import EVENT_TYPES
from bulkapp.services.tenant_webhooks.targets import TargetRefused, TargetUnreachable, resolve_target

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks: 24 to 64 bytes
# After a rotation the old secret keeps signing next to the new one, so receivers can switch without downtime.
PREVIOUS_SECRET_GRACE = timedelta(hours=24)


class WebhookSettingsError(ValueError):
    """Settings that cannot be saved; ``message`` is a sentence for the tenant, ``field`` the input at fault.
    The message is lazy: the settings page shows it in the user's language, the API (always English) in English."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def current_secret(client: Client) -> str | None:
    """The tenant's signing secret in clear (it is theirs to see), or None before the first save."""
    return decrypt(client.webhook_secret) if client.webhook_secret else None


def signing_secrets(client: Client, now: datetime | None = None) -> list[str]:
    """Secrets to sign with: the current one, plus the previous one for a day after a rotation."""
    now = now or utcnow()
    found = [current_secret(client)] if client.webhook_secret else []
    rotated = client.webhook_secret_rotated_at
    if client.webhook_secret_previous and rotated and now - rotated < PREVIOUS_SECRET_GRACE:
        found.append(decrypt(client.webhook_secret_previous))
    return found


def clean_events(events: Iterable[str] | None) -> list[str]:
    """The chosen event types in the documented order; an unknown type is an error."""
    chosen = set(events or ())
    unknown = sorted(chosen - set(EVENT_TYPES))
    if unknown:
        raise WebhookSettingsError(_l("Unknown event type: %(types)s.", types=", ".join(unknown)), "events")
    return [name for name in EVENT_TYPES if name in chosen]


def validate_url(url: str | None, *, allow_private: bool) -> str | None:
    """The URL to store (None when empty), after the same checks a delivery makes: https, and a host that
    resolves only to public addresses unless ``allow_private``. Raises WebhookSettingsError."""
    if not (url or "").strip():
        return None
    try:
        return resolve_target(url, allow_private=allow_private).url
    except (TargetRefused, TargetUnreachable) as exc:
        raise WebhookSettingsError(lazy_stored(str(exc)), "url") from None


def configure_webhook(
    client_id: int, *, url: str | None, events: Iterable[str] | None, active: bool, allow_private: bool
) -> Client:
    """Save the endpoint. A signing secret is created with the first URL. Turning webhooks on needs a URL and
    at least one event. Raises WebhookSettingsError with the field at fault."""
    clean_url = validate_url(url, allow_private=allow_private)
    chosen = clean_events(events)
    if active and not clean_url:
        raise WebhookSettingsError(_l("Add a URL before turning webhooks on."), "url")
    if active and not chosen:
        raise WebhookSettingsError(_l("Choose at least one event to receive."), "events")
    client = db.session.get(Client, client_id)
    client.webhook_url = clean_url
    client.webhook_events = chosen
    client.webhook_active = bool(active)
    if clean_url and not client.webhook_secret:
        client.webhook_secret = encrypt(new_secret())
    db.session.flush()
    return client


def rotate_secret(client_id: int, now: datetime | None = None) -> str:
    """Replace the signing secret and return the new one; the old one also signs for ``PREVIOUS_SECRET_GRACE``."""
    client = db.session.get(Client, client_id)
    client.webhook_secret_previous = client.webhook_secret
    client.webhook_secret_rotated_at = (now or utcnow()) if client.webhook_secret else None
    secret = new_secret()
    client.webhook_secret = encrypt(secret)
    db.session.flush()
    return secret


def webhook_settings(client_id: int) -> dict[str, Any]:
    """The endpoint as the REST API shows it: ``{"url", "events", "active", "secret"}``."""
    client = db.session.get(Client, client_id)
    return {
        "url": client.webhook_url,
        "events": list(client.webhook_events or []),
        "active": bool(client.webhook_active),
        "secret": current_secret(client),
    }
