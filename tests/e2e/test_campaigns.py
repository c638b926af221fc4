"""A sandbox tenant composes a campaign with a live quote, schedules it, sends it now, watches progress reach
100 % and retries the failed recipient: jobs run on the embedded background worker, as on a first run."""

from __future__ import annotations

import re
from decimal import Decimal

from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.models import Client
from bulkapp.services import wallet
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
    expect(page.locator("#campaign-progress")).to_contain_text("Run 2", timeout=15_000)
    expect(page.get_by_test_id("campaign-percent")).to_have_text("100 %", timeout=30_000)
    expect(page.get_by_test_id("campaign-status")).to_have_text("Sent", timeout=30_000)
    screenshot(page, "campaigns-retried")

    page.get_by_role("link", name="‹ Campaigns").click()
    expect(page.locator("#campaign-list")).to_contain_text("Easter offer")
    screenshot(page, "campaigns-list")
    db.session.rollback()
    assert db.session.get(Client, tenant.id).balance == ledger_balance(tenant.id)
    context.close()
