"""A campaign's progress: each recipient's final state across its runs, the runs as a history, the quote of a
"retry failed" run, and percentages that never round up to 100 before everyone is counted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Campaign, Client, Message
from bulkapp.services.campaigns.launch import charged_filter, get_campaign
from bulkapp.services.campaigns.message_rows import campaign_content, estimate_run

RUNNING = ("sending", "paused")
REPORT_WAIT = timedelta(minutes=10)  # the progress page keeps polling this long for delivery reports


def floor_percent(part: int, whole: int) -> int:
    """``part`` of ``whole`` in whole percent, rounded down: 398 of 400 is 99 %, only all of them is 100 %."""
    return 100 * part // whole if whole else 0


def delivered_percent(campaign: Campaign) -> int | None:
    if not campaign.sent_count:
        return None
    return min(100, floor_percent(campaign.delivered_count, campaign.sent_count))


@dataclass
class RunSummary:
    """One launch of the campaign (the first send, then each "retry failed"): its recipients by status."""

    number: int
    started_at: datetime | None
    counts: dict[str, int] = field(default_factory=dict)
    cost: Decimal = Decimal("0")

    @property
    def recipients(self) -> int:
        return sum(self.counts.values())

    def count(self, *statuses: str) -> int:
        return sum(self.counts.get(status, 0) for status in statuses)


@dataclass
class Progress:
    run: int
    total: int
    queued: int
    sent: int
    delivered: int
    failed: int
    unknown: int
    cost_so_far: Decimal
    running: bool
    awaiting_reports: bool = False
    runs: list[RunSummary] = field(default_factory=list)

    @property
    def polling(self) -> bool:
        """Poll while sending, and for a while after while delivery reports are still coming in."""
        return self.running or self.awaiting_reports

    @property
    def done(self) -> int:
        return self.total - self.queued

    def percent(self, part: int) -> float:
        return round(100 * part / self.total, 1) if self.total else 0.0

    @property
    def percent_done(self) -> int:
        return floor_percent(self.done, self.total)


def final_counts(campaign: Campaign) -> dict[str, int]:
    """Recipients by the status of their latest message: one who failed in run 1 and got the retry in run 2
    counts once, as delivered. Grouped in SQL over the (campaign, run, recipient) index, never loaded."""
    where = (Message.campaign_id == campaign.id, Message.client_id == campaign.client_id)
    if campaign.run <= 1:
        query = sa.select(Message.status, sa.func.count()).where(*where)
    else:
        latest = (
            sa.select(Message.recipient, sa.func.max(Message.campaign_run).label("last_run"))
            .where(*where)
            .group_by(Message.recipient)
            .subquery()
        )
        query = (
            sa.select(Message.status, sa.func.count())
            .join(latest, sa.and_(Message.recipient == latest.c.recipient, Message.campaign_run == latest.c.last_run))
            .where(*where)
        )
    return dict(db.session.execute(query.group_by(Message.status)).all())


def run_history(campaign: Campaign) -> list[RunSummary]:
    """Every run, oldest first, with its counts by status, when it started and what it cost."""
    runs: dict[int, RunSummary] = {}
    rows = db.session.execute(
        sa.select(Message.campaign_run, Message.status, sa.func.count(), sa.func.min(Message.created_at))
        .where(Message.campaign_id == campaign.id, Message.client_id == campaign.client_id)
        .group_by(Message.campaign_run, Message.status)
    ).all()
    for number, status, count, started in rows:
        run = runs.setdefault(number or 0, RunSummary(number or 0, started))
        run.counts[status] = count
        if started is not None and (run.started_at is None or started < run.started_at):
            run.started_at = started
    costs = db.session.execute(
        sa.select(Message.campaign_run, sa.func.sum(Message.cost))
        .where(Message.campaign_id == campaign.id, Message.client_id == campaign.client_id, charged_filter())
        .group_by(Message.campaign_run)
    ).all()
    for number, cost in costs:
        if (number or 0) in runs:
            runs[number or 0].cost = cost or Decimal("0")
    return [runs[number] for number in sorted(runs)]


def campaign_progress(client_id: int, campaign_id: int) -> Progress:
    """Each recipient's final state across all runs (queued = pending or sending), the runs, and the cost."""
    campaign = get_campaign(client_id, campaign_id)
    counts = final_counts(campaign)
    runs = run_history(campaign) if campaign.run > 1 else []
    cost = db.session.scalar(
        sa.select(sa.func.sum(Message.cost)).where(
            Message.campaign_id == campaign.id, Message.client_id == client_id, charged_filter()
        )
    ) or Decimal("0")
    running = campaign.status in RUNNING or (campaign.status == "cancelled" and campaign.settled_run < campaign.run)
    return Progress(
        run=campaign.run,
        total=sum(counts.values()),
        queued=counts.get("pending", 0) + counts.get("sending", 0),
        sent=counts.get("sent", 0),
        delivered=counts.get("delivered", 0),
        failed=counts.get("failed", 0),
        unknown=counts.get("unknown", 0),
        cost_so_far=cost,
        running=running,
        awaiting_reports=bool(
            counts.get("sent") and campaign.completed_at is not None and utcnow() - campaign.completed_at < REPORT_WAIT
        ),
        runs=runs,
    )


def failed_count_of_run(campaign: Campaign) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Message)
        .where(Message.campaign_id == campaign.id, Message.campaign_run == campaign.run, Message.status == "failed")
    )


@dataclass
class RetryQuote:
    """What "retry failed" would send and reserve, shown before the owner confirms."""

    recipients: int
    cost: Decimal
    balance: Decimal

    @property
    def affordable(self) -> bool:
        return self.cost <= self.balance


def quote_retry(client_id: int, campaign_id: int) -> RetryQuote:
    """Price the current run's failed recipients as the retry's launch will (opted-out numbers skipped)."""
    campaign = get_campaign(client_id, campaign_id)
    client = db.session.get(Client, client_id)
    recipients, cost = estimate_run(client, campaign, campaign_content(campaign), retry_of=campaign.run)
    return RetryQuote(recipients, cost, client.balance)
