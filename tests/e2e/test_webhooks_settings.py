"""A tenant sets up a webhook, sends a test event that a real local endpoint verifies, and resends it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in
from tests.simulators.webhook_receiver import WebhookReceiver


@pytest.fixture
def hook(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", True)  # the endpoint listens on loopback
    with WebhookReceiver() as receiver:
        yield receiver


def test_set_up_a_webhook_and_send_a_test_event(page, user, hook):
    sign_in(page, user)
    page.goto("/settings/")
    page.locator("article", has_text="Webhooks").get_by_role("link", name="Open").click()
    expect(page).to_have_url(re.compile(r"/settings/webhooks$"))
    expect(page.get_by_role("button", name="Send test event")).to_be_disabled()

    # A mistake first: the form says what is wrong and keeps the choices.
    page.get_by_label("Endpoint URL").fill("ftp://files.example.com/in")
    page.get_by_role("checkbox", name=re.compile(r"message\.delivered")).check()
    page.get_by_role("checkbox", name=re.compile("Webhooks on")).check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#webhook-form .error")).to_contain_text("starting with https://")
    expect(page.get_by_role("checkbox", name=re.compile(r"message\.delivered"))).to_be_checked()

    page.get_by_label("Endpoint URL").fill(hook.url)
    page.get_by_role("checkbox", name=re.compile(r"wallet\.topup")).check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#webhook-form")).to_contain_text("Saved. Events are on their way to your URL.")

    page.get_by_role("button", name="Reveal").click()
    secret_field = page.locator("#webhook-secret-value")
    expect(secret_field).to_have_value(re.compile(r"^whsec_"))
    hook.secret = secret_field.input_value()

    page.get_by_role("button", name="Send test event").click()
    expect(page.locator("#webhook-test")).to_contain_text("Delivered: your server answered 200")
    log = page.locator("#webhook-log")
    expect(log).to_contain_text("webhook.test")
    [received] = hook.received
    assert received.verified, received.error
    expect(log).to_contain_text(received.headers["webhook-id"])
    screenshot(page, "settings-webhooks")

    log.get_by_role("button", name="Resend").click()
    expect(log).to_contain_text("attempt 2 uses the same webhook-id")
    expect(log.locator("tbody tr")).to_have_count(2)
    assert [r.headers["webhook-id"] for r in hook.received] == [received.headers["webhook-id"]] * 2
    assert all(r.verified for r in hook.received)
    screenshot(page, "settings-webhooks-resent")


def test_webhook_settings_on_a_phone(phone_page, user, hook):
    sign_in(phone_page, user)
    phone_page.goto("/settings/webhooks")
    phone_page.get_by_label("Endpoint URL").fill(hook.url)
    phone_page.get_by_role("checkbox", name=re.compile(r"message\.received")).check()
    phone_page.get_by_role("button", name="Save").click()
    expect(phone_page.locator("#webhook-form")).to_contain_text("Webhooks are off")
    phone_page.get_by_role("button", name="Send test event").click()
    expect(phone_page.locator("#webhook-test")).to_contain_text("Delivered")
    screenshot(phone_page, "settings-webhooks-phone")
