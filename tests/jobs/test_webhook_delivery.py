"""The webhook jobs: the periodic dispatcher delivers what the outbox holds, one attempt is made once however
often its job runs, and the database (not the queue) says what is still due."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.jobs.periodic import PERIODIC
from bulkapp.jobs.webhooks import deliver_webhook, dispatch_webhooks
from bulkapp.models import Client, WebhookDelivery
from bulkapp.services.billing.wallet import credit
from bulkapp.services.notifications.events import record_event
from bulkapp.services.tenant_webhooks import delivery as webhooks_out
from bulkapp.services.tenant_webhooks.settings import configure_webhook, current_secret
from tests.simulators.webhook_receiver import Reply, WebhookReceiver


@pytest.fixture
def hook(app, work_app, monkeypatch):
    for flask_app in (app, work_app):
        monkeypatch.setitem(flask_app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", True)
    with WebhookReceiver() as receiver:
        yield receiver


def subscribe(tenant, receiver, events) -> None:
    configure_webhook(tenant.id, url=receiver.url, events=events, active=True, allow_private=True)
    db.session.commit()
    receiver.secret = current_secret(db.session.get(Client, tenant.id))


def attempts(client_id: int) -> list[WebhookDelivery]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(WebhookDelivery).where(WebhookDelivery.client_id == client_id).order_by(WebhookDelivery.id)
        )
    )


def test_the_dispatcher_is_a_periodic_job_on_the_low_queue():
    [task] = [task for task in PERIODIC if task.path == "bulkapp.jobs.webhooks:dispatch_webhooks"]
    assert task.queue == "low" and task.every_seconds <= 30
    assert task.function() is dispatch_webhooks


def test_a_wallet_topup_reaches_the_tenant_signed(tenant, other_tenant, hook):
    subscribe(other_tenant, hook, ["message.delivered"])  # the other tenant does not want top-ups
    subscribe(tenant, hook, ["wallet.topup", "message.delivered"])  # (the receiver checks tenant A's secret)
    record_event(tenant.id, "wallet.topup", {"amount": "250.00", "receipt": "SGR7XYZ789", "currency": "KES"})
    record_event(other_tenant.id, "wallet.topup", {"amount": "99.00"})
    db.session.commit()

    result = dispatch_webhooks()
    assert result == {"events": 2, "recovered": 0, "queued": 1}
    [received] = hook.received
    assert received.verified, received.error
    assert received.json["type"] == "wallet.topup" and received.json["data"]["receipt"] == "SGR7XYZ789"
    [row] = attempts(tenant.id)
    assert row.status == "succeeded" and row.status_code == 200
    assert attempts(other_tenant.id) == []
    assert dispatch_webhooks() == {"events": 0, "recovered": 0, "queued": 0}
    assert hook.count == 1


def test_events_the_wallet_records_are_delivered(tenant, hook):
    """An event recorded by real product code (the low-balance alert of a debit) goes out like any other."""
    from bulkapp.services.billing.wallet import debit

    subscribe(tenant, hook, ["wallet.low_balance"])
    credit(tenant.id, "1.00", reference="test:topup")  # 101.00
    debit(tenant.id, "95.00", reference="test:campaign")  # crosses the default 100.00 alert level
    db.session.commit()
    dispatch_webhooks()
    [received] = hook.received
    assert received.verified and received.json["type"] == "wallet.low_balance"
    assert received.json["data"]["balance"] == "6.00"


def test_running_the_same_delivery_job_twice_sends_once(tenant, hook):
    subscribe(tenant, hook, ["message.sent"])
    record_event(tenant.id, "message.sent", {"id": 1})
    db.session.commit()
    webhooks_out.dispatch_new_events()
    db.session.commit()
    [row] = attempts(tenant.id)
    assert deliver_webhook(row.id) == "succeeded"
    assert deliver_webhook(row.id) is None  # RQ ran it again: already done
    assert hook.count == 1


def test_concurrent_jobs_for_one_attempt_make_one_call(tenant, hook, app):
    subscribe(tenant, hook, ["message.sent"])
    hook.default = Reply(200, delay=0.3)
    record_event(tenant.id, "message.sent", {"id": 1})
    db.session.commit()
    webhooks_out.dispatch_new_events()
    db.session.commit()
    [row] = attempts(tenant.id)
    results, barrier = [], threading.Barrier(4)

    def worker():
        with app.app_context():
            barrier.wait()
            results.append(deliver_webhook(row.id))
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results, key=str) == [None, None, None, "succeeded"]
    assert hook.count == 1


def test_a_lost_job_is_queued_again_from_the_database(tenant, hook):
    """Redis dropped the job after the dispatcher marked the attempt queued: a later tick finds it again."""
    subscribe(tenant, hook, ["message.sent"])
    record_event(tenant.id, "message.sent", {"id": 1})
    db.session.commit()
    now = utcnow()
    webhooks_out.dispatch_new_events(now=now)
    [lost] = webhooks_out.queue_due_attempts(now=now)  # ...and the job never runs
    db.session.commit()
    assert webhooks_out.queue_due_attempts(now=now + timedelta(minutes=1)) == []
    assert webhooks_out.queue_due_attempts(now=now + webhooks_out.REQUEUE_AFTER + timedelta(seconds=1)) == [lost]
    db.session.commit()
    assert deliver_webhook(lost) == "succeeded" and hook.count == 1


def test_the_dispatcher_recovers_an_attempt_whose_worker_died(tenant, hook):
    subscribe(tenant, hook, ["message.sent"])
    record_event(tenant.id, "message.sent", {"id": 1})
    db.session.commit()
    long_ago = utcnow() - timedelta(minutes=10)
    webhooks_out.dispatch_new_events(now=long_ago)
    [row] = attempts(tenant.id)
    webhooks_out.claim_attempt(row.id, now=long_ago)  # the worker died after claiming
    db.session.commit()
    assert dispatch_webhooks()["recovered"] == 1
    first, retry = attempts(tenant.id)
    assert first.status == "failed" and retry.status == "pending" and retry.attempt == 2
    assert hook.count == 0  # the retry waits for its back-off


def test_a_failed_delivery_job_leaves_a_retry_in_the_database(tenant, hook):
    subscribe(tenant, hook, ["message.sent"])
    hook.default = Reply(500)
    record_event(tenant.id, "message.sent", {"id": 1})
    db.session.commit()
    before = utcnow()
    dispatch_webhooks()
    first, retry = attempts(tenant.id)
    assert first.status == "failed" and retry.status == "pending"
    assert before + timedelta(seconds=5) <= retry.next_attempt_at <= utcnow() + timedelta(seconds=5)
    assert dispatch_webhooks()["queued"] == 0  # not due yet
