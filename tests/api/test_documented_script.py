"""A customer's script that uses only the documented API over real HTTP: quote, send, poll the status, create a
campaign, read contacts; its webhook receiver verifies every event's signature independently."""

from __future__ import annotations

import time

import pytest
import requests

from bulkapp.jobs.webhooks import dispatch_webhooks
from bulkapp.services.notifications.events import EVENT_TYPES
from tests.simulators.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver(app, work_app, monkeypatch):
    for flask_app in (app, work_app):
        monkeypatch.setitem(flask_app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", True)
    with WebhookReceiver() as hook:
        yield hook


def test_a_script_using_only_the_documented_api(live_server, tenant, receiver):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {tenant.test_api_key}"
    api = f"{live_server}/api/v1"

    document = requests.get(f"{api}/openapi.json", timeout=10).json()
    assert {"/quote", "/messages", "/campaigns", "/contacts", "/webhook"} <= set(document["paths"])

    hook = session.put(
        f"{api}/webhook", json={"url": receiver.url, "events": list(EVENT_TYPES), "active": True}, timeout=10
    )
    assert hook.status_code == 200, hook.text
    receiver.secret = hook.json()["secret"]

    quote = session.post(f"{api}/quote", json={"body": "Your order is ready", "to": ["0712345678"]}, timeout=10).json()
    sent = session.post(
        f"{api}/messages",
        json={"to": "0712345678", "body": "Your order is ready"},
        headers={"Idempotency-Key": "order-42"},
        timeout=10,
    )
    assert sent.status_code == 202 and sent.json()["cost"] == quote["cost"]
    message_id = sent.json()["id"]
    for _ in range(50):
        status = session.get(f"{api}/messages/{message_id}", timeout=10).json()["status"]
        if status in {"delivered", "failed"}:
            break
        time.sleep(0.1)
    assert status == "delivered"

    campaign = session.post(
        f"{api}/campaigns",
        json={
            "name": "Weekend offer",
            "kind": "transactional",
            "body": "Hi {{name}}",
            "to": ["0712345679"],
            "send": True,
        },
        timeout=10,
    )
    assert campaign.status_code == 201, campaign.text
    progress = session.get(f"{api}/campaigns/{campaign.json()['id']}", timeout=10).json()
    assert progress["total_recipients"] == 1 and progress["status"] in {"sending", "sent"}

    contacts = session.get(f"{api}/contacts", timeout=10).json()["data"]
    assert "+254712345678" in {c["contact"] for c in contacts}
    balance = session.get(f"{api}/balance", timeout=10).json()
    assert balance["currency"] == "KES" and balance["balance"].count(".") == 1

    dispatch_webhooks()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not {"message.sent", "message.delivered"} <= _types(receiver):
        time.sleep(0.1)
    assert {"message.sent", "message.delivered"} <= _types(receiver)
    assert receiver.received and all(r.verified for r in receiver.received), [r.error for r in receiver.received]


def _types(receiver) -> set[str]:
    return {r.json["type"] for r in receiver.received}
