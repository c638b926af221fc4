"""Platform-wide figures for the admin: messages and revenue per day across every tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Campaign, Channel, Client
from bulkapp.services.insights import hourly_stats as message_stats
from bulkapp.services.insights.dashboard import by_status, start_of_today

DAYS = 14


@dataclass(frozen=True)
class PlatformDay:
    day: date
    by_status: dict[str, int]
    revenue: Decimal

    @property
    def messages(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class PlatformTotals:
    days: list[PlatformDay]
    active_clients: int
    suspended_clients: int

    @property
    def messages(self) -> int:
        return sum(d.messages for d in self.days)

    @property
    def revenue(self) -> Decimal:
        return sum((d.revenue for d in self.days), start=Decimal(0))


def platform_totals(days: int = DAYS, tz_name: str = "Africa/Nairobi") -> PlatformTotals:
    """Outbound messages (by status) and revenue per local day for the last ``days`` days, today included.

    Revenue is what tenants were charged: completed deductions and campaign holds, less releases and refunds
    (the same rows as each tenant's dashboard spend), from the hourly roll-ups plus their live tail.
    """
    first = start_of_today(tz_name) - timedelta(days=days - 1)
    marks = message_stats.watermarks()
    counts = message_stats.daily(
        message_stats.MESSAGES, None, first, tz_name, ("status",), "messages", marks.get("messages")
    )
    revenue = message_stats.daily(message_stats.SPEND, None, first, tz_name, (), "amount", marks.get("spend"))
    active, suspended = db.session.execute(
        sa.select(
            sa.func.count(Client.id).filter(Client.status.is_(True)),
            sa.func.count(Client.id).filter(Client.status.is_(False)),
        )
    ).one()
    start = first.date()
    series = [
        PlatformDay(d, by_status(counts.get(d, {})), Decimal(revenue.get(d, {}).get((), 0)))
        for d in (start + timedelta(days=i) for i in range(days))
    ]
    return PlatformTotals(series, active or 0, suspended or 0)


def client_channels(client_id: int) -> list[Channel]:
    """A tenant's channels for the admin (the template shows no credentials)."""
    return list(db.session.scalars(sa.select(Channel).where(Channel.client_id == client_id).order_by(Channel.id)))


def client_campaigns(client_id: int, limit: int = 20) -> list[Campaign]:
    """A tenant's latest campaigns, newest first."""
    return list(
        db.session.scalars(
            sa.select(Campaign).where(Campaign.client_id == client_id).order_by(Campaign.id.desc()).limit(limit)
        )
    )
