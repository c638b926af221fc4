"""A sandbox tenant composes a campaign with a live quote, schedules it, sends it now, watches progress reach
100 % and retries the failed recipient: jobs run on the embedded background worker, as on a first run."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.models import Client, Template
from bulkapp.services.billing import wallet
from tests.conftest import ledger_balance
from tests.e2e.conftest import screenshot
from tests.e2e.test_send_message import embedded_server, open_as  # noqa: F401 - the fixture is used below


def test_compose_schedule_send_watch_and_retry(browser, embedded_server, tenant, user):  # noqa: F811
    client = db.session.get(Client, tenant.id)
    client.settings = {"promotional_hours": {"start": "00:00", "end": "24:00"}}  # independent of the clock
    wallet.credit(tenant.id, Decimal("400.00"), reference="e2e-campaign-topup")
    db.session.commit()
    context, page = open_as(browser, embedded_server, user)

    page.get_by_role("link", name="Campaigns").click()
    expect(page.get_by_text("No campaigns yet")).to_be_visible()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Campaign name").fill("Easter offer")
    page.get_by_label("Message").fill("Habari {{name}}! 20% off all shoes this Easter weekend at our Westlands shop.")
    page.get_by_label("Paste numbers").fill("0711 000 055\n0711000155\n0700000201\n0711000055\n12345")
    quote = page.locator("#campaign-quote")
    expect(quote.get_by_test_id("quote-recipients")).to_have_text("3")
    expect(quote).to_contain_text("1 invalid")
    expect(quote).to_contain_text("1 duplicates removed")
    expect(quote).to_contain_text("STOP*456*9*5#")
    expect(quote.get_by_test_id("quote-cost")).to_have_text("KSh 2.40")  # 3 recipients x 1 segment x 0.80
    expect(quote).to_contain_text("12345")
    screenshot(page, "campaigns-compose")

    page.get_by_label("Send at").fill("2099-06-01T09:30")
    page.get_by_role("button", name="Schedule").click()
    expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    expect(page.get_by_test_id("campaign-status")).to_have_text("Scheduled")
    expect(page.locator("#campaign-progress")).to_contain_text("01 Jun 2099, 09:30")
    screenshot(page, "campaigns-scheduled")

    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_test_id("campaign-percent")).to_have_text("100 %", timeout=30_000)
    expect(page.get_by_test_id("campaign-status")).to_have_text("Sent", timeout=30_000)
    progress = page.locator("#campaign-progress")
    expect(progress.locator("dd").nth(2)).to_have_text("2", timeout=30_000)  # delivered
    expect(progress.locator("dd").nth(3)).to_have_text("1")  # failed
    screenshot(page, "campaigns-progress-done")

    page.get_by_role("link", name="Failed").click()
    table = page.locator("#campaign-recipients")
    expect(table).to_contain_text("+254700000201")
    expect(table).not_to_contain_text("+254711000055")

    page.get_by_role("button", name="Retry 1 failed").click()
    confirm = page.get_by_test_id("retry-quote")
    expect(confirm).to_contain_text("Retry 1 recipient?")
    confirm.get_by_role("button", name="Confirm and pay KSh 0.80").click()
    expect(page.locator("#campaign-progress")).to_contain_text("Run 2", timeout=15_000)
    expect(page.get_by_test_id("campaign-percent")).to_have_text("100 %", timeout=30_000)
    expect(page.get_by_test_id("campaign-status")).to_have_text("Sent", timeout=30_000)
    # Issue 13 item 1: each recipient once, by their latest run (not "Delivered 0 · Failed 1" of run 2 alone).
    expect(page.get_by_test_id("count-delivered")).to_have_text("2", timeout=30_000)
    expect(page.get_by_test_id("count-failed")).to_have_text("1")
    expect(page.get_by_test_id("campaign-runs")).to_contain_text("Retry 1")
    screenshot(page, "campaigns-retried")

    page.get_by_role("link", name="‹ Campaigns").click()
    expect(page.locator("#campaign-list")).to_contain_text("Easter offer")
    screenshot(page, "campaigns-list")
    db.session.rollback()
    assert db.session.get(Client, tenant.id).balance == ledger_balance(tenant.id)
    context.close()


@pytest.mark.parametrize("width", [1366, 390])
def test_template_fills_the_box_and_retry_is_confirmed_with_the_run_history(
    browser,
    embedded_server,  # noqa: F811
    tenant,
    user,
    width,
):
    """Issue 13 items 1 and 2 at desktop and phone widths: choosing a template copies its text into the message
    box (edited there), the campaign page shows the text as sent, Retry shows its quote and asks first, and the
    summary counts each recipient once with the runs listed."""
    client = db.session.get(Client, tenant.id)
    client.settings = {"promotional_hours": {"start": "00:00", "end": "24:00"}}
    wallet.credit(tenant.id, Decimal("400.00"), reference=f"e2e-template-topup-{width}")
    db.session.add(Template(client_id=tenant.id, name="Easter", content="Happy Easter {{name}}!", variables=[]))
    db.session.commit()
    context, page = open_as(browser, embedded_server, user, width=width, height=900)
    page.goto("/campaigns/new")
    page.get_by_label("Campaign name").fill("From a template")
    box = page.get_by_label("Message")
    box.fill("Something I typed")
    page.once("dialog", lambda dialog: dialog.dismiss())  # keep what I typed
    page.get_by_label("Template").select_option(label="Easter")
    expect(box).to_have_value("Something I typed")
    expect(page.get_by_label("Template")).to_have_value("")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_label("Template").select_option(label="Easter")
    expect(box).to_have_value("Happy Easter {{name}}!")
    box.press("End")
    box.type(" Karibu Westlands.")
    page.get_by_label("Paste numbers").fill("0711000055\n0700000201")
    expect(page.locator("#campaign-quote").get_by_test_id("quote-recipients")).to_have_text("2")
    expect(page.locator("#campaign-quote")).to_contain_text("Karibu Westlands.")
    screenshot(page, f"campaigns-template-filled-{width}")
    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Sent", timeout=30_000)
    expect(page.get_by_test_id("campaign-text")).to_have_text("Happy Easter {{name}}! Karibu Westlands.")

    page.get_by_role("button", name="Retry 1 failed").click()
    confirm = page.get_by_test_id("retry-quote")
    expect(confirm).to_contain_text("Retry 1 recipient?")
    expect(confirm).to_contain_text("It costs KSh 0.80")
    screenshot(page, f"campaigns-retry-confirm-{width}")
    confirm.get_by_role("button", name="Not now").click()
    expect(page.get_by_test_id("retry-quote")).to_have_count(0)
    page.get_by_role("button", name="Retry 1 failed").click()
    page.get_by_test_id("retry-quote").get_by_role("button", name="Confirm and pay KSh 0.80").click()
    expect(page.get_by_test_id("campaign-runs")).to_contain_text("Retry 1", timeout=30_000)
    expect(page.get_by_test_id("campaign-status")).to_have_text("Sent", timeout=30_000)
    expect(page.get_by_test_id("count-failed")).to_have_text("1")
    expect(page.get_by_test_id("count-delivered")).to_have_text("1", timeout=30_000)
    fits = page.evaluate("document.querySelector('#campaign-progress').scrollWidth <= window.innerWidth")
    assert fits, "the progress card overflows the screen"
    screenshot(page, f"campaigns-runs-{width}")
    db.session.rollback()
    assert db.session.get(Client, tenant.id).balance == ledger_balance(tenant.id)
    context.close()
