"""In-app notifications: tenant-wide (no user) or addressed to one user."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Notification

TYPES = ("low_balance", "message_failed", "campaign_completed", "topup_success", "inbound_message")
TYPE_LABELS = {
    "low_balance": _l("Low balance"),
    "message_failed": _l("A message failed"),
    "campaign_completed": _l("A campaign finished"),
    "topup_success": _l("A top-up arrived"),
    "inbound_message": _l("A new reply"),
}
# Where a notification leads: the first (data key, endpoint) whose key is in its data and whose endpoint
# exists; the endpoint takes that key as its URL argument unless it is listed without one.
LINKS = (
    ("conversation_id", "inbox.show"),
    ("campaign_id", "campaigns.show"),
    ("message_id", "messages.index"),
    ("transaction_id", "wallet.index"),
)
NO_ARGUMENT = {"messages.index", "wallet.index"}


def notify(
    client_id: int,
    type: str,
    title: str,
    message: str = "",
    data: dict[str, Any] | None = None,
    user_id: int | None = None,
) -> Notification:
    """Record a notification for a tenant (all its users) or one of its users."""
    note = Notification(client_id=client_id, user_id=user_id, type=type, title=title, message=message, data=data or {})
    db.session.add(note)
    db.session.flush()
    return note


def visible_to(client_id: int, user_id: int) -> sa.Select:
    return sa.select(Notification).where(
        Notification.client_id == client_id,
        sa.or_(Notification.user_id.is_(None), Notification.user_id == user_id),
    )


def unread_count(client_id: int, user_id: int) -> int:
    query = visible_to(client_id, user_id).where(Notification.is_read.is_(False))
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0


def mark_read(client_id: int, user_id: int, notification_id: int | None = None) -> int:
    """Mark one notification (or all) read; returns how many changed."""
    ids = visible_to(client_id, user_id).where(Notification.is_read.is_(False)).with_only_columns(Notification.id)
    if notification_id is not None:
        ids = ids.where(Notification.id == notification_id)
    result = db.session.execute(
        sa.update(Notification)
        .where(Notification.id.in_(ids.scalar_subquery()))
        .values(is_read=True, read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def link_for(note: Notification) -> str | None:
    """The page a notification is about, when that page exists."""
    from flask import current_app, url_for

    data = note.data or {}
    endpoints = current_app.view_functions
    for key, endpoint in LINKS:
        if key in data and endpoint in endpoints:
            return url_for(endpoint) if endpoint in NO_ARGUMENT else url_for(endpoint, **{key: data[key]})
    if note.type in ("low_balance", "topup_success") and "wallet.index" in endpoints:
        return url_for("wallet.index")
    return None
