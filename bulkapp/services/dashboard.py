"""The numbers and series on a tenant's dashboard, counted in the user's timezone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Campaign, Client, Contact, Conversation, Message, WalletTransaction

RANGES = (7, 30, 90)
SPEND_TYPES = ("deduction", "hold", "release", "refund")


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


def _local_day(column, tz_name: str):
    """SQL for the calendar day of a UTC timestamp column in ``tz_name``."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.func.date(sa.func.timezone(tz_name, column))
    # SQLite keeps UTC text; shift by the zone's current offset (East Africa has no daylight saving).
    minutes = int(datetime.now(ZoneInfo(tz_name)).utcoffset().total_seconds() // 60)
    return sa.func.date(column, f"{minutes:+d} minutes")


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _outbound_by_status(client_id: int, since: datetime) -> dict[str, int]:
    rows = db.session.execute(
        sa.select(Message.status, sa.func.count(Message.id))
        .where(Message.client_id == client_id, Message.direction == "outbound", Message.created_at >= since)
        .group_by(Message.status)
    ).all()
    return {status: count for status, count in rows}


def _spend_since(client_id: int, since: datetime) -> Decimal:
    total = db.session.scalar(
        sa.select(sa.func.sum(WalletTransaction.amount)).where(
            WalletTransaction.client_id == client_id,
            WalletTransaction.status == "completed",
            WalletTransaction.type.in_(SPEND_TYPES),
            WalletTransaction.created_at >= since,
        )
    )
    return -(total or Decimal(0))


def dashboard_stats(client_id: int, tz_name: str = "Africa/Nairobi") -> DashboardStats:
    """Balance, contacts, conversations, and outbound messages and spend today and this month."""
    client = db.session.get(Client, client_id)
    contacts = db.session.scalar(sa.select(sa.func.count(Contact.id)).where(Contact.client_id == client_id))
    open_count, unread = db.session.execute(
        sa.select(
            sa.func.count(Conversation.id),
            sa.func.count(Conversation.id).filter(Conversation.unread_count > 0),
        ).where(Conversation.client_id == client_id, Conversation.status == "open")
    ).one()
    today, month = start_of_today(tz_name), _start_of_month(tz_name)
    return DashboardStats(
        balance=client.balance,
        units_available=client.ksh_to_units(client.balance),
        price_per_unit=client.price_per_unit,
        contacts=contacts or 0,
        open_conversations=open_count or 0,
        unread_conversations=unread or 0,
        today_by_status=_outbound_by_status(client_id, today),
        month_by_status=_outbound_by_status(client_id, month),
        spend_today=_spend_since(client_id, today),
        spend_month=_spend_since(client_id, month),
    )


def daily_series(client_id: int, days: int, tz_name: str = "Africa/Nairobi") -> list[DayPoint]:
    """One point per local day for the last ``days`` days (today included), zeros where nothing happened."""
    first = start_of_today(tz_name) - timedelta(days=days - 1)
    day = _local_day(Message.created_at, tz_name)
    counts: dict[date, dict[str, int]] = {}
    for value, status, count in db.session.execute(
        sa.select(day, Message.status, sa.func.count(Message.id))
        .where(Message.client_id == client_id, Message.direction == "outbound", Message.created_at >= first)
        .group_by(day, Message.status)
    ):
        counts.setdefault(_as_date(value), {})[status] = count
    tx_day = _local_day(WalletTransaction.created_at, tz_name)
    spend: dict[date, Decimal] = {}
    for value, total in db.session.execute(
        sa.select(tx_day, sa.func.sum(WalletTransaction.amount))
        .where(
            WalletTransaction.client_id == client_id,
            WalletTransaction.status == "completed",
            WalletTransaction.type.in_(SPEND_TYPES),
            WalletTransaction.created_at >= first,
        )
        .group_by(tx_day)
    ):
        spend[_as_date(value)] = -(total or Decimal(0))
    start = first.date()
    return [
        DayPoint(d, counts.get(d, {}), spend.get(d, Decimal(0)))
        for d in (start + timedelta(days=i) for i in range(days))
    ]


def delivery_by_channel(client_id: int, days: int, tz_name: str = "Africa/Nairobi") -> list[ChannelRate]:
    first = start_of_today(tz_name) - timedelta(days=days - 1)
    rows = db.session.execute(
        sa.select(
            Message.channel,
            sa.func.count(Message.id).filter(Message.status == "delivered"),
            sa.func.count(Message.id).filter(Message.status == "failed"),
        )
        .where(Message.client_id == client_id, Message.direction == "outbound", Message.created_at >= first)
        .group_by(Message.channel)
        .order_by(Message.channel)
    ).all()
    return [ChannelRate(channel, delivered, failed) for channel, delivered, failed in rows]


def recent_campaigns(client_id: int, limit: int = 5) -> list[Campaign]:
    return db.session.scalars(
        sa.select(Campaign).where(Campaign.client_id == client_id).order_by(Campaign.id.desc()).limit(limit)
    ).all()


def recent_conversations(client_id: int, limit: int = 5) -> list[Conversation]:
    return db.session.scalars(
        sa.select(Conversation)
        .where(Conversation.client_id == client_id, Conversation.last_message_at.is_not(None))
        .order_by(Conversation.last_message_at.desc())
        .limit(limit)
    ).all()
