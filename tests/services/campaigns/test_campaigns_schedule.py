"""Scheduling in Africa/Nairobi, promotional quiet hours at their boundaries, and counters under concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.jobs.campaigns import run_clock
from bulkapp.models import Campaign, Client, Message
from bulkapp.providers.base import DeliveryReport, DeliveryStatus
from bulkapp.services.campaigns import drafts as campaigns
from bulkapp.services.campaigns import launch as campaign_launch
from bulkapp.services.campaigns import progress as figures
from bulkapp.services.campaigns.launch import CampaignError
from bulkapp.services.campaigns.recipients import clean_selection
from bulkapp.services.compliance import quiet_hours
from bulkapp.services.messaging.delivery import apply_delivery_report
from tests.conftest import ledger_balance
from tests.services.campaigns.test_campaigns import fresh, fund, make, numbers, statuses

EAT = quiet_hours.NAIROBI


def eat(hour: int, minute: int = 0, day: int = 2) -> datetime:
    """A moment given in Nairobi time, as the UTC the services receive."""
    return datetime(2026, 3, day, hour, minute, tzinfo=EAT).astimezone(UTC)


@pytest.mark.parametrize(
    ("hour", "minute", "open_"), [(17, 59, True), (18, 0, False), (7, 59, False), (8, 0, True), (12, 0, True)]
)
def test_window_boundaries(hour, minute, open_):
    assert quiet_hours.is_open({}, eat(hour, minute)) is open_


def test_next_opening_and_a_custom_window():
    assert quiet_hours.next_opening({}, eat(18, 0)) == eat(8, 0, day=3)
    assert quiet_hours.next_opening({}, eat(7, 59)) == eat(8, 0)
    custom = {"promotional_hours": {"start": "09:30", "end": "17:00"}}
    assert quiet_hours.is_open(custom, eat(9, 29)) is False and quiet_hours.is_open(custom, eat(9, 30)) is True
    assert quiet_hours.is_open(custom, eat(17, 0)) is False
    broken = {"promotional_hours": {"start": "20:00", "end": "06:00"}}  # end before start: the default applies
    assert quiet_hours.window(broken) == quiet_hours.Window(quiet_hours.DEFAULT_START, quiet_hours.DEFAULT_END)
    assert quiet_hours.is_open({"promotional_hours": {"start": "00:00", "end": "24:00"}}, eat(23, 59))


@pytest.mark.parametrize(("hour", "minute", "starts"), [(17, 59, True), (18, 0, False), (7, 59, False), (8, 0, True)])
def test_launch_at_the_boundaries(tenant, hour, minute, starts):
    fund(tenant)
    campaign = make(tenant, body="Hi")
    result = campaign_launch.launch_campaign(tenant.id, campaign.id, now=eat(hour, minute))
    db.session.commit()
    if starts:
        assert result.status == "sending"
    else:
        assert result.status == "scheduled" and fresh(campaign).status == "scheduled"
        expected = eat(8, 0, day=3) if hour >= 18 else eat(8, 0)
        assert result.waiting_until == expected == fresh(campaign).scheduled_at
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


def test_transactional_ignores_quiet_hours(tenant):
    fund(tenant)
    campaign = make(tenant, body="Your code is 1234", kind="transactional")
    assert campaign_launch.launch_campaign(tenant.id, campaign.id, now=eat(23, 0)).status == "sending"


def test_scheduled_in_nairobi_time_launches_when_due_and_not_before(tenant):
    fund(tenant)
    campaign = make(tenant, body="Hi")
    when = eat(10, 30)  # the user picked 10:30 in Africa/Nairobi; stored as 07:30 UTC
    campaigns.schedule_campaign(tenant.id, campaign.id, when, now=eat(9, 0))
    db.session.commit()
    assert fresh(campaign).scheduled_at == datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
    assert run_clock(eat(10, 29)) == {"launched": 0, "paused": 0, "resumed": 0, "requeued": 0, "settled": 0}
    assert fresh(campaign).status == "scheduled"
    stats = run_clock(eat(10, 30))
    assert stats["launched"] == 1
    campaign = fresh(campaign)
    assert campaign.status == "sent" and statuses(campaign) == {"delivered": 3}  # inline jobs ran
    assert run_clock(eat(10, 31))["launched"] == 0  # a second tick finds nothing due


def test_schedule_validation(tenant, other_tenant):
    campaign = make(tenant, body="Hi")
    with pytest.raises(CampaignError) as error:
        campaigns.schedule_campaign(tenant.id, campaign.id, eat(9, 0), now=eat(10, 0))
    assert error.value.code == "invalid_schedule"
    with pytest.raises(CampaignError) as error:
        campaigns.schedule_campaign(other_tenant.id, campaign.id, eat(11, 0), now=eat(10, 0))
    assert error.value.code == "not_found"
    empty = make(tenant, body="Hi", selection=clean_selection())
    with pytest.raises(CampaignError) as error:
        campaigns.schedule_campaign(tenant.id, empty.id, eat(11, 0), now=eat(10, 0))
    assert error.value.code == "no_recipients"


def test_scheduling_a_campaign_the_balance_cannot_pay_is_refused_at_once(tenant):
    """Issue 12 item 12: the balance is checked when scheduling, not only at the start."""
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(numbers(300))))
    with pytest.raises(CampaignError) as error:
        campaigns.schedule_campaign(tenant.id, campaign.id, eat(11, 0), now=eat(10, 0))
    assert error.value.code == "insufficient_balance" and "KSh 240.00" in error.value.message
    db.session.rollback()
    assert fresh(campaign).status == "draft"


def test_send_now_deferred_by_quiet_hours_still_checks_the_balance(tenant):
    """At night a promotional campaign waits for the opening; without the money it is refused now, not then."""
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(numbers(300))))
    with pytest.raises(CampaignError) as error:
        campaign_launch.launch_campaign(tenant.id, campaign.id, now=eat(22, 0))
    assert error.value.code == "insufficient_balance"
    db.session.rollback()
    assert fresh(campaign).status == "draft" and fresh(campaign).scheduled_at is None
    fund(tenant)  # with the money it waits for the opening as before
    result = campaign_launch.launch_campaign(tenant.id, campaign.id, now=eat(22, 0))
    assert result.status == "scheduled" and result.waiting_until == eat(8, 0, day=3)


def test_a_scheduled_launch_that_can_no_longer_be_paid_fails_with_a_notification(tenant):
    from flask_babel import force_locale

    from bulkapp.models import Notification
    from bulkapp.services.billing import wallet
    from bulkapp.services.notifications.notify import render

    fund(tenant, "200.00")  # KSh 300 now; the campaign costs 240
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(numbers(300))))
    campaigns.schedule_campaign(tenant.id, campaign.id, eat(11, 0), now=eat(10, 0))
    db.session.commit()
    wallet.debit(tenant.id, "250.00", reference="test:spent-meanwhile")
    db.session.commit()
    run_clock(eat(11, 0))
    campaign = fresh(campaign)
    assert campaign.status == "failed" and "balance" in campaign.stats["error"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
    note = db.session.scalar(
        sa.select(Notification).where(Notification.client_id == tenant.id, Notification.title.like("Campaign%"))
    )
    assert note.title == f"Campaign “{campaign.name}” could not start"
    assert "costs KSh 240.00 but the balance is KSh 50.00" in note.message
    with force_locale("sw"):
        shown = render(note)
    assert shown.title.startswith("Kampeni") and "inagharimu KSh 240.00 lakini salio ni KSh 50.00" in shown.message
    assert ledger_balance(tenant.id) == fresh_balance(tenant)


def fresh_balance(tenant) -> Decimal:
    return db.session.scalar(sa.select(Client.balance).where(Client.id == tenant.id))


def test_scheduled_outside_hours_waits_for_the_opening(tenant):
    fund(tenant)
    campaign = make(tenant, body="Hi")
    campaigns.schedule_campaign(tenant.id, campaign.id, eat(20, 0), now=eat(12, 0))
    db.session.commit()
    run_clock(eat(20, 0))
    campaign = fresh(campaign)
    assert campaign.status == "scheduled" and campaign.scheduled_at == eat(8, 0, day=3)
    assert run_clock(eat(7, 59, day=3))["launched"] == 0
    assert run_clock(eat(8, 0, day=3))["launched"] == 1
    assert fresh(campaign).status == "sent"


def test_sending_at_closing_pauses_and_resumes_next_morning(tenant, monkeypatch):
    monkeypatch.setattr(campaign_launch, "DISPATCH_CHUNK", 2)
    fund(tenant)
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(numbers(6))))
    result = campaign_launch.launch_campaign(tenant.id, campaign.id, now=eat(17, 58))
    db.session.commit()
    from bulkapp.jobs.campaigns import send_campaign_chunk

    send_campaign_chunk(tenant.id, campaign.id, *result.ranges[0])  # 2 of 6 go out before closing
    assert run_clock(eat(17, 59))["paused"] == 0
    assert run_clock(eat(18, 0))["paused"] == 1
    campaign = fresh(campaign)
    assert campaign.status == "paused" and campaign.pause_reason == "quiet_hours"
    for first, last in result.ranges[1:]:  # chunk jobs still queued at closing send nothing
        send_campaign_chunk(tenant.id, campaign.id, first, last)
    assert statuses(campaign) == {"delivered": 2, "pending": 4}
    # A manual resume at night stays paused until the opening.
    night = campaign_launch.resume_campaign(tenant.id, campaign.id, now=eat(22, 0))
    db.session.commit()
    assert night.status == "paused" and night.waiting_until == eat(8, 0, day=3)
    assert run_clock(eat(7, 59, day=3))["resumed"] == 0
    assert run_clock(eat(8, 0, day=3))["resumed"] == 1
    campaign = fresh(campaign)
    assert campaign.status == "sent" and statuses(campaign) == {"delivered": 6}
    assert fresh(tenant).balance == ledger_balance(tenant.id)


def test_concurrent_delivery_reports_keep_counters_exact(app, tenant, monkeypatch):
    """Eight threads apply the delivery reports of a 40-recipient campaign, each report several times."""
    fund(tenant)
    client = db.session.get(Client, tenant.id)
    client.settings = {"promotional_hours": {"start": "00:00", "end": "24:00"}}
    db.session.commit()
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(numbers(40))))
    result = campaign_launch.launch_campaign(tenant.id, campaign.id, now=eat(12, 0))
    db.session.commit()
    # Send without the inline sandbox reports, so the threads deliver them.
    for first, last in result.ranges:
        campaign_launch.send_chunk(tenant.id, campaign.id, first, last, checkpoint=db.session.commit)
    db.session.commit()
    sent = db.session.execute(
        sa.select(Message.provider_message_id, Message.recipient).where(Message.campaign_id == campaign.id)
    ).all()
    assert len(sent) == 40 and fresh(campaign).sent_count == 40
    final = {pid: DeliveryStatus.FAILED if n % 5 == 0 else DeliveryStatus.DELIVERED for n, (pid, _) in enumerate(sent)}
    db.session.rollback()
    errors, barrier = [], threading.Barrier(8)

    def work(k: int) -> None:
        try:
            with app.app_context():
                barrier.wait()
                order = list(final.items()) if k % 2 else list(reversed(final.items()))
                for pid, status in order:
                    apply_delivery_report("sandbox", DeliveryReport(pid, status, status.value.upper()))
                    db.session.commit()
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert errors == []
    campaign = fresh(campaign)
    assert (campaign.delivered_count, campaign.failed_count) == (32, 8)
    assert campaign_launch.finish_if_done(tenant.id, campaign.id) is True
    db.session.commit()
    campaign = fresh(campaign)
    assert campaign.total_cost == result.cost  # accepted-then-failed messages are charged
    assert fresh(tenant).balance == ledger_balance(tenant.id) == Decimal("1100.00") - result.cost
    assert db.session.get(Campaign, campaign.id).settled_run == 1
    assert figures.campaign_progress(tenant.id, campaign.id).delivered == 32
    assert timedelta(0) <= (campaign.completed_at - campaign.sent_at)
