"""Settings > Channels in a browser: add an Onfon channel pointed at the simulator, test the connection, sync the
balance, copy the webhook URLs; the form's errors come back in place."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in
from tests.simulators.onfon import OnfonSimulator


@pytest.fixture
def onfon():
    with OnfonSimulator() as sim:
        yield sim


@pytest.fixture(autouse=True)
def private_urls(app, monkeypatch):
    """The simulator listens on loopback, which tenants may only use in development and tests."""
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOW_PRIVATE_URLS", True)


def test_add_onfon_channel_test_connection_and_webhook_urls(page, user, onfon):
    sign_in(page, user)
    page.goto("/settings/")
    card = page.locator("article.card", has=page.get_by_role("heading", name="Channels", exact=True))
    card.get_by_role("link", name="Open").click()
    expect(page.get_by_role("heading", name="Channels", exact=True)).to_be_visible()
    expect(page.locator(".channel", has_text="Sandbox (test mode)")).to_contain_text("In use: test mode")

    page.get_by_role("link", name="Add a channel").click()
    expect(page.get_by_text("Choose a provider to see the settings it needs.")).to_be_visible()
    page.get_by_label("Provider").select_option("onfon")
    expect(page.get_by_label("Access key")).to_be_visible()  # the field set was swapped in
    page.get_by_label("Access key").fill(onfon.access_key)
    page.get_by_label("API key").fill(onfon.api_key)
    page.get_by_label("Client ID").fill(onfon.client_id)
    page.get_by_label("Sender ID (default, promotional)").fill("ACME")
    page.get_by_label("Transactional sender ID").fill("ACME-OTP")
    page.get_by_text("Advanced settings").click()
    page.get_by_label("API base URL").fill(f"{onfon.url}/v1/sms")
    screenshot(page, "channels-add-onfon")
    page.get_by_role("button", name="Save channel").click()

    expect(page).to_have_url(re.compile(r"/settings/channels#channel-\d+$"))
    expect(page.get_by_text("Onfon Media channel added.")).to_be_visible()
    card = page.locator(".channel", has_text="Onfon Media")
    expect(card.locator(".state")).to_have_text("Active")
    expect(card).to_contain_text("ACME-OTP")
    expect(card).to_contain_text("Not tested yet.")

    card.get_by_role("button", name="Test connection").click()
    expect(card.locator(".result-ok")).to_contain_text("Connected to Onfon. Balance: KSh1000.0000")
    card.get_by_role("button", name="Sync balance now").click()
    expect(card).to_contain_text("KSh 1,000.00")

    inbound = card.get_by_label("Incoming SMS URL", exact=True)
    dlr = card.get_by_label("Delivery report (DLR) URL", exact=True)
    expect(inbound).to_have_value(re.compile(r"^http://localhost/webhooks/onfon/inbound\?token=[\w-]{20,}$"))
    expect(dlr).to_have_value(re.compile(r"^http://localhost/webhooks/onfon/dlr\?token=[\w-]{20,}$"))
    card.get_by_role("button", name="Copy Incoming SMS URL").click()
    expect(card.get_by_role("button", name="Copy Incoming SMS URL")).to_have_text("Copied")
    for secret in (onfon.api_key, onfon.access_key):
        assert secret not in page.content()
    screenshot(page, "channels-onfon-connected")

    card.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Edit Onfon Media")).to_be_visible()
    expect(page.get_by_text("Saved - leave blank to keep.")).to_have_count(2)
    expect(page.get_by_label("Access key")).to_have_value("")
    expect(page.get_by_label("Client ID")).to_have_value(onfon.client_id)
    screenshot(page, "channels-edit-onfon")


def test_form_errors_come_back_in_place(page, user):
    sign_in(page, user)
    page.goto("/settings/channels/new")
    page.get_by_label("Provider").select_option("onfon")
    page.get_by_label("Sender ID (default, promotional)").fill("MUCH-TOO-LONG-SENDER")
    page.get_by_role("button", name="Save channel").click()
    expect(page.get_by_text("Access key is required.")).to_be_visible()
    expect(page.get_by_text("A sender ID is up to 11 letters")).to_be_visible()
    expect(page.get_by_label("Sender ID (default, promotional)")).to_have_value("MUCH-TOO-LONG-SENDER")
    expect(page).to_have_url(re.compile(r"/settings/channels/new$"))
    screenshot(page, "channels-form-errors")


def test_channels_page_on_a_phone(phone_page, user, onfon):
    from bulkapp.extensions import db
    from bulkapp.services.channels import settings as channel_settings

    values = {**onfon.credentials, "sender_id": "ACME", "base_url": f"{onfon.url}/v1/sms"}
    channel_settings.create_channel(user.client_id, "onfon", values, allow_private_urls=True)
    db.session.commit()
    sign_in(phone_page, user)
    phone_page.goto("/settings/channels")
    expect(phone_page.get_by_role("heading", name="Onfon Media", exact=True)).to_be_visible()
    expect(phone_page.get_by_label("Incoming SMS URL", exact=True)).to_be_visible()
    screenshot(phone_page, "channels-phone")


@pytest.mark.parametrize("width", [1366, 390])
def test_a_failed_test_connection_says_what_to_do_in_plain_words(browser, live_server, user, width):
    """No "HTTPSConnectionPool… NameResolutionError": a sentence the owner understands, at desk and phone width."""
    import socket

    from bulkapp.extensions import db
    from bulkapp.services.channels import settings as channel_settings

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe is closed
    values = {"access_key": "a", "api_key": "b", "client_id": "c", "sender_id": "ACME"}
    channel_settings.create_channel(
        user.client_id, "onfon", {**values, "base_url": f"http://127.0.0.1:{port}/v1/sms"}, allow_private_urls=True
    )
    db.session.commit()
    context = browser.new_context(base_url=live_server, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        sign_in(page, user)
        page.goto("/settings/channels")
        card = page.locator(".channel", has_text="Onfon Media")
        card.get_by_role("button", name="Test connection").click()
        expect(card.locator(".result-fail")).to_have_text(
            "✗ We could not reach Onfon Media. Check the base URL and try again."
        )
        for raw in ("ConnectionPool", "NewConnectionError", "Errno", "Connection refused"):
            assert raw not in page.content()
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # the sentence wraps, no sideways scroll
        card.scroll_into_view_if_needed()
        screenshot(page, f"channels-test-failed-{width}")
    finally:
        context.close()
