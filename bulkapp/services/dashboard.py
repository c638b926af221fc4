"""The numbers on a tenant's dashboard."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Client, Contact, Conversation, Message


@dataclass
class DashboardStats:
    balance: Decimal
    units_available: int
    price_per_unit: Decimal
    contacts: int
    open_conversations: int
    unread_conversations: int
    today_by_status: dict[str, int] = field(default_factory=dict)

    @property
    def messages_today(self) -> int:
        return sum(self.today_by_status.values())


def start_of_today(tz_name: str) -> datetime:
    tz = ZoneInfo(tz_name)
    return datetime.combine(datetime.now(tz).date(), time.min, tzinfo=tz)


def dashboard_stats(client_id: int, tz_name: str = "Africa/Nairobi") -> DashboardStats:
    """Balance, contacts, open conversations and today's outbound messages by status (in the user's day)."""
    client = db.session.get(Client, client_id)
    contacts = db.session.scalar(sa.select(sa.func.count(Contact.id)).where(Contact.client_id == client_id))
    open_q = sa.select(
        sa.func.count(Conversation.id),
        sa.func.count(Conversation.id).filter(Conversation.unread_count > 0),
    ).where(Conversation.client_id == client_id, Conversation.status == "open")
    open_count, unread = db.session.execute(open_q).one()
    rows = db.session.execute(
        sa.select(Message.status, sa.func.count(Message.id))
        .where(
            Message.client_id == client_id,
            Message.direction == "outbound",
            Message.created_at >= start_of_today(tz_name),
        )
        .group_by(Message.status)
    ).all()
    return DashboardStats(
        balance=client.balance,
        units_available=client.ksh_to_units(client.balance),
        price_per_unit=client.price_per_unit,
        contacts=contacts or 0,
        open_conversations=open_count or 0,
        unread_conversations=unread or 0,
        today_by_status={status: count for status, count in rows},
    )
