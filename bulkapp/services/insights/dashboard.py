"""The numbers and series on a tenant's dashboard, counted in the user's timezone from the hourly roll-ups."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from bulkapp.extensions import db
from bulkapp.models import Campaign, Client, Contact, Conversation
from bulkapp.services.insights import hourly_stats as message_stats

RANGES = (7, 30, 90)


@dataclass
class DashboardStats:
    balance: Decimal
    units_available: int
    price_per_unit: Decimal
    contacts: int
    open_conversations: int
    unread_conversations: int
    today_by_status: dict[str, int] = field(default_factory=dict)
    month_by_status: dict[str, int] = field(default_factory=dict)
    spend_today: Decimal = Decimal(0)
    spend_month: Decimal = Decimal(0)

    @property
    def messages_today(self) -> int:
        return sum(self.today_by_status.values())

    @property
    def messages_month(self) -> int:
        return sum(self.month_by_status.values())

    @property
    def delivery_rate_month(self) -> float | None:
        return delivery_rate(self.month_by_status.get("delivered", 0), self.month_by_status.get("failed", 0))


@dataclass
class DayPoint:
    day: date
    by_status: dict[str, int]
    spend: Decimal

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass
class ChannelRate:
    channel: str
    delivered: int
    failed: int

    @property
    def rate(self) -> float | None:
        return delivery_rate(self.delivered, self.failed)


def delivery_rate(delivered: int, failed: int) -> float | None:
    """Delivered share of the messages whose fate is known; None when there are none yet."""
    settled = delivered + failed
    return delivered / settled if settled else None


def start_of_today(tz_name: str) -> datetime:
    tz = ZoneInfo(tz_name)
    return datetime.combine(datetime.now(tz).date(), time.min, tzinfo=tz)


def _start_of_month(tz_name: str) -> datetime:
    return start_of_today(tz_name).replace(day=1)


def by_status(counts: dict[tuple, int]) -> dict[str, int]:
    """``{(status,): n}`` as ``{status: n}``."""
    return {status: count for (status,), count in counts.items()}


def dashboard_stats(client_id: int, tz_name: str = "Africa/Nairobi") -> DashboardStats:
    """Balance, contacts, conversations, and outbound messages and spend today and this month."""
    client = db.session.get(Client, client_id)
    # count(*) rather than count(id): PostgreSQL can answer from the (client_id, ...) indexes alone.
    contacts = db.session.scalar(sa.select(sa.func.count()).where(Contact.client_id == client_id))
    open_count, unread = db.session.execute(
        sa.select(sa.func.count(), sa.func.count().filter(Conversation.unread_count > 0)).where(
            Conversation.client_id == client_id, Conversation.status == "open"
        )
    ).one()
    starts = [start_of_today(tz_name), _start_of_month(tz_name)]
    marks = message_stats.watermarks()
    today, month = message_stats.totals(
        message_stats.MESSAGES, client_id, starts, ("status",), "messages", marks.get("messages")
    )
    spend_today, spend_month = message_stats.totals(
        message_stats.SPEND, client_id, starts, (), "amount", marks.get("spend")
    )
    return DashboardStats(
        balance=client.balance,
        units_available=client.ksh_to_units(client.balance),
        price_per_unit=client.price_per_unit,
        contacts=contacts or 0,
        open_conversations=open_count or 0,
        unread_conversations=unread or 0,
        today_by_status=by_status(today),
        month_by_status=by_status(month),
        spend_today=Decimal(spend_today.get((), 0)),
        spend_month=Decimal(spend_month.get((), 0)),
    )


def daily_series(client_id: int, days: int, tz_name: str = "Africa/Nairobi") -> list[DayPoint]:
    """One point per local day for the last ``days`` days (today included), zeros where nothing happened."""
    first = start_of_today(tz_name) - timedelta(days=days - 1)
    marks = message_stats.watermarks()
    counts = message_stats.daily(
        message_stats.MESSAGES, client_id, first, tz_name, ("status",), "messages", marks.get("messages")
    )
    spend = message_stats.daily(message_stats.SPEND, client_id, first, tz_name, (), "amount", marks.get("spend"))
    start = first.date()
    return [
        DayPoint(d, by_status(counts.get(d, {})), Decimal(spend.get(d, {}).get((), 0)))
        for d in (start + timedelta(days=i) for i in range(days))
    ]


def delivery_by_channel(client_id: int, days: int, tz_name: str = "Africa/Nairobi") -> list[ChannelRate]:
    """Delivered and failed outbound messages per channel since the first of the last ``days`` local days."""
    first = start_of_today(tz_name) - timedelta(days=days - 1)
    sealed = message_stats.watermarks().get("messages")
    [counts] = message_stats.totals(
        message_stats.MESSAGES, client_id, [first], ("channel", "status"), "messages", sealed
    )
    return [
        ChannelRate(channel, counts.get((channel, "delivered"), 0), counts.get((channel, "failed"), 0))
        for channel in sorted({channel for channel, _status in counts})
    ]


def recent_campaigns(client_id: int, limit: int = 5) -> list[Campaign]:
    return db.session.scalars(
        sa.select(Campaign).where(Campaign.client_id == client_id).order_by(Campaign.id.desc()).limit(limit)
    ).all()


def recent_conversations(client_id: int, limit: int = 5) -> list[Conversation]:
    return db.session.scalars(
        sa.select(Conversation)
        .options(joinedload(Conversation.contact))
        .where(Conversation.client_id == client_id, Conversation.last_message_at.is_not(None))
        .order_by(Conversation.last_message_at.desc())
        .limit(limit)
    ).all()
