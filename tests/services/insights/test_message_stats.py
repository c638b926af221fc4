"""The dashboard's hourly roll-ups: numbers read through them equal numbers counted straight from the rows."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Message, MessageStatsHourly, SpendStatsHourly, WalletTransaction
from bulkapp.providers.base import DeliveryReport, DeliveryStatus
from bulkapp.services.insights import dashboard
from bulkapp.services.insights import hourly_stats as message_stats
from bulkapp.services.insights import platform as platform_stats
from bulkapp.services.insights.dashboard import RANGES, start_of_today

ZONES = ("Africa/Nairobi", "UTC", "Asia/Kolkata", "America/New_York")  # +3, 0, +5:30, and daylight saving
STATUSES = ("delivered", "delivered", "failed", "sent", "pending", "unknown")


def _refresh() -> None:
    for rollup in message_stats.ROLLUPS:
        message_stats.refresh(rollup)
    db.session.commit()


def _moments(rng: random.Random) -> list[datetime]:
    """Random times over 100 days, plus a minute either side of midnight in every zone tested."""
    now = utcnow()
    moments = [now - timedelta(seconds=rng.random() * 100 * 86400) for _ in range(300)]
    for zone in ZONES:
        for days in range(0, 95, 3):
            midnight = datetime.combine(now.astimezone(ZoneInfo(zone)).date() - timedelta(days=days), time.min,
                                        ZoneInfo(zone))  # fmt: skip
            moments += [midnight - timedelta(minutes=1), midnight, midnight + timedelta(minutes=1)]
    return [moment for moment in moments if moment < now]


def _seed(client_id: int, rng: random.Random, moments: list[datetime]) -> None:
    messages, ledger = [], []
    for n, at in enumerate(moments):
        inbound = n % 9 == 0
        status = "received" if inbound else rng.choice(STATUSES)
        messages.append(
            {"client_id": client_id, "channel": rng.choice(("sms", "sms", "whatsapp")), "recipient": "+254712345678",
             "direction": "inbound" if inbound else "outbound", "status": status,
             "segments": rng.randint(1, 3), "cost": Decimal("0.80"), "body": "x", "metadata": {}, "created_at": at,
             "updated_at": at, "provider": "sandbox", "provider_message_id": f"{client_id}-{n}"}
        )  # fmt: skip
        kind, sign = rng.choice((("deduction", -1), ("hold", -1), ("release", 1), ("refund", 1), ("topup", 1)))
        ledger.append(
            {"client_id": client_id, "type": kind, "amount": Decimal(sign * rng.randint(1, 5000)) / 100,
             "reference": f"{client_id}:{n}", "status": "pending" if n % 13 == 0 else "completed", "metadata": {},
             "created_at": at, "updated_at": at}
        )  # fmt: skip
    db.session.execute(sa.insert(Message), messages)
    db.session.execute(sa.insert(WalletTransaction), ledger)
    db.session.commit()


def _expected(client_id: int | None, tz_name: str, since: datetime):
    """Counts by (local day, channel, status) and spend by local day, straight from every row in Python."""
    tz = ZoneInfo(tz_name)
    tenant = [] if client_id is None else [Message.client_id == client_id]
    counts: Counter = Counter()
    for at, channel, status in db.session.execute(
        sa.select(Message.created_at, Message.channel, Message.status).where(Message.direction == "outbound", *tenant)
    ):
        if at >= since:
            counts[(at.astimezone(tz).date(), channel, status)] += 1
    spend: Counter = Counter()
    ledger = [] if client_id is None else [WalletTransaction.client_id == client_id]
    for at, amount in db.session.execute(
        sa.select(WalletTransaction.created_at, WalletTransaction.amount).where(
            WalletTransaction.status == "completed", WalletTransaction.type.in_(message_stats.SPEND_TYPES), *ledger
        )
    ):
        if at >= since:
            spend[at.astimezone(tz).date()] -= amount
    return counts, spend


def _by(counts: Counter, *, day=None, channel=None) -> dict[str, int]:
    out: Counter = Counter()
    for (d, c, status), n in counts.items():
        if (day is None or d == day) and (channel is None or c == channel):
            out[status] += n
    return dict(out)


def _assert_dashboard_exact(client_id: int) -> None:
    for zone in ZONES:
        today = start_of_today(zone)
        stats = dashboard.dashboard_stats(client_id, zone)
        counts, spend = _expected(client_id, zone, today)
        assert stats.today_by_status == _by(counts), zone
        assert stats.spend_today == sum(spend.values(), Decimal(0)), zone
        counts, spend = _expected(client_id, zone, today.replace(day=1))
        assert stats.month_by_status == _by(counts), zone
        assert stats.spend_month == sum(spend.values(), Decimal(0)), zone
        for days in RANGES:
            first = today - timedelta(days=days - 1)
            counts, spend = _expected(client_id, zone, first)
            series = dashboard.daily_series(client_id, days, zone)
            assert [p.by_status for p in series] == [_by(counts, day=p.day) for p in series], (zone, days)
            assert [p.spend for p in series] == [spend.get(p.day, Decimal(0)) for p in series], (zone, days)
            assert sum(p.total for p in series) == sum(counts.values())
            rates = {r.channel: (r.delivered, r.failed) for r in dashboard.delivery_by_channel(client_id, days, zone)}
            channels = {c for (_d, c, _s) in counts}
            assert rates == {c: (_by(counts, channel=c).get("delivered", 0), _by(counts, channel=c).get("failed", 0))
                             for c in channels}, (zone, days)  # fmt: skip


@pytest.fixture
def seeded(tenant, other_tenant):
    rng = random.Random(7)
    moments = _moments(rng)
    _seed(tenant.id, rng, moments)
    _seed(other_tenant.id, rng, moments[::2])
    return tenant


def test_numbers_through_the_rollup_equal_numbers_from_the_rows(seeded):
    _assert_dashboard_exact(seeded.id)  # before the first refresh: all counted live
    _refresh()
    hours = db.session.scalar(sa.select(sa.func.count()).select_from(MessageStatsHourly))
    assert hours > 100 and db.session.scalar(sa.select(sa.func.count()).select_from(SpendStatsHourly)) > 100
    _assert_dashboard_exact(seeded.id)


def test_the_dashboard_reads_the_rollup_for_sealed_hours(seeded):
    _refresh()
    before = dashboard.dashboard_stats(seeded.id).month_by_status
    bucket = db.session.scalars(
        sa.select(MessageStatsHourly).where(
            MessageStatsHourly.client_id == seeded.id,
            MessageStatsHourly.hour >= start_of_today("Africa/Nairobi").replace(day=1),
            MessageStatsHourly.hour < message_stats.watermarks()["messages"],
        )
    ).first()
    bucket.messages += 1000
    db.session.commit()
    assert dashboard.dashboard_stats(seeded.id).month_by_status[bucket.status] == before[bucket.status] + 1000


def test_a_late_delivery_report_moves_an_old_message_at_the_next_refresh(seeded):
    from bulkapp.services.messaging.delivery import apply_delivery_report

    old = utcnow() - timedelta(days=40)
    db.session.add(Message(client_id=seeded.id, recipient="+254700000001", status="sent", provider="sandbox",
                           provider_message_id="late-1", created_at=old, updated_at=old))  # fmt: skip
    db.session.commit()
    _refresh()
    report = DeliveryReport(provider_message_id="late-1", status=DeliveryStatus.DELIVERED, vendor_status="DELIVRD")
    assert apply_delivery_report("sandbox", report).status == "delivered"
    db.session.commit()
    _refresh()
    _assert_dashboard_exact(seeded.id)


def test_new_rows_count_at_once_and_late_commits_reach_the_rollup(seeded):
    _refresh()
    now = utcnow()
    sealed = message_stats.watermarks()["messages"]
    db.session.add_all(
        [Message(client_id=seeded.id, recipient="+254700000002", status="pending", created_at=now),
         # stamped before the watermark but committed after the refresh, as a slow transaction would
         Message(client_id=seeded.id, recipient="+254700000003", status="failed",
                 created_at=sealed - timedelta(minutes=2), updated_at=sealed - timedelta(minutes=2))]
    )  # fmt: skip
    db.session.commit()
    assert dashboard.dashboard_stats(seeded.id).today_by_status.get("pending", 0) >= 1  # the live tail
    _refresh()
    _assert_dashboard_exact(seeded.id)


def test_refresh_after_refresh_changes_nothing(seeded):
    _refresh()
    rows = db.session.execute(sa.select(MessageStatsHourly.__table__).order_by(*MessageStatsHourly.__table__.c)).all()
    _refresh()
    again = db.session.execute(sa.select(MessageStatsHourly.__table__).order_by(*MessageStatsHourly.__table__.c)).all()
    assert again == rows
    _assert_dashboard_exact(seeded.id)


def test_platform_totals_equal_the_rows_of_every_tenant(seeded, other_tenant):
    _refresh()
    for zone in ("Africa/Nairobi", "Asia/Kolkata"):
        totals = platform_stats.platform_totals(14, zone)
        counts, spend = _expected(None, zone, start_of_today(zone) - timedelta(days=13))
        assert [d.by_status for d in totals.days] == [_by(counts, day=d.day) for d in totals.days]
        assert [d.revenue for d in totals.days] == [spend.get(d.day, Decimal(0)) for d in totals.days]


def test_hours_are_utc_hours():
    assert message_stats.floor_hour(datetime(2026, 3, 1, 2, 59, 59, tzinfo=ZoneInfo("Africa/Nairobi"))) == datetime(
        2026, 2, 28, 23, tzinfo=UTC
    )


def test_refresh_is_a_periodic_job_and_a_command(app, seeded):
    from bulkapp.jobs.periodic import PERIODIC
    from bulkapp.jobs.stats import refresh_stats

    assert any(p.path == "bulkapp.jobs.stats:refresh_stats" and p.every_seconds <= 60 for p in PERIODIC)
    first = refresh_stats()["messages"]
    assert first > 100 and refresh_stats()["messages"] < first  # then only the hours with recent changes
    result = app.test_cli_runner().invoke(args=["stats", "rebuild"])
    assert result.exit_code == 0 and "Rebuilt messages" in result.output, result.output
    db.session.rollback()
    _assert_dashboard_exact(seeded.id)


def test_the_range_switch_shows_the_same_totals_as_the_rows(seeded, login):
    _refresh()
    client = login(seeded.test_user)
    for days in RANGES:
        counts, _spend = _expected(
            seeded.id, "Africa/Nairobi", start_of_today("Africa/Nairobi") - timedelta(days=days - 1)
        )
        body = client.get(f"/dashboard/charts?range={days}", headers={"HX-Request": "true"}).get_data(as_text=True)
        assert f"Last {days} days" in body and f"{sum(counts.values()):,} in all" in body
