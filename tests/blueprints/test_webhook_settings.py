"""Settings > Webhooks: save the endpoint (bad input re-rendered with 422), the secret, a test event, the delivery
log with keyset pages, resend, CSRF and tenant isolation."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Client, WebhookDelivery
from bulkapp.services.notifications.events import record_event
from bulkapp.services.tenant_webhooks import delivery as webhooks_out
from bulkapp.services.tenant_webhooks.settings import configure_webhook, current_secret, signing_secrets
from tests.simulators.webhook_receiver import Reply, WebhookReceiver

HX = {"HX-Request": "true"}


@pytest.fixture
def strict_urls(app, work_app, monkeypatch):
    """Production rules (tests allow loopback targets by default, as development does)."""
    for flask_app in (app, work_app):
        monkeypatch.setitem(flask_app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", False)


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


def saved(tenant) -> Client:
    db.session.expire_all()
    return db.session.get(Client, tenant.id)


def setup_endpoint(tenant, receiver, events=("message.delivered",), active=True) -> str:
    configure_webhook(tenant.id, url=receiver.url, events=list(events), active=active, allow_private=True)
    db.session.commit()
    receiver.secret = current_secret(saved(tenant))
    return receiver.secret


def test_the_settings_overview_links_to_webhooks(login, user):
    page = login(user).get("/settings/").get_data(as_text=True)
    assert 'href="/settings/webhooks"' in page


def test_the_page_shows_the_form_and_an_empty_log(login, user):
    response = login(user).get("/settings/webhooks")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for root in ('id="webhook-form"', 'id="webhook-secret"', 'id="webhook-test"', 'id="webhook-log"'):
        assert root in page
    assert "message.delivered" in page and "wallet.low_balance" in page
    assert "No deliveries yet" in page and "A secret is created when you save a URL" in page


def test_saving_the_endpoint_creates_a_secret(login, user, tenant, hook):
    client = login(user)
    response = client.post(
        "/settings/webhooks",
        data={"url": hook.url, "events": ["message.delivered", "wallet.topup"], "active": "y"},
        headers=HX,
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    assert body.lstrip().startswith('<section id="webhook-form"') and "Saved." in body
    assert 'id="webhook-secret" class="card" hx-swap-oob="true"' in body  # the secret card appears too
    row = saved(tenant)
    assert (row.webhook_url, row.webhook_events, row.webhook_active) == (
        hook.url,
        ["message.delivered", "wallet.topup"],
        True,
    )
    secret = current_secret(row)
    assert secret.startswith("whsec_") and secret not in body  # hidden until revealed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "http://127.0.0.1:9/hooks", "events": ["message.sent"]}, "must start with https://"),
        ({"url": "https://127.0.0.1/hooks", "events": ["message.sent"]}, "127.0.0.1 is a loopback address"),
        ({"url": "https://localhost/hooks", "events": ["message.sent"]}, "localhost points to a loopback address"),
        ({"url": "https://169.254.169.254/", "events": ["message.sent"]}, "link-local address"),
        ({"url": "https://10.0.0.1/", "events": ["message.sent"]}, "private address"),
        ({"url": "https://8.8.8.8/" + "x" * 600, "events": []}, "too long"),
        ({"url": "https://8.8.8.8/", "events": ["message.exploded"]}, "not a valid choice"),
        ({"url": "", "events": ["message.sent"], "active": "y"}, "Add a URL before turning webhooks on."),
        ({"url": "https://8.8.8.8/", "events": [], "active": "y"}, "Choose at least one event to receive."),
    ],
)
def test_bad_input_is_re_rendered_with_422_and_nothing_saved(login, user, tenant, data, message, strict_urls):
    response = login(user).post("/settings/webhooks", data=data, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert body.lstrip().startswith('<section id="webhook-form"')
    assert message in body.replace("&#39;", "'")
    row = saved(tenant)
    assert row.webhook_url is None and row.webhook_active is False and row.webhook_secret is None


def test_a_plain_form_post_with_an_error_gets_the_whole_page(login, user, strict_urls):
    response = login(user).post("/settings/webhooks", data={"url": "https://127.0.0.1/", "events": []})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page and "loopback address" in page


def test_saving_without_the_csrf_token_is_refused(login, user, tenant, hook):
    response = login(user).post(
        "/settings/webhooks", data={"url": hook.url, "events": ["message.sent"], "active": "y"}, csrf=False
    )
    assert response.status_code == 400
    assert saved(tenant).webhook_url is None


def test_the_secret_is_revealed_on_request_and_never_cached(login, user, tenant, hook):
    secret = setup_endpoint(tenant, hook)
    client = login(user)
    assert secret not in client.get("/settings/webhooks").get_data(as_text=True)
    response = client.get("/settings/webhooks/secret", headers=HX)
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="webhook-secret"') and secret in body
    assert response.headers["Cache-Control"] == "no-store"


def test_rotating_the_secret_shows_the_new_one_and_keeps_the_old_signing_for_a_day(login, user, tenant, hook):
    old = setup_endpoint(tenant, hook)
    response = login(user).post("/settings/webhooks/secret/rotate", headers=HX)
    body = response.get_data(as_text=True)
    new = current_secret(saved(tenant))
    assert new != old and new in body and old not in body and "24 hours" in body
    assert signing_secrets(saved(tenant)) == [new, old]
    assert login(user).post("/settings/webhooks/secret/rotate", csrf=False).status_code == 400
    assert current_secret(saved(tenant)) == new


def test_send_test_event_delivers_it_signed_and_shows_the_result(login, user, tenant, hook):
    setup_endpoint(tenant, hook, active=False)
    response = login(user).post("/settings/webhooks/test", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="webhook-test"')
    assert "Delivered" in body and "answered 200" in body
    assert "webhook-log-changed" in response.headers["HX-Trigger"]
    assert 'hx-trigger="every 2s"' not in body  # finished: no polling
    [received] = hook.received
    assert received.verified and received.json["type"] == "webhook.test"
    log = login(user).get("/settings/webhooks/deliveries", headers=HX).get_data(as_text=True)
    assert log.lstrip().startswith('<section id="webhook-log"')
    assert "webhook.test" in log and received.headers["webhook-id"] in log and ">200<" in log


def test_a_failed_test_event_says_why(login, user, tenant, hook):
    setup_endpoint(tenant, hook)
    hook.default = Reply(500, b"boom")
    body = login(user).post("/settings/webhooks/test", headers=HX).get_data(as_text=True)
    assert "Not delivered" in body and "The endpoint answered 500." in body and "boom" in body
    [row] = db.session.scalars(sa.select(WebhookDelivery)).all()
    assert row.status == "failed" and row.next_attempt_at is None  # a test is one attempt


def test_send_test_event_needs_a_url(login, user):
    response = login(user).post("/settings/webhooks/test", headers=HX)
    assert response.status_code == 422 and "Save a URL first" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 0


def test_a_running_delivery_polls_until_it_is_done(login, user, tenant, hook):
    setup_endpoint(tenant, hook)
    delivery = webhooks_out.create_test_event(tenant.id)
    db.session.commit()
    client = login(user)
    running = client.get(f"/settings/webhooks/deliveries/{delivery.id}", headers=HX)
    assert 'hx-trigger="every 2s"' in running.get_data(as_text=True) and "Sending" in running.get_data(as_text=True)
    assert "HX-Trigger" not in running.headers
    log = client.get("/settings/webhooks/deliveries", headers=HX).get_data(as_text=True)
    assert "every 2s" in log  # the log polls while an attempt is about to be made
    from bulkapp.jobs.webhooks import deliver_webhook

    deliver_webhook(delivery.id)
    done = client.get(f"/settings/webhooks/deliveries/{delivery.id}", headers=HX)
    assert "every 2s" not in done.get_data(as_text=True) and "Delivered" in done.get_data(as_text=True)
    assert "webhook-log-changed" in done.headers["HX-Trigger"]
    assert "every 2s" not in client.get("/settings/webhooks/deliveries", headers=HX).get_data(as_text=True)


def test_resend_keeps_the_webhook_id(login, user, tenant, hook):
    setup_endpoint(tenant, hook)
    event = record_event(tenant.id, "message.delivered", {"id": 5})
    db.session.commit()
    from bulkapp.jobs.webhooks import dispatch_webhooks

    dispatch_webhooks()
    response = login(user).post(f"/settings/webhooks/events/{event.id}/resend", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="webhook-log"')
    assert "attempt 2 uses the same webhook-id" in body
    assert [r.headers["webhook-id"] for r in hook.received] == [event.webhook_id, event.webhook_id]
    assert all(r.verified for r in hook.received)
    assert len(re.findall(r">Resend</button>", body)) == 1  # one button per event


def test_resend_needs_a_url_and_an_own_event(login, user, tenant, other_tenant, hook):
    event = record_event(tenant.id, "message.delivered", {"id": 5})
    foreign = record_event(other_tenant.id, "message.delivered", {"id": 6})
    db.session.commit()
    client = login(user)
    response = client.post(f"/settings/webhooks/events/{event.id}/resend", headers=HX)
    assert response.status_code == 422 and "Save a URL first" in response.get_data(as_text=True)
    setup_endpoint(tenant, hook)
    assert client.post(f"/settings/webhooks/events/{foreign.id}/resend").status_code == 404
    assert client.post("/settings/webhooks/events/999999/resend").status_code == 404
    assert client.post(f"/settings/webhooks/events/{event.id}/resend", csrf=False).status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 0
    assert hook.count == 0


def test_another_tenants_delivery_is_not_found(login, user, other_tenant, hook):
    setup_endpoint(other_tenant, hook)
    delivery = webhooks_out.create_test_event(other_tenant.id)
    db.session.commit()
    assert login(user).get(f"/settings/webhooks/deliveries/{delivery.id}").status_code == 404


def test_the_log_pages_by_keyset(login, user, tenant, other_tenant, hook):
    setup_endpoint(tenant, hook, events=("message.sent",), active=True)
    for number in range(25):
        record_event(tenant.id, "message.sent", {"id": number})
    record_event(other_tenant.id, "message.sent", {"id": 99})
    db.session.commit()
    webhooks_out.dispatch_new_events()
    db.session.commit()
    client = login(user)
    first = client.get("/settings/webhooks/deliveries", headers=HX).get_data(as_text=True)
    assert first.count("<tr>") == 21  # header + 20 rows
    before = re.search(r"/settings/webhooks/deliveries\?before=(\d+)", first).group(1)
    second = client.get(f"/settings/webhooks/deliveries?before={before}", headers=HX).get_data(as_text=True)
    assert second.count("<tr>") == 6 and "Newest" in second and "Older" not in second
    assert client.get("/settings/webhooks/deliveries?before=junk", headers=HX).status_code == 200


def test_signed_out_visitors_go_to_the_login(client):
    response = client.get("/settings/webhooks")
    assert response.status_code == 302 and "/login" in response.location
    assert client.post("/settings/webhooks/test", headers=HX).status_code == 401
