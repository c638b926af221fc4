"""A tenant tops up by M-Pesa (the simulated M-Pesa on the embedded worker) and reads the history."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.models import Client
from bulkapp.services.billing import wallet
from tests.conftest import ledger_balance
from tests.e2e.conftest import screenshot, sign_in


@pytest.fixture
def mpesa_on_the_embedded_worker(app, monkeypatch):
    """As on a newcomer's machine (`make run`): MPESA_ENV=simulated, so the simulated M-Pesa answers; jobs run
    on the in-process worker thread, and the "customer" takes a few seconds to enter the PIN."""
    backend = app.extensions["bulkapp_jobs"]
    monkeypatch.setattr(backend, "mode", "thread")
    for key, value in {"MPESA_ENV": "simulated", "MPESA_CONSUMER_KEY": None, "MPESA_CONSUMER_SECRET": None,
                       "MPESA_SIMULATED_DELAY_SECONDS": 3}.items():  # fmt: skip
        monkeypatch.setitem(app.config, key, value)
    yield backend
    backend._local.join()  # nothing of this test may still be running when the tables are cleaned


def test_a_tenant_tops_up_500_and_sees_the_row_and_the_badge_change(page, user, mpesa_on_the_embedded_worker):
    sign_in(page, user)
    page.get_by_role("link", name="Wallet").click()
    expect(page).to_have_url(re.compile(r"/wallet/$"))
    expect(page.locator("#balance-badge")).to_contain_text("KSh 100.00")
    expect(page.locator("#wallet-balance")).to_contain_text("125 SMS units at KSh 0.80 per unit")

    form = page.locator("#topup-form")
    form.get_by_label("M-Pesa phone number").fill("0712 345 678")
    form.get_by_role("button", name="KSh 500", exact=True).click()
    expect(page.locator("#topup-form").get_by_label("Amount (KSh)")).to_have_value("500")
    expect(page.locator("#topup-form").get_by_label("M-Pesa phone number")).to_have_value("0712 345 678")
    page.locator("#topup-form").get_by_role("button", name="Send payment prompt").click()

    row = page.locator("#history-rows tr").first
    expect(row).to_contain_text("Pending")
    expect(row).to_contain_text("Check +254712345678 and enter your M-Pesa PIN to pay KSh 500.00")
    expect(page.locator("#topup-status .alert-info")).to_contain_text("Check +254712345678")
    expect(page.locator("#balance-badge")).to_contain_text("KSh 100.00")  # nothing credited yet
    screenshot(page, "wallet-topup-pending")

    expect(row).to_contain_text("Completed", timeout=15_000)
    expect(row).to_contain_text("KSh 500.00 was added to your wallet. M-Pesa receipt SIM")
    expect(row).to_contain_text("+500.00")
    expect(row).to_contain_text("100.00 → 600.00")
    expect(page.locator("#balance-badge")).to_contain_text("KSh 600.00")
    expect(page.locator("#wallet-balance")).to_contain_text("750 SMS units")
    expect(page.locator("#notification-bell .count")).to_have_text("1")
    expect(page.locator("#topup-status .alert-success")).to_contain_text("KSh 500.00 was added to your wallet.")
    page.wait_for_timeout(2_500)  # one more polling period: the finished row has stopped polling
    expect(row).not_to_have_attribute("hx-trigger", re.compile("every"))
    screenshot(page, "wallet-topup-completed")

    db.session.rollback()  # a fresh snapshot: the worker thread committed after this test's last read
    assert db.session.get(Client, user.client_id).balance == Decimal("600.00") == ledger_balance(user.client_id)


def test_a_bad_amount_keeps_the_form_and_says_why(page, user, mpesa_on_the_embedded_worker):
    sign_in(page, user)
    page.goto("/wallet/")
    form = page.locator("#topup-form")
    form.get_by_label("M-Pesa phone number").fill("0712 345 678")
    form.get_by_label("Amount (KSh)").fill("12.50")
    form.get_by_role("button", name="Send payment prompt").click()
    expect(page.locator("#topup-form")).to_contain_text("Enter the amount in whole shillings, for example 500.")
    expect(page.locator("#topup-form").get_by_label("Amount (KSh)")).to_have_value("12.50")
    expect(page.locator("#topup-form").get_by_label("M-Pesa phone number")).to_have_value("0712 345 678")
    expect(page.locator("#history-rows tr")).to_have_count(1)  # only the opening balance
    screenshot(page, "wallet-topup-error")


def test_history_filters_pages_alert_level_and_export(page, user):
    for n in range(30):
        wallet.debit(user.client_id, "0.875", reference=f"e2e:{n}", description=f"SMS campaign batch {n}")
    wallet.adjust(user.client_id, "40", reason="Goodwill credit", actor_id=1, reference="e2e:adj")
    db.session.commit()
    sign_in(page, user)
    page.goto("/wallet/")
    rows = page.locator("#history-rows tr")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text("Goodwill credit")

    page.get_by_role("link", name="Older →").click()
    expect(rows).to_have_count(7)
    expect(rows.last).to_contain_text("Opening balance")
    page.get_by_role("link", name="← Newest").click()
    expect(rows).to_have_count(25)

    history = page.locator("#wallet-history")
    history.get_by_label("Type").select_option("adjustment")
    history.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    expect(page.locator("#wallet-history").get_by_label("Type")).to_have_value("adjustment")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = download.value.path().read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("id,date,type,status,amount_ksh")
    assert len(text.splitlines()) == 3 and ",adjustment,completed,40.00," in text

    alert = page.locator("#low-balance-form")
    alert.get_by_label("Alert me when my balance falls below (KSh)").fill("250")
    alert.get_by_role("button", name="Save").click()
    expect(page.locator("#low-balance-form")).to_contain_text("Saved. We will alert you below KSh 250.00.")
    screenshot(page, "wallet-history-filtered")


def test_the_wallet_on_a_phone(phone_page, user):
    wallet.debit(user.client_id, "1.60", reference="e2e:phone", description="SMS to +254712345678")
    db.session.commit()
    sign_in(phone_page, user)
    phone_page.goto("/wallet/")
    expect(phone_page.locator("#wallet-balance")).to_contain_text("KSh 98.40")
    expect(phone_page.locator("#topup-form")).to_be_visible()
    wide = phone_page.evaluate(
        """() => [...document.querySelectorAll('body *')]
              .filter(e => e.getBoundingClientRect().right > 376 && !e.closest('.table-scroll, .nav'))
              .map(e => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`)"""
    )
    assert not wide, f"the page scrolls sideways: {wide}"
    screenshot(phone_page, "wallet-phone")
