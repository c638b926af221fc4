"""GET/PUT /webhook: the endpoint, its events and the whsec_ signing secret."""

from __future__ import annotations

import pytest

from bulkapp.extensions import db
from bulkapp.models import Client
from tests.api.conftest import assert_error


@pytest.fixture
def allow_private(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", True)


@pytest.fixture
def strict_urls(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", False)


def test_unconfigured_webhook(api):
    assert api.get("/webhook").get_json() == {"url": None, "events": [], "active": False, "secret": None}


def test_put_saves_and_creates_a_secret(api, tenant, allow_private):
    response = api.put(
        "/webhook",
        json={"url": "http://127.0.0.1:9/hook", "events": ["message.failed", "message.delivered"], "active": True},
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["url"] == "http://127.0.0.1:9/hook" and body["active"] is True
    assert body["events"] == ["message.delivered", "message.failed"]
    assert body["secret"].startswith("whsec_")
    assert api.get("/webhook").get_json() == body
    client = db.session.get(Client, tenant.id)
    assert client.webhook_active and body["secret"] not in (client.webhook_secret or "")  # encrypted at rest


def test_fields_left_out_keep_their_value(api, allow_private):
    api.put("/webhook", json={"url": "http://127.0.0.1:9/hook", "events": ["message.sent"], "active": True})
    body = api.put("/webhook", json={"active": False}).get_json()
    assert body["url"] == "http://127.0.0.1:9/hook" and body["events"] == ["message.sent"] and body["active"] is False


def test_private_targets_are_refused_without_the_flag(api, tenant, strict_urls):
    assert_error(
        api.put("/webhook", json={"url": "http://127.0.0.1/hook", "events": ["message.sent"]}), 422, "invalid_url"
    )
    assert db.session.get(Client, tenant.id).webhook_url is None


@pytest.mark.parametrize(
    "payload, code",
    [
        ({"url": 5}, "invalid_url"),
        ({"url": "not a url"}, "invalid_url"),
        ({"events": "message.sent"}, "invalid_events"),
        ({"events": ["message.exploded"]}, "invalid_events"),
        ({"active": "yes"}, "invalid_active"),
        ({"active": True}, "invalid_url"),
    ],
)
def test_bad_settings_are_422(api, payload, code, allow_private):
    assert_error(api.put("/webhook", json=payload), 422, code)


def test_another_tenant_sees_only_its_own(api, other_api, allow_private):
    api.put("/webhook", json={"url": "http://127.0.0.1:9/a", "events": ["message.sent"], "active": True})
    assert other_api.get("/webhook").get_json()["url"] is None
