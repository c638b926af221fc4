"""A developer follows Settings > API to the API documentation; an admin reads platform figures and a
client's channels and campaigns."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.models import Campaign
from bulkapp.services.messaging.compose import send_message
from tests.conftest import PASSWORD
from tests.e2e.conftest import screenshot, sign_in


def test_the_api_docs_are_linked_from_settings(page, tenant):
    page.goto("/login")
    page.get_by_label("Email").fill(tenant.test_user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/login"))
    page.goto("/settings/api")
    page.get_by_role("link", name="Read the API documentation").click()
    expect(page).to_have_url(re.compile(r"/api/v1/docs$"))
    expect(page.get_by_role("heading", name="Bulkapp REST API v1")).to_be_visible()
    page.locator('.apidocs-toc a[href="#sendMessage"]').click()
    expect(page.locator("#sendMessage")).to_contain_text("Idempotency-Key")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "api_docs")


def test_the_docs_page_reads_well_on_a_phone(phone_page):
    phone_page.goto("/api/v1/docs")
    expect(phone_page.locator("#quote")).to_contain_text("append_reply_link")
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing wider than the phone
    screenshot(phone_page, "api_docs_phone")


def test_an_admin_sees_platform_figures_and_a_clients_activity(page, admin_user, tenant, other_tenant):
    for number in ("0712345601", "0712345603"):
        send_message(tenant.id, to=number, body="Hello from A")
    send_message(other_tenant.id, to="0712345605", body="Hello from B")
    db.session.add(Campaign(client_id=tenant.id, name="Easter promo", message="Hi", channel="sms", recipients=[]))
    db.session.commit()
    sign_in(page, admin_user, r"/admin/$")
    platform = page.locator("#admin-platform")
    expect(platform).to_contain_text("Messages sent")
    expect(platform.locator("svg.chart rect.bar").first).to_be_visible()
    screenshot(page, "admin_platform")
    page.get_by_role("link", name="Tenant A").click()
    expect(page.locator("#admin-client-channels")).to_contain_text("sandbox")
    expect(page.locator("#admin-client-campaigns")).to_contain_text("Easter promo")
    screenshot(page, "admin_client_activity")
