"""Campaign jobs: chunk jobs are idempotent, the clock launches/settles, and chunks run in a real RQ worker."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp import create_app
from bulkapp.extensions import db, rq
from bulkapp.jobs import campaigns as campaign_jobs
from bulkapp.jobs.periodic import PERIODIC
from bulkapp.models import Campaign, Message, WalletTransaction
from bulkapp.services.campaigns import launch as campaign_launch
from bulkapp.services.campaigns.recipients import clean_selection
from tests.conftest import ledger_balance, require, test_settings
from tests.jobs.test_rq_worker import run_worker
from tests.services.campaigns.test_campaigns import fresh, fund, make, numbers, statuses

NOON = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_the_clock_is_registered():
    assert any(p.path == "bulkapp.jobs.campaigns:campaign_clock" for p in PERIODIC)


def test_a_chunk_job_run_twice_sends_once(tenant):
    fund(tenant)
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(numbers(4))))
    result = campaign_launch.launch_campaign(tenant.id, campaign.id, now=NOON)
    db.session.commit()
    ((first, last),) = result.ranges
    assert campaign_jobs.send_campaign_chunk(tenant.id, campaign.id, first, last) == 4
    assert campaign_jobs.send_campaign_chunk(tenant.id, campaign.id, first, last) == 0
    campaign = fresh(campaign)
    assert campaign.sent_count == 4 and campaign.delivered_count == 4 and campaign.status == "sent"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.attempts > 1)) == 0
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(WalletTransaction).where(WalletTransaction.type == "release")
        )
        == 1
    )


def test_the_clock_settles_a_campaign_whose_last_job_died(tenant):
    fund(tenant)
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(numbers(3))))
    result = campaign_launch.launch_campaign(tenant.id, campaign.id, now=NOON)
    db.session.commit()
    for first, last in result.ranges:  # sent, but the job died before its completion check
        campaign_launch.send_chunk(tenant.id, campaign.id, first, last, checkpoint=db.session.commit)
    db.session.commit()
    assert fresh(campaign).status == "sending"
    assert campaign_jobs.run_clock(NOON)["settled"] == 1
    assert fresh(campaign).status == "sent"
    assert fresh(tenant).balance == ledger_balance(tenant.id) == Decimal("1100.00") - result.cost
    assert campaign_jobs.run_clock(NOON)["settled"] == 0


def test_the_clock_requeues_a_campaign_whose_chunk_jobs_were_lost(tenant):
    from bulkapp.columns import utcnow

    fund(tenant)
    campaign = make(tenant, body="Hi", kind="transactional", selection=clean_selection(numbers="\n".join(numbers(3))))
    campaign_launch.launch_campaign(tenant.id, campaign.id)  # the chunk jobs are never enqueued
    db.session.commit()
    assert campaign_jobs.run_clock(utcnow() + timedelta(minutes=5))["requeued"] == 0  # not idle long enough
    stats = campaign_jobs.run_clock(utcnow() + timedelta(minutes=11))
    assert stats["requeued"] == 1
    campaign = fresh(campaign)
    assert campaign.status == "sent" and statuses(campaign) == {"delivered": 3}


def test_launch_job_marks_an_unlaunchable_campaign_failed(tenant):
    campaign = make(tenant, body="Hi", kind="transactional", selection=clean_selection(numbers="hello"))
    campaign.status = "scheduled"
    db.session.commit()
    assert campaign_jobs.launch_campaign(tenant.id, campaign.id) == "no_recipients"
    campaign = fresh(campaign)
    assert campaign.status == "failed" and "No one to send to" in campaign.stats["error"]


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    url = url.rsplit("/", 1)[0] + "/11"  # a database of its own: never touch other suites' queues
    from redis import Redis

    try:
        Redis.from_url(url).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no usable Redis
        require(False, f"Redis at {url} does not answer: {exc}")
    return url


@pytest.mark.redis
@pytest.mark.parametrize(
    "options",
    [(), ("--worker-class", "bulkapp.jobs.worker.PreloadedWorker")],
    ids=["rq-worker", "procfile-preloaded-worker"],
)
def test_chunks_are_enqueued_at_once_and_run_in_a_real_worker(redis_url, tenant, monkeypatch, options):
    """Each chunk job runs in its own forked work horse: RQ's plain worker builds the app in every one, the
    Procfile's :class:`PreloadedWorker` forks them from a process that built it once."""
    monkeypatch.setattr(campaign_launch, "DISPATCH_CHUNK", 5)
    fund(tenant)
    campaign = make(tenant, body="Hi", kind="transactional", selection=clean_selection(numbers="\n".join(numbers(12))))
    result = campaign_launch.launch_campaign(tenant.id, campaign.id, now=NOON)
    tenant_id, campaign_id = tenant.id, campaign.id
    db.session.commit()  # the worker is another process: leave nothing locked or unseen
    rq_app = create_app(test_settings(JOBS_MODE="rq", REDIS_URL=redis_url))
    with rq_app.app_context():
        for name in ("default", "low"):
            rq.queue(name).empty()
        campaign_jobs.enqueue_chunks(tenant_id, campaign_id, result.ranges)
        assert len(rq.queue("default").jobs) == 3
    db.session.rollback()
    outcome = run_worker(redis_url, "default", options=options)
    assert outcome.returncode == 0, outcome.stderr
    assert "Traceback" not in outcome.stderr, outcome.stderr[-3000:]
    assert outcome.stdout.count("Job OK") == 3, outcome.stdout[-3000:]
    campaign = fresh(campaign)
    assert statuses(campaign) == {"sent": 12} and campaign.sent_count == 12
    # The sandbox reports were queued on "low"; the campaign settles when its last chunk finished sending.
    assert campaign.status == "sent" and db.session.get(Campaign, campaign.id).settled_run == 1
    with rq_app.app_context():
        assert len(rq.queue("low").jobs) == 3
        rq.queue("low").empty()
