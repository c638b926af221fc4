"""Outbound webhooks: Standard Webhooks signatures (checked with the independent ``standardwebhooks`` package),
subscriptions, the retry ladder driven by ``now``, the SSRF guard, resend and test events."""

from __future__ import annotations

import base64
import json
import socket
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from bulkapp.columns import utcnow
from bulkapp.crypto import decrypt
from bulkapp.extensions import db
from bulkapp.models import Client, Event, Notification, WebhookDelivery
from bulkapp.services.notifications.events import record_event
from bulkapp.services.tenant_webhooks import delivery as webhooks_out
from bulkapp.services.tenant_webhooks import http as webhook_http
from bulkapp.services.tenant_webhooks import targets as webhook_targets
from bulkapp.services.tenant_webhooks.settings import (
    WebhookSettingsError,
    configure_webhook,
    current_secret,
    new_secret,
    rotate_secret,
    signing_secrets,
    webhook_settings,
)
from tests.simulators.webhook_receiver import Reply, WebhookReceiver


@pytest.fixture
def hook():
    """A tenant's endpoint on loopback (tests allow loopback targets, as development does)."""
    with WebhookReceiver() as receiver:
        yield receiver


def subscribe(tenant, receiver, events=("message.delivered",), active=True) -> str:
    configure_webhook(tenant.id, url=receiver.url, events=list(events), active=active, allow_private=True)
    db.session.commit()
    receiver.secret = current_secret(db.session.get(Client, tenant.id))
    return receiver.secret


def subscribed_event(tenant, receiver):
    """Subscribe ``receiver`` to message.delivered and record (and commit) one such event."""
    subscribe(tenant, receiver)
    event = record_event(tenant.id, "message.delivered", {"id": 1})
    db.session.commit()
    return event


def run_attempt(delivery_id: int, now):
    """What the deliver_webhook job does, with the clock given."""
    prepared = webhooks_out.claim_attempt(delivery_id, now=now)
    db.session.commit()
    if prepared is None:
        return None
    outcome = webhook_http.send_attempt(prepared)
    webhooks_out.record_outcome(delivery_id, outcome, now=now)
    db.session.commit()
    return outcome


def deliver_due(now) -> list:
    """What the periodic dispatcher and the jobs it enqueues do, with the clock given."""
    webhooks_out.dispatch_new_events(now=now)
    due = webhooks_out.queue_due_attempts(now=now)
    db.session.commit()
    return [run_attempt(delivery_id, now) for delivery_id in due]


def attempts_of(event_id: int) -> list[WebhookDelivery]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(WebhookDelivery).where(WebhookDelivery.event_id == event_id).order_by(WebhookDelivery.attempt)
        )
    )


# ------------------------------------------------------------------------------------------ signing


def test_signature_verifies_with_the_standardwebhooks_package():
    secret = new_secret()
    body = json.dumps({"type": "message.delivered", "data": {"id": 7, "to": "+254712345678"}}).encode()
    timestamp = int(time.time())
    signature = webhook_http.sign(secret, "msg_abc", timestamp, body)
    headers = {"webhook-id": "msg_abc", "webhook-timestamp": str(timestamp), "webhook-signature": signature}
    assert Webhook(secret).verify(body, headers) == json.loads(body)


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-id": "msg_other"},
        {"webhook-timestamp": str(int(time.time()) - 1)},
        {"body": b'{"type":"message.delivered","data":{"id":8}}'},
        {"secret": new_secret()},
    ],
)
def test_any_change_breaks_the_signature(change):
    from standardwebhooks.webhooks import WebhookVerificationError

    secret, body, timestamp = new_secret(), b'{"type":"message.delivered","data":{"id":7}}', int(time.time())
    headers = {
        "webhook-id": "msg_abc",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_http.sign(secret, "msg_abc", timestamp, body),
    }
    headers.update({k: v for k, v in change.items() if k.startswith("webhook-")})
    with pytest.raises(WebhookVerificationError):
        Webhook(change.get("secret", secret)).verify(change.get("body", body), headers)


def test_secrets_are_whsec_base64_of_32_random_bytes():
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_the_secret_is_encrypted_at_rest(tenant, hook):
    secret = subscribe(tenant, hook)
    stored = db.session.scalar(sa.text("SELECT webhook_secret FROM clients WHERE id = :id"), {"id": tenant.id})
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    assert decrypt(stored) == secret
    assert webhook_settings(tenant.id) == {
        "url": hook.url,
        "events": ["message.delivered"],
        "active": True,
        "secret": secret,
    }


# ------------------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", None),
        ("http://hooks.example.com/x", "https://"),
        ("https://127.0.0.1/hooks", "loopback"),
        ("https://localhost/hooks", "loopback"),
        ("https://[::1]/hooks", "loopback"),
        ("https://[::ffff:127.0.0.1]/hooks", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.8/hooks", "private"),
        ("https://192.168.1.20/hooks", "private"),
        ("https://172.16.0.1/hooks", "private"),
        ("https://100.64.0.1/hooks", "reserved"),
        ("https://0.0.0.0/hooks", "unspecified"),
        ("https://224.0.0.1/hooks", "multicast"),
        ("https://[fe80::1]/hooks", "link-local"),
        ("https://[fc00::1]/hooks", "private"),
        ("https://user:pass@8.8.8.8/hooks", "user name"),
        ("https://8.8.8.8:22/hooks", "port"),
        ("https://8.8.8.8/hooks#frag", "fragment"),
        ("ftp://8.8.8.8/hooks", "https://"),
        ("not a url", "https://"),
        ("https://8.8.8.8:99999/", "valid URL"),
        ("https://" + "a" * 600 + ".com/", "too long"),
    ],
)
def test_unsafe_or_malformed_urls_are_refused_when_saved(tenant, url, says):
    if says is None:  # an empty URL is allowed while webhooks are off
        configure_webhook(tenant.id, url=url, events=[], active=False, allow_private=False)
        return
    with pytest.raises(WebhookSettingsError) as error:
        configure_webhook(tenant.id, url=url, events=["message.sent"], active=False, allow_private=False)
    assert error.value.field == "url"
    assert says in error.value.message
    db.session.rollback()
    assert db.session.get(Client, tenant.id).webhook_url is None


def test_a_host_name_is_refused_when_any_of_its_addresses_is_private(tenant, monkeypatch):
    monkeypatch.setattr(webhook_targets, "_getaddrinfo", lambda host, port: ["93.184.216.34", "10.1.2.3"])
    with pytest.raises(WebhookSettingsError, match=r"private address \(10\.1\.2\.3\)"):
        configure_webhook(tenant.id, url="https://hooks.example.com/x", events=[], active=False, allow_private=False)


def test_a_public_host_name_is_accepted(tenant, monkeypatch):
    monkeypatch.setattr(webhook_targets, "_getaddrinfo", lambda host, port: ["93.184.216.34", "2606:2800:220:1::1"])
    client = configure_webhook(
        tenant.id, url=" https://hooks.example.com/x ", events=["wallet.topup"], active=True, allow_private=False
    )
    assert client.webhook_url == "https://hooks.example.com/x" and client.webhook_secret


def test_a_name_that_does_not_resolve_is_refused(tenant):
    with pytest.raises(WebhookSettingsError, match="does not resolve"):
        configure_webhook(tenant.id, url="https://no-such-host.invalid/", events=[], active=False, allow_private=False)


def test_turning_on_needs_a_url_and_an_event(tenant, hook):
    with pytest.raises(WebhookSettingsError, match="Add a URL") as error:
        configure_webhook(tenant.id, url="", events=["message.sent"], active=True, allow_private=True)
    assert error.value.field == "url"
    with pytest.raises(WebhookSettingsError, match="at least one event") as error:
        configure_webhook(tenant.id, url=hook.url, events=[], active=True, allow_private=True)
    assert error.value.field == "events"
    with pytest.raises(WebhookSettingsError, match="Unknown event type: message.exploded"):
        configure_webhook(tenant.id, url=hook.url, events=["message.exploded"], active=False, allow_private=True)
    events = ["wallet.topup", "message.sent", "message.sent"]
    client = configure_webhook(tenant.id, url=hook.url, events=events, active=True, allow_private=True)
    assert client.webhook_events == ["message.sent", "wallet.topup"]  # documented order, no repeats


def test_after_a_rotation_both_secrets_sign_for_a_day(tenant, hook):
    old = subscribe(tenant, hook)
    now = utcnow()
    new = rotate_secret(tenant.id, now=now)
    db.session.commit()
    client = db.session.get(Client, tenant.id)
    assert new != old and current_secret(client) == new
    assert signing_secrets(client, now + timedelta(hours=23)) == [new, old]
    assert signing_secrets(client, now + timedelta(hours=25)) == [new]


# ------------------------------------------------------------------------------------------ dispatch


def test_only_subscribed_events_are_delivered_signed(tenant, hook):
    subscribe(tenant, hook, events=("message.delivered", "wallet.topup"))
    delivered = record_event(tenant.id, "message.delivered", {"id": 1, "to": "+254712345678", "status": "delivered"})
    record_event(tenant.id, "message.sent", {"id": 1})
    record_event(tenant.id, "wallet.low_balance", {"balance": "10.00"})
    topup = record_event(tenant.id, "wallet.topup", {"amount": "500.00", "receipt": "SGR7ABC123"})
    db.session.commit()

    outcomes = deliver_due(utcnow())
    assert [o.status for o in outcomes] == ["succeeded", "succeeded"]
    assert [r.headers["webhook-id"] for r in hook.received] == [delivered.webhook_id, topup.webhook_id]
    assert all(r.verified for r in hook.received), [r.error for r in hook.received]
    first = hook.received[0]
    assert first.json["type"] == "message.delivered"
    assert first.json["data"] == {"id": 1, "to": "+254712345678", "status": "delivered"}
    assert first.json["timestamp"].startswith(delivered.created_at.isoformat()[:19])
    assert first.headers["Content-Type"] == "application/json"
    assert abs(int(first.headers["webhook-timestamp"]) - time.time()) < 30
    assert first.headers["webhook-signature"].startswith("v1,")

    # Every event was looked at once; nothing more is sent later.
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).where(Event.dispatched_at.is_(None))) == 0
    assert deliver_due(utcnow() + timedelta(days=2)) == []
    assert hook.count == 2
    row = attempts_of(delivered.id)[0]
    assert (row.status, row.status_code, row.url) == ("succeeded", 200, hook.url)
    assert row.response_ms is not None and row.response_excerpt == '{"ok": true}'


def test_nothing_is_sent_while_webhooks_are_off_or_for_stale_events(tenant, hook):
    subscribe(tenant, hook, active=False)
    record_event(tenant.id, "message.delivered", {"id": 1})
    db.session.commit()
    assert deliver_due(utcnow()) == []
    subscribe(tenant, hook, active=True)
    old = record_event(tenant.id, "message.delivered", {"id": 2})
    db.session.commit()
    assert deliver_due(old.created_at + webhooks_out.MAX_EVENT_AGE + timedelta(minutes=1)) == []
    assert hook.count == 0


def test_dispatch_is_idempotent(tenant, hook):
    event = subscribed_event(tenant, hook)
    now = utcnow()
    webhooks_out.dispatch_new_events(now=now)
    webhooks_out.dispatch_new_events(now=now)
    db.session.commit()
    assert len(attempts_of(event.id)) == 1
    assert webhooks_out.queue_due_attempts(now=now) == [attempts_of(event.id)[0].id]
    assert webhooks_out.queue_due_attempts(now=now) == []  # already handed to the queue


def test_an_attempt_is_claimed_and_recorded_once(tenant, hook):
    event = subscribed_event(tenant, hook)
    now = utcnow()
    webhooks_out.dispatch_new_events(now=now)
    delivery_id = attempts_of(event.id)[0].id
    prepared = webhooks_out.claim_attempt(delivery_id, now=now)
    assert prepared is not None and prepared.webhook_id == event.webhook_id
    assert webhooks_out.claim_attempt(delivery_id, now=now) is None
    outcome = webhook_http.send_attempt(prepared)
    assert webhooks_out.record_outcome(delivery_id, outcome, now=now) is not None
    assert webhooks_out.record_outcome(delivery_id, outcome, now=now) is None
    db.session.commit()
    assert hook.count == 1


def test_an_attempt_is_not_claimed_before_it_is_due(tenant, hook):
    event = subscribed_event(tenant, hook)
    now = utcnow()
    webhooks_out.dispatch_new_events(now=now)
    assert webhooks_out.claim_attempt(attempts_of(event.id)[0].id, now=now - timedelta(seconds=1)) is None


# ------------------------------------------------------------------------------------------ retries


def test_failures_are_retried_on_the_back_off_ladder_for_about_a_day(tenant, hook):
    hook.default = Reply(500, b"database is down")
    event = subscribed_event(tenant, hook)

    now = utcnow()
    outcomes = deliver_due(now)
    assert [o.status for o in outcomes] == ["failed"]
    for number, delay in enumerate(webhooks_out.RETRY_DELAYS, start=2):
        assert deliver_due(now + delay - timedelta(seconds=1)) == []  # not due yet
        now += delay
        assert [o.status for o in deliver_due(now)] == ["failed"], f"attempt {number}"
    assert deliver_due(now + timedelta(days=3)) == []  # the ladder has ended

    rows = attempts_of(event.id)
    assert [r.attempt for r in rows] == list(range(1, webhooks_out.MAX_AUTO_ATTEMPTS + 1))
    assert all(r.status == "failed" and r.status_code == 500 for r in rows)
    assert rows[0].error == "The endpoint answered 500." and rows[0].response_excerpt == "database is down"
    gaps = [b.finished_at - a.finished_at for a, b in zip(rows, rows[1:], strict=False)]
    assert gaps == list(webhooks_out.RETRY_DELAYS)
    assert [r.next_attempt_at for r in rows[:-1]] == [r.finished_at for r in rows[1:]]
    assert rows[-1].next_attempt_at is None
    total = sum(webhooks_out.RETRY_DELAYS, timedelta())
    assert timedelta(hours=20) < total < timedelta(hours=40)
    # Every attempt carried the same webhook-id and body, each freshly signed.
    assert hook.count == webhooks_out.MAX_AUTO_ATTEMPTS
    assert {r.headers["webhook-id"] for r in hook.received} == {event.webhook_id}
    assert len({r.body for r in hook.received}) == 1 and all(r.verified for r in hook.received)


def test_a_retry_that_succeeds_ends_the_ladder(tenant, hook):
    hook.replies = [Reply(503), Reply(502)]
    event = subscribed_event(tenant, hook)
    now = utcnow()
    deliver_due(now)
    deliver_due(now + timedelta(seconds=5))
    assert [o.status for o in deliver_due(now + timedelta(seconds=5, minutes=5))] == ["succeeded"]
    assert deliver_due(now + timedelta(days=2)) == []
    assert [r.status for r in attempts_of(event.id)] == ["failed", "failed", "succeeded"]


def test_retry_after_is_honoured(tenant, hook):
    hook.replies = [Reply(429, headers={"Retry-After": "600"})]
    event = subscribed_event(tenant, hook)
    now = utcnow()
    deliver_due(now)
    first, second = attempts_of(event.id)
    assert second.next_attempt_at == now + timedelta(seconds=600)  # more than the ladder's 5 s
    assert deliver_due(now + timedelta(seconds=5)) == []


@pytest.mark.parametrize("value", ["²", "9" * 5000, "99999999999999999999", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_retry_after_that_is_not_a_number_of_seconds_falls_back_to_the_ladder(tenant, hook, value):
    hook.replies = [Reply(429, headers={"Retry-After": value})]
    event = subscribed_event(tenant, hook)
    now = utcnow()
    deliver_due(now)
    first, second = attempts_of(event.id)
    assert first.status == "failed" and now < second.next_attempt_at <= now + timedelta(minutes=1)


def test_410_gone_turns_webhooks_off_and_tells_the_tenant(tenant, hook):
    hook.default = Reply(410, b"gone")
    event = subscribed_event(tenant, hook)
    deliver_due(utcnow())
    assert len(attempts_of(event.id)) == 1  # no retry
    assert db.session.get(Client, tenant.id).webhook_active is False
    note = db.session.scalar(sa.select(Notification).where(Notification.client_id == tenant.id))
    assert note.type == "webhook_disabled" and "410" in note.message


def test_timeouts_and_refused_connections_are_retried(tenant, hook, work_app, monkeypatch):
    monkeypatch.setitem(work_app.config, "WEBHOOK_TIMEOUT", (1.0, 0.3))
    hook.replies = [Reply(200, delay=1.0)]
    event = subscribed_event(tenant, hook)
    now = utcnow()
    [outcome] = deliver_due(now)
    assert outcome.status == "failed" and outcome.error == "No answer within 0.3 s." and outcome.retryable

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = db.session.get(Client, tenant.id)
    client.webhook_url = f"http://127.0.0.1:{closed_port}/hooks"
    db.session.commit()
    [outcome] = deliver_due(now + timedelta(seconds=5))
    assert outcome.status == "failed" and outcome.error == f"Could not connect to 127.0.0.1:{closed_port}."
    assert len(attempts_of(event.id)) == 3


def test_an_interrupted_attempt_is_recovered_and_retried(tenant, hook):
    event = subscribed_event(tenant, hook)
    now = utcnow()
    webhooks_out.dispatch_new_events(now=now)
    delivery_id = attempts_of(event.id)[0].id
    assert webhooks_out.claim_attempt(delivery_id, now=now) is not None  # ... and the worker dies
    db.session.commit()
    assert webhooks_out.recover_stuck_attempts(now=now + timedelta(minutes=1)) == 0
    assert webhooks_out.recover_stuck_attempts(now=now + timedelta(minutes=6)) == 1
    db.session.commit()
    first, retry = attempts_of(event.id)
    assert first.status == "failed" and "interrupted" in first.error
    assert retry.status == "pending"
    assert [o.status for o in deliver_due(retry.next_attempt_at)] == ["succeeded"]


def test_an_attempt_is_cancelled_when_webhooks_were_turned_off_meanwhile(tenant, hook):
    hook.default = Reply(500)
    event = subscribed_event(tenant, hook)
    now = utcnow()
    deliver_due(now)
    subscribe(tenant, hook, events=("message.sent",))  # unsubscribed from message.delivered
    assert deliver_due(now + timedelta(seconds=5)) == [None]
    assert [(r.status, r.error) for r in attempts_of(event.id)][-1] == (
        "cancelled",
        "No longer subscribed to message.delivered.",
    )
    assert hook.count == 1


# ------------------------------------------------------------------------------------------ SSRF at send time


def test_send_time_checks_refuse_a_target_that_became_private(tenant, hook, app, work_app, monkeypatch):
    subscribe(tenant, hook)  # saved while private targets were allowed
    for flask_app in (app, work_app):
        monkeypatch.setitem(flask_app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", False)
    event = record_event(tenant.id, "message.delivered", {"id": 1})
    db.session.commit()
    [outcome] = deliver_due(utcnow())
    assert outcome.status == "refused" and "https://" in outcome.error
    client = db.session.get(Client, tenant.id)
    client.webhook_url = "https://localhost/hooks"
    db.session.commit()
    [row] = attempts_of(event.id)
    assert row.status == "refused" and row.next_attempt_at is None  # not retried
    resend = webhooks_out.resend_event(tenant.id, event.id)
    db.session.commit()
    outcome = run_attempt(resend.id, utcnow())
    assert outcome.status == "refused" and outcome.error.startswith("localhost points to a loopback address")
    assert hook.count == 0


def test_a_name_that_rebinds_to_a_private_address_is_refused_at_send_time(tenant, hook, app, work_app, monkeypatch):
    monkeypatch.setattr(webhook_targets, "_getaddrinfo", lambda host, port: ["93.184.216.34"])
    configure_webhook(
        tenant.id, url="https://hooks.example.com/x", events=["message.sent"], active=True, allow_private=False
    )
    for flask_app in (app, work_app):
        monkeypatch.setitem(flask_app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", False)
    monkeypatch.setattr(webhook_targets, "_getaddrinfo", lambda host, port: ["169.254.169.254"])
    record_event(tenant.id, "message.sent", {"id": 1})
    db.session.commit()
    [outcome] = deliver_due(utcnow())
    assert outcome.status == "refused" and "link-local address (169.254.169.254)" in outcome.error


def test_the_connection_goes_to_the_checked_address_with_the_original_host(tenant, hook, monkeypatch):
    looked_up = []

    def fake_dns(host, port):
        looked_up.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(webhook_targets, "_getaddrinfo", fake_dns)
    url = f"http://hooks.example.test:{hook.port}/in"
    configure_webhook(tenant.id, url=url, events=["message.sent"], active=True, allow_private=True)
    db.session.commit()
    hook.secret = current_secret(db.session.get(Client, tenant.id))
    record_event(tenant.id, "message.sent", {"id": 1})
    db.session.commit()
    assert [o.status for o in deliver_due(utcnow())] == ["succeeded"]
    [received] = hook.received
    assert received.headers["Host"] == f"hooks.example.test:{hook.port}" and received.path == "/in"
    assert received.verified
    assert looked_up == ["hooks.example.test", "hooks.example.test"]  # once when saved, once when sent


def test_redirects_are_not_followed(tenant, hook):
    subscribe(tenant, hook)
    with WebhookReceiver() as internal:
        hook.default = Reply(302, headers={"Location": internal.url})
        event = record_event(tenant.id, "message.delivered", {"id": 1})
        db.session.commit()
        [outcome] = deliver_due(utcnow())
        assert internal.count == 0
    assert outcome.status == "failed" and outcome.status_code == 302
    assert "redirects are not followed" in outcome.error and internal.url in outcome.error
    assert len(attempts_of(event.id)) == 2  # a 3xx is a failure like any other: retried later


# ------------------------------------------------------------------------------------------ resend and test


def test_resend_keeps_the_webhook_id(tenant, hook):
    event = subscribed_event(tenant, hook)
    now = utcnow()
    deliver_due(now)
    resend = webhooks_out.resend_event(tenant.id, event.id, now=now)
    again = webhooks_out.resend_event(tenant.id, event.id, now=now)  # a double click
    db.session.commit()
    assert again.id == resend.id and resend.attempt == 2 and resend.trigger == "resend"
    assert run_attempt(resend.id, now).status == "succeeded"
    assert [r.headers["webhook-id"] for r in hook.received] == [event.webhook_id, event.webhook_id]
    assert hook.received[0].body == hook.received[1].body and all(r.verified for r in hook.received)


def test_resend_is_one_attempt_and_works_while_webhooks_are_off(tenant, hook):
    event = subscribed_event(tenant, hook)
    subscribe(tenant, hook, active=False)
    hook.default = Reply(500)
    resend = webhooks_out.resend_event(tenant.id, event.id)
    db.session.commit()
    assert run_attempt(resend.id, utcnow()).status == "failed"
    assert [r.status for r in attempts_of(event.id)] == ["failed"]  # no automatic retry of a manual attempt


def test_resend_of_another_tenants_event_is_refused(tenant, other_tenant, hook):
    event = subscribed_event(tenant, hook)
    assert webhooks_out.resend_event(other_tenant.id, event.id) is None
    assert attempts_of(event.id) == []


def test_a_test_event_is_one_signed_delivery(tenant, hook):
    subscribe(tenant, hook, active=False)
    now = utcnow()
    delivery = webhooks_out.create_test_event(tenant.id, now=now)
    assert webhooks_out.create_test_event(tenant.id, now=now).id == delivery.id  # double click
    db.session.commit()
    assert run_attempt(delivery.id, now).status == "succeeded"
    [received] = hook.received
    assert received.verified and received.json["type"] == "webhook.test"
    assert deliver_due(now + timedelta(minutes=1)) == []  # the dispatcher does not send it again
    assert webhooks_out.create_test_event(tenant.id, now=now).id != delivery.id


def test_the_log_is_per_tenant_newest_first_with_keyset_pages(tenant, other_tenant, hook):
    subscribe(tenant, hook)
    for number in range(5):
        record_event(tenant.id, "message.delivered", {"id": number})
    foreign = webhooks_out.create_test_event(other_tenant.id)
    db.session.commit()
    webhooks_out.dispatch_new_events()
    db.session.commit()
    first, before = webhooks_out.delivery_log(tenant.id, limit=3)
    second, after = webhooks_out.delivery_log(tenant.id, before=before, limit=3)
    ids = [row.id for row in first + second]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True) and foreign.id not in ids
    assert after is None


def test_a_successful_resend_cancels_the_pending_retry(tenant, hook):
    hook.replies = [Reply(500)]
    event = subscribed_event(tenant, hook)
    now = utcnow()
    deliver_due(now)
    resend = webhooks_out.resend_event(tenant.id, event.id, now=now)
    db.session.commit()
    assert run_attempt(resend.id, now).status == "succeeded"
    assert [(r.attempt, r.trigger, r.status) for r in attempts_of(event.id)] == [
        (1, "auto", "failed"),
        (2, "auto", "cancelled"),
        (3, "resend", "succeeded"),
    ]
    assert attempts_of(event.id)[1].error == "Delivered by attempt 3."
    assert deliver_due(now + timedelta(hours=1)) == [] and hook.count == 2


def test_a_410_to_a_test_event_while_webhooks_are_off_tells_nobody(tenant, hook):
    subscribe(tenant, hook, active=False)
    hook.default = Reply(410)
    delivery = webhooks_out.create_test_event(tenant.id)
    db.session.commit()
    assert run_attempt(delivery.id, utcnow()).gone
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0
