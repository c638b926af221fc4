"""The owner reads the audit log in a browser: their own sign-in is there, a filter narrows it, and the page fits a
phone (screenshots at 1366 and 390 px); a platform admin reads every tenant's."""

import re
from pathlib import Path

from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.services.accounts import audit
from tests.e2e.conftest import screenshot, sign_in


def test_owner_reads_and_filters_the_log(page, user, tenant, other_tenant):
    audit.record(
        "channel.updated",
        client_id=tenant.id,
        actor="manager@a.example",
        target=("channels", 3),
        details={"before": {"config": {"sender_id": "ACME"}}, "after": {"config": {"sender_id": "ACME-NEW"}}},
        ip="41.90.64.10",
    )
    audit.record("ledger.exported", client_id=other_tenant.id, actor="owner@b.example")
    db.session.commit()
    page.goto("/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill("not-my-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Wrong email or password.")).to_be_visible()
    sign_in(page, user)

    page.goto("/settings")
    page.locator("article", has=page.get_by_role("heading", name="Audit log")).get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/settings/audit$"))
    log = page.locator("#audit-log")
    for action in ("auth.sign_in", "auth.sign_in_failed", "channel.updated"):
        expect(log.locator("tbody code", has_text=re.compile(rf"^{re.escape(action)}$"))).to_have_count(1)
    expect(log).not_to_contain_text("owner@b.example")  # another tenant's event
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"audit-log-{width}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.set_viewport_size({"width": 1280, "height": 860})

    log.get_by_label("Action").select_option("channel.updated")
    log.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=channel\.updated"))
    rows = page.locator("#audit-log tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("manager@a.example")
    expect(rows.first).to_contain_text("ACME-NEW")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert "channel.updated" in text and "auth.sign_in" not in text


def test_platform_admin_reads_every_tenant(page, admin_user, tenant, other_tenant):
    audit.record("ledger.exported", client_id=other_tenant.id, actor="owner@b.example")
    audit.record("contacts.exported", client_id=tenant.id, actor="owner@a.example")
    db.session.commit()
    sign_in(page, admin_user, lands_on=r"/admin/?$")
    page.get_by_role("link", name="Audit log").click()
    log = page.locator("#audit-log")
    expect(log).to_contain_text("owner@b.example")
    expect(log).to_contain_text("owner@a.example")
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"admin-audit-log-{width}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
