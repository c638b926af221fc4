"""Dispatch through a real provider (the Onfon simulator on loopback): claims, every result kind, refunds once,
retries, the stuck-message sweeper and the sandbox's delivery reports."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.jobs.messaging import apply_sandbox_reports, retry_due_messages, sweep_stuck_messages
from bulkapp.jobs.messaging import dispatch_messages as dispatch_job
from bulkapp.models import Campaign, Channel, Client, Event, Message, Notification, WalletTransaction
from bulkapp.phones import normalise_msisdn
from bulkapp.services.billing import wallet
from bulkapp.services.messaging import dispatch
from tests.conftest import ledger_balance

pytest_plugins = ["tests.simulators.onfon"]
IDLE = {"sent": 0, "failed": 0, "unknown": 0, "deferred": 0}


@pytest.fixture
def live(tenant, onfon_sim):
    """Tenant A, live, with an active Onfon channel pointed at the simulator."""
    client = db.session.get(Client, tenant.id)
    client.is_test_mode = False
    db.session.add(
        Channel(
            client_id=tenant.id,
            name="sms",
            provider="onfon",
            credentials=onfon_sim.credentials,
            config=onfon_sim.config(),
            active=True,
            webhook_token="onfon-token",
        )
    )
    db.session.commit()
    return tenant


def pending(client_id: int, to: str, *, campaign_id: int | None = None, cost: str = "0.80", body: str = "Hello") -> int:
    """A pending outbound message as campaigns insert them: charged (unless a campaign's), not dispatched."""
    message = Message(
        client_id=client_id,
        recipient=normalise_msisdn(to),
        body=body,
        channel="sms",
        direction="outbound",
        status="pending",
        segments=1,
        cost=Decimal(cost),
        campaign_id=campaign_id,
        meta={},
        attempts=0,
    )
    db.session.add(message)
    db.session.flush()
    if campaign_id is None:
        wallet.debit(client_id, cost, reference=f"message:{message.id}")
    db.session.commit()
    return message.id


def fresh(message_id: int) -> Message:
    db.session.expire_all()
    return db.session.get(Message, message_id)


def refunds(client_id: int) -> list[WalletTransaction]:
    return db.session.scalars(
        sa.select(WalletTransaction).where(WalletTransaction.client_id == client_id, WalletTransaction.type == "refund")
    ).all()


def events(type_: str) -> int:
    return db.session.scalar(sa.select(sa.func.count(Event.id)).where(Event.type == type_))


def balanced(client_id: int) -> bool:
    db.session.expire_all()
    return db.session.get(Client, client_id).balance == ledger_balance(client_id)


def test_accepted_messages_are_sent_once_even_when_the_job_runs_twice(live, onfon_sim):
    ids = [pending(live.id, "0712345600"), pending(live.id, "0712345611")]
    assert dispatch_job(live.id, ids) == {**IDLE, "sent": 2}
    assert dispatch_job(live.id, ids) == IDLE
    assert len(onfon_sim.submissions) == 2 and onfon_sim.duplicate_recipients() == {}
    by_number = {s.recipient: s for s in onfon_sim.submissions}
    for message_id in ids:
        message = fresh(message_id)
        submission = by_number[message.recipient.lstrip("+")]
        assert message.status == "sent" and message.provider == "onfon" and message.sent_at is not None
        assert message.provider_message_id == submission.provider_message_id and message.attempts == 1
        assert message.channel_id is not None and message.claimed_at is not None
    assert events("message.sent") == 2 and refunds(live.id) == []


def test_concurrent_dispatches_of_the_same_messages_send_each_once(app, live, onfon_sim):
    onfon_sim.latency = 0.02
    client_id = live.id  # threads must not touch the test session's objects
    ids = [pending(client_id, f"07123450{i:02d}") for i in range(10, 50)]
    outcomes: list[dict] = []

    def run() -> None:
        with app.app_context():
            outcomes.append(dispatch_job(client_id, ids))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(outcome["sent"] for outcome in outcomes) == 40
    assert onfon_sim.duplicate_recipients() == {} and len(onfon_sim.accepted()) == 40
    db.session.commit()  # a fresh snapshot, after the threads' commits
    assert set(db.session.scalars(sa.select(Message.attempts))) == {1}
    assert events("message.sent") == 40


def test_big_dispatches_go_in_provider_sized_batches(live, onfon_sim):
    plain = [n for n in range(10_000, 11_000) if n % 100 >= 10 and n % 100 not in (55, 66, 77, 88, 99)][:230]
    ids = [pending(live.id, f"0711{n:06d}", cost="0.10") for n in plain]  # no simulator magic endings
    assert dispatch_job(live.id, ids)["sent"] == 230
    assert onfon_sim.stats()["requests"] == 3  # Onfon's preferred batch is 100


def test_rejected_messages_fail_and_are_refunded_exactly_once(live, onfon_sim):
    ok, invalid, opted_out = (pending(live.id, n) for n in ("0712345600", "0712345699", "0712345688"))
    assert dispatch_job(live.id, [ok, invalid, opted_out]) == {**IDLE, "sent": 1, "failed": 2}
    dispatch_job(live.id, [ok, invalid, opted_out])
    assert fresh(ok).status == "sent"
    for message_id in (invalid, opted_out):
        message = fresh(message_id)
        assert message.status == "failed" and message.failed_at is not None and "Onfon" in message.error_message
    assert sorted(r.reference for r in refunds(live.id)) == [f"refund:message:{invalid}", f"refund:message:{opted_out}"]
    assert all(r.amount == Decimal("0.80") for r in refunds(live.id))
    assert db.session.get(Client, live.id).balance == Decimal("99.20") and balanced(live.id)
    assert events("message.failed") == 2 and events("message.sent") == 1
    (note,) = db.session.scalars(sa.select(Notification).where(Notification.type == "message_failed")).all()
    assert note.title == "2 messages were not sent" and note.client_id == live.id


def test_a_single_rejection_notifies_about_that_message(live, onfon_sim):
    invalid = pending(live.id, "0712345699")
    dispatch_job(live.id, [invalid])
    note = db.session.scalar(sa.select(Notification).where(Notification.type == "message_failed"))
    assert note.title == "Message to +254712345699 was not sent" and "refunded" in note.message


def test_a_busy_provider_defers_the_batch_and_a_later_run_sends_it(live, onfon_sim):
    onfon_sim.fault = "5xx"
    message_id = pending(live.id, "0712345600")
    assert dispatch_job(live.id, [message_id]) == {**IDLE, "deferred": 1}
    message = fresh(message_id)
    assert message.status == "pending" and "busy" in message.error_message and message.attempts == 1
    assert timedelta(seconds=5) < message.next_attempt_at - utcnow() <= timedelta(seconds=10)
    assert refunds(live.id) == [] and onfon_sim.accepted() == []

    onfon_sim.fault = None
    assert dispatch_job(live.id, [message_id]) == IDLE  # not due yet
    assert dispatch.messages_due_for_retry() == {}
    later = utcnow() + timedelta(seconds=11)
    assert dispatch.messages_due_for_retry(now=later) == {live.id: [message_id]}
    db.session.execute(sa.update(Message).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert retry_due_messages() == 1
    message = fresh(message_id)
    assert message.status == "sent" and message.error_message is None and message.attempts == 2
    assert len(onfon_sim.accepted()) == 1 and balanced(live.id)


def test_rate_limiting_waits_as_long_as_the_provider_asks(live, onfon_sim):
    onfon_sim.fault, onfon_sim.retry_after = "429", 120
    message_id = pending(live.id, "0712345600")
    dispatch_job(live.id, [message_id])
    message = fresh(message_id)
    assert message.status == "pending" and message.next_attempt_at - utcnow() > timedelta(seconds=118)


def test_a_provider_that_keeps_deferring_fails_the_message_in_the_end(live, onfon_sim):
    onfon_sim.fault = "5xx"
    message_id = pending(live.id, "0712345600")
    db.session.execute(sa.update(Message).values(attempts=dispatch.MAX_SEND_ATTEMPTS - 1))
    db.session.commit()
    assert dispatch_job(live.id, [message_id]) == {**IDLE, "failed": 1}
    message = fresh(message_id)
    assert message.status == "failed" and "Gave up after 8 attempts" in message.error_message
    assert [r.reference for r in refunds(live.id)] == [f"refund:message:{message_id}"] and balanced(live.id)


def test_a_permanent_refusal_fails_and_refunds_the_batch(live, onfon_sim):
    onfon_sim.fault = "auth_fail"
    ids = [pending(live.id, "0712345600"), pending(live.id, "0712345611")]
    assert dispatch_job(live.id, ids) == {**IDLE, "failed": 2}
    assert all("credentials" in fresh(i).error_message for i in ids)
    assert len(refunds(live.id)) == 2 and db.session.get(Client, live.id).balance == Decimal("100.00")
    assert balanced(live.id)


def test_an_unclear_answer_makes_the_message_unknown_and_it_is_never_resent(live, onfon_sim):
    onfon_sim.fault = "malformed_json"
    message_id = pending(live.id, "0712345600")
    assert dispatch_job(live.id, [message_id]) == {**IDLE, "unknown": 1}
    message = fresh(message_id)
    assert message.status == "unknown" and "not sent again" in message.error_message
    onfon_sim.fault = None
    dispatch_job(live.id, [message_id])
    retry_due_messages()
    assert len(onfon_sim.accepted()) == 1  # the simulator did take it once, and only once
    assert refunds(live.id) == [] and fresh(message_id).status == "unknown" and balanced(live.id)


def test_campaign_messages_are_not_refunded_by_dispatch(live, onfon_sim):
    campaign = Campaign(
        client_id=live.id, name="Promo", message="Hello", channel="sms", recipients=[], status="sending"
    )
    db.session.add(campaign)
    db.session.commit()
    message_id = pending(live.id, "0712345699", campaign_id=campaign.id)
    dispatch_job(live.id, [message_id])
    assert fresh(message_id).status == "failed" and refunds(live.id) == []
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0  # campaigns report on their page


def test_another_tenants_ids_are_not_dispatched(live, other_tenant, onfon_sim):
    message_id = pending(live.id, "0712345600")
    assert dispatch_job(other_tenant.id, [message_id]) == IDLE
    assert fresh(message_id).status == "pending" and onfon_sim.submissions == []


def test_unknown_ids_and_non_pending_messages_are_skipped(live, onfon_sim):
    message_id = pending(live.id, "0712345600")
    db.session.execute(sa.update(Message).values(status="delivered"))
    db.session.commit()
    assert dispatch_job(live.id, [message_id, 987654]) == IDLE
    assert onfon_sim.submissions == []


def test_a_channel_switched_off_before_dispatch_fails_and_refunds(live, onfon_sim):
    message_id = pending(live.id, "0712345600")
    db.session.execute(sa.update(Channel).where(Channel.provider == "onfon").values(active=False))
    db.session.commit()
    assert dispatch_job(live.id, [message_id]) == {**IDLE, "failed": 1}
    assert "No SMS channel" in fresh(message_id).error_message
    assert len(refunds(live.id)) == 1 and balanced(live.id)


def test_incomplete_channel_settings_fail_the_messages(live, onfon_sim):
    message_id = pending(live.id, "0712345600")
    channel = db.session.scalar(sa.select(Channel).where(Channel.provider == "onfon"))
    channel.credentials = {"api_key": "only-this"}
    db.session.commit()
    dispatch_job(live.id, [message_id])
    message = fresh(message_id)
    assert message.status == "failed" and "Access key" in message.error_message and len(refunds(live.id)) == 1


def test_stuck_sending_messages_become_unknown_after_the_timeout(live, work_app, monkeypatch):
    old, recent = pending(live.id, "0712345600"), pending(live.id, "0712345611")
    now = utcnow()
    db.session.execute(
        sa.update(Message).where(Message.id == old).values(status="sending", claimed_at=now - timedelta(minutes=20))
    )
    db.session.execute(sa.update(Message).where(Message.id == recent).values(status="sending", claimed_at=now))
    db.session.commit()
    assert sweep_stuck_messages() == 1  # the default threshold is 15 minutes
    assert fresh(old).status == "unknown" and "not sent again" in fresh(old).error_message
    assert fresh(recent).status == "sending"
    monkeypatch.setitem(work_app.config, "MESSAGE_SENDING_TIMEOUT_SECONDS", 0)
    assert sweep_stuck_messages() == 1 and fresh(recent).status == "unknown"
    assert refunds(live.id) == []  # they may have gone out: charged, kept for review


def test_the_sweeper_never_touches_other_statuses(tenant):
    ids = [pending(tenant.id, f"07123456{i}0") for i in range(5)]
    for message_id, status in zip(ids, ("pending", "sent", "delivered", "failed", "unknown"), strict=True):
        db.session.execute(sa.update(Message).where(Message.id == message_id).values(status=status, claimed_at=None))
    db.session.commit()
    assert dispatch.sweep_stuck_messages(timedelta(0)) == []


def test_lost_single_sends_are_picked_up_but_idle_campaigns_are_not(live, onfon_sim):
    paused = Campaign(client_id=live.id, name="Paused", message="Hi", channel="sms", recipients=[], status="paused")
    db.session.add(paused)
    db.session.commit()
    lost = pending(live.id, "0712345600")
    fresh_one = pending(live.id, "0712345611")
    campaign_message = pending(live.id, "0712345622", campaign_id=paused.id)
    old = utcnow() - timedelta(minutes=3)
    db.session.execute(sa.update(Message).where(Message.id.in_([lost, campaign_message])).values(created_at=old))
    db.session.execute(
        sa.update(Message).where(Message.id == campaign_message).values(next_attempt_at=old)
    )  # deferred, but its campaign is paused
    db.session.commit()
    assert dispatch.messages_due_for_retry() == {live.id: [lost]}
    assert retry_due_messages() == 1
    assert fresh(lost).status == "sent" and fresh(fresh_one).status == "pending"
    assert fresh(campaign_message).status == "pending"
    paused = db.session.get(Campaign, paused.id)
    paused.status = "sending"
    db.session.commit()
    assert dispatch.messages_due_for_retry() == {live.id: [campaign_message]}


# ------------------------------------------------------------------------------------------ sandbox


def test_the_sandbox_accepts_rejects_and_reports_delivery(tenant):
    delivered, undelivered, rejected = (pending(tenant.id, n) for n in ("0712345678", "0712345602", "0712345601"))
    outcome = dispatch_job(tenant.id, [delivered, undelivered, rejected])
    assert outcome == {**IDLE, "sent": 2, "failed": 1}
    assert fresh(delivered).status == "delivered" and fresh(delivered).delivered_at is not None
    assert fresh(undelivered).status == "failed" and "02" in fresh(undelivered).error_message
    assert fresh(rejected).status == "failed" and "01" in fresh(rejected).error_message
    # Refunded: the one the sandbox refused. A failed delivery report is not refunded (vendor charged).
    assert [r.reference for r in refunds(tenant.id)] == [f"refund:message:{rejected}"] and balanced(tenant.id)
    assert apply_sandbox_reports(tenant.id, [delivered, undelivered]) == 4  # replayed: no second effect
    assert events("message.delivered") == 1 and events("message.failed") == 2 and events("message.sent") == 2


def test_a_test_mode_dispatch_sends_every_kind_through_the_sandbox(tenant):
    sms = pending(tenant.id, "0712345678")
    email = Message(
        client_id=tenant.id,
        recipient="a@example.com",
        body="Hi",
        channel="email",
        subject="S",
        status="pending",
        direction="outbound",
        cost=Decimal("0"),
        meta={},
        attempts=0,
    )
    db.session.add(email)
    db.session.commit()
    assert dispatch_job(tenant.id, [sms, email.id])["sent"] == 2
    assert fresh(email.id).status == "delivered" and fresh(email.id).provider == "sandbox"


# ------------------------------------------------------------------------- outside the inline test mode


def test_the_embedded_worker_gets_the_dispatch_only_once_the_send_commits(tenant):
    from bulkapp import create_app
    from bulkapp.extensions import rq
    from bulkapp.services.messaging.compose import send_message
    from tests.conftest import test_settings

    client_id = tenant.id
    db.session.commit()
    thread_app = create_app(test_settings(JOBS_MODE="thread", EMBEDDED_SCHEDULER=False))
    with thread_app.app_context():
        backend = rq.backend()
        send_message(client_id, to="0712345678", body="Rolled back")
        db.session.rollback()
        assert backend._local.unfinished_tasks == 0  # nothing queued for a send that never happened
        message = send_message(client_id, to="0722000111", body="Committed")
        message_id = message.id
        assert backend._local.unfinished_tasks == 0  # not before the commit...
        db.session.commit()
        assert backend._local.unfinished_tasks >= 1  # ...but right after it
        rq.join()  # the dispatch, then the sandbox's reports (a few seconds, as the sandbox plans them)
    db.session.commit()
    message = db.session.get(Message, message_id)
    assert message.status == "delivered" and message.delivered_at > message.sent_at
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 1


def test_a_send_made_while_redis_is_down_is_kept_and_sent_by_the_periodic_retry(tenant, caplog):
    from bulkapp import create_app
    from bulkapp.services.messaging.compose import send_message
    from tests.conftest import test_settings

    client_id = tenant.id
    db.session.commit()
    down = create_app(test_settings(JOBS_MODE="rq", REDIS_URL="redis://127.0.0.1:1/0"))
    with down.app_context():
        message_id = send_message(client_id, to="0712345678", body="Queue is down").id
        db.session.commit()  # the send stands even though its job could not be queued
    assert "could not queue bulkapp.jobs.messaging.dispatch_messages" in caplog.text
    message = fresh(message_id)
    assert message.status == "pending" and balanced(client_id)
    assert db.session.get(Client, client_id).balance == Decimal("99.20")
    db.session.execute(sa.update(Message).values(created_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()
    assert retry_due_messages() == 1 and fresh(message_id).status == "delivered"


@pytest.mark.redis
def test_under_rq_a_deferred_batch_is_scheduled_again_after_its_back_off(live, onfon_sim):
    import os

    from rq.registry import ScheduledJobRegistry

    from bulkapp import create_app
    from bulkapp.extensions import rq
    from tests.conftest import require, test_settings

    redis_url = os.environ.get("REDIS_URL")
    require(bool(redis_url), "REDIS_URL is not set")
    onfon_sim.fault = "5xx"
    client_id, message_id = live.id, pending(live.id, "0712345600")
    rq_app = create_app(test_settings(JOBS_MODE="rq", REDIS_URL=redis_url))
    with rq_app.app_context():
        queue = rq.queue("high")
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            registry.remove(job_id, delete_job=True)
        assert dispatch_job(client_id, [message_id]) == {**IDLE, "deferred": 1}
        (job_id,) = registry.get_job_ids()
        job = queue.fetch_job(job_id)
        due = registry.get_scheduled_time(job)
        registry.remove(job_id, delete_job=True)
    assert job.func_name == "bulkapp.jobs.messaging.dispatch_messages" and job.args == (client_id, [message_id])
    db.session.commit()  # a fresh snapshot, after the rq app's commits
    message = fresh(message_id)
    assert abs((due - message.next_attempt_at).total_seconds()) < 2


def test_campaign_messages_use_the_promotional_sender_and_single_ones_the_transactional(live, onfon_sim):
    channel = db.session.scalar(sa.select(Channel).where(Channel.provider == "onfon"))
    channel.config = {**channel.config, "sender_id": "ACME", "transactional_sender_id": "BULKAPP"}
    campaign = Campaign(client_id=live.id, name="Promo", message="Hi", channel="sms", recipients=[], status="sending")
    db.session.add(campaign)
    db.session.commit()
    single = pending(live.id, "0712345600")
    promo = pending(live.id, "0712345611", campaign_id=campaign.id)
    dispatch_job(live.id, [single, promo])
    senders = {s.recipient: s.sender for s in onfon_sim.submissions}
    assert senders == {"254712345600": "BULKAPP", "254712345611": "ACME"}


def test_a_delivery_report_racing_the_batch_moves_its_message_once(app, live, onfon_sim, monkeypatch):
    """The vendor's report for one message is applied (by another process) while the batch is in flight: the
    batched mark-sent leaves that message delivered and records ``message.sent`` only for the others."""
    from bulkapp.providers.base import DeliveryReport, DeliveryStatus
    from bulkapp.providers.onfon import OnfonProvider
    from bulkapp.services.messaging.delivery import apply_delivery_report

    ids = [pending(live.id, f"07123456{n:02d}") for n in (10, 11, 12)]
    send_batch = OnfonProvider.send_batch

    def send_then_report(self, messages):
        results = send_batch(self, messages)
        first = results[0]
        report = DeliveryReport(
            first.provider_message_id, DeliveryStatus.DELIVERED, "DELIVRD", reference=str(first.message_id)
        )
        with app.app_context():  # the webhook, in its own session and transaction
            apply_delivery_report("onfon", report)
            db.session.commit()
        return results

    monkeypatch.setattr(OnfonProvider, "send_batch", send_then_report)
    assert dispatch_job(live.id, ids) == {**IDLE, "sent": 2}
    raced = fresh(ids[0])
    assert raced.status == "delivered" and raced.provider_message_id is not None
    assert [fresh(i).status for i in ids[1:]] == ["sent", "sent"]
    assert events("message.sent") == 2 and events("message.delivered") == 1


def test_results_are_recorded_per_message_in_one_batch(live, onfon_sim):
    """Accepted, rejected and failing-request numbers in one provider request each get their own outcome."""
    ids = [pending(live.id, n) for n in ("0712345600", "0712345699", "0712345611", "0712345688")]
    assert dispatch_job(live.id, ids) == {**IDLE, "sent": 2, "failed": 2}
    messages = [fresh(i) for i in ids]
    assert [m.status for m in messages] == ["sent", "failed", "sent", "failed"]
    assert len({m.provider_message_id for m in messages if m.status == "sent"}) == 2
    assert messages[1].error_message != messages[3].error_message  # each keeps its own reason
    assert events("message.sent") == 2 and events("message.failed") == 2
    assert len(refunds(live.id)) == 2 and balanced(live.id)
