"""A tenant's messages, newest first, one keyset page at a time; and which ones are still on their way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Message
from bulkapp.services.messaging import cursors

# The recent-messages list keeps refreshing a sent message this long while its delivery report is due.
AWAITING_REPORT = timedelta(minutes=10)


@dataclass(frozen=True)
class MessagePage:
    messages: list[Message]
    next_cursor: str | None


def list_messages(
    client_id: int,
    *,
    cursor: str | None = None,
    limit: int = 25,
    direction: str | None = None,
    status: str | None = None,
    campaign_id: int | None = None,
) -> MessagePage:
    """A tenant's messages, newest first, one page at a time (keyset on ``(created_at, id)``, the
    ``(client_id, created_at)`` index). Raises :class:`InvalidCursor` for a cursor it did not make."""
    limit = max(1, min(int(limit), 100))
    query = sa.select(Message).where(Message.client_id == client_id)
    if direction:
        query = query.where(Message.direction == direction)
    if status:
        query = query.where(Message.status == status)
    if campaign_id is not None:
        query = query.where(Message.campaign_id == campaign_id)
    if cursor:
        query = query.where(cursors.older_than(cursor, Message.created_at, Message.id))
    rows = db.session.scalars(query.order_by(Message.created_at.desc(), Message.id.desc()).limit(limit + 1)).all()
    return MessagePage(list(rows[:limit]), cursors.next_cursor(rows, limit, "created_at"))


def is_awaiting(message: Message, now: datetime | None = None) -> bool:
    """Still moving on its own: pending, sending, or sent recently enough that a delivery report is due."""
    if message.status in ("pending", "sending"):
        return True
    if message.status != "sent" or message.direction != "outbound":
        return False
    return (message.sent_at or message.created_at) > (now or utcnow()) - AWAITING_REPORT
