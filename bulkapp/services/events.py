"""Tenant-facing events, recorded in the outbox in the caller's transaction."""

from __future__ import annotations

import secrets
from typing import Any

from bulkapp.extensions import db
from bulkapp.models import Event

EVENT_TYPES = (
    "message.sent",
    "message.delivered",
    "message.failed",
    "message.received",
    "campaign.completed",
    "wallet.topup",
    "wallet.low_balance",
)


def record_event(client_id: int, type: str, data: dict[str, Any]) -> Event:
    """Record ``type`` for a tenant; its ``webhook_id`` stays the same across delivery attempts."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    event = Event(client_id=client_id, type=type, data=data, webhook_id="msg_" + secrets.token_urlsafe(18))
    db.session.add(event)
    db.session.flush()
    return event
