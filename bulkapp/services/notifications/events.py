"""Tenant-facing events, recorded in the outbox in the caller's transaction."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from bulkapp.columns import utcnow
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
    event = Event(client_id=client_id, type=type, data=data, webhook_id=_webhook_id())
    db.session.add(event)
    db.session.flush()
    return event


def record_events(client_id: int, type: str, datas: Iterable[dict[str, Any]]) -> None:
    """Record many events of one type with one Core INSERT (a dispatch batch's ``message.sent``): an ORM
    object and a flush per event would cost more than sending the message."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    now = utcnow()
    rows = [
        {"client_id": client_id, "type": type, "data": data, "webhook_id": _webhook_id(), "created_at": now}
        for data in datas
    ]
    if rows:
        db.session.execute(sa.insert(Event.__table__), rows)


def _webhook_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)
