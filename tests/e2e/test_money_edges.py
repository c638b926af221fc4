"""Money edges in a browser, at 1366 and 390 px: a platform admin credits a paybill payment that was kept
unmatched (once), and the wallet says plainly when M-Pesa is simulated."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.models import Client, UnmatchedPayment, User
from bulkapp.services.billing import paybill
from tests.conftest import ledger_balance
from tests.e2e.conftest import screenshot, sign_in
from tests.simulators.daraja import c2b_payload

WIDTHS = [1366, 390]
SIDEWAYS = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .filter(e => !e.closest('.table-scroll, .table-wrap, .nav'))
  .map(e => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`)"""


def browser_page(browser, live_server, width: int):
    context = browser.new_context(base_url=live_server, viewport={"width": width, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    return context, tab


def kept_payment(account: str = "BK-TYPO", amount: str = "1500.00", trans_id: str = "SKL4QX71ZP") -> None:
    paybill.confirm_c2b(c2b_payload(account, amount, trans_id, TransTime="20261206093000"))
    db.session.commit()


@pytest.mark.parametrize("width", WIDTHS)
def test_an_admin_credits_an_unmatched_payment_once(browser, live_server, admin_user, tenant, width):
    kept_payment()
    kept_payment(tenant.account_number, "10.005", "SKL4QX72ZQ")  # not a usable amount: shown, not creditable
    account = tenant.account_number
    context, page = browser_page(browser, live_server, width)
    sign_in(page, admin_user, r"/admin/$")
    page.get_by_role("link", name="Unmatched M-Pesa payments").click()
    expect(page.get_by_role("heading", name="Unmatched M-Pesa payments")).to_be_visible()
    expect(page.get_by_role("link", name="Waiting (2)")).to_be_visible()
    card = page.locator(".unmatched", has_text="SKL4QX71ZP")
    expect(card).to_contain_text("KSh 1,500.00")
    expect(card).to_contain_text("Wanjiku Kamau")
    expect(card).to_contain_text("No tenant has this account number")
    expect(page.locator(".unmatched", has_text="SKL4QX72ZQ")).to_contain_text("cannot be credited")
    assert page.evaluate(SIDEWAYS) == []
    screenshot(page, f"admin-unmatched-{width}")

    card.get_by_label("Tenant account number").fill("BKNOSUCH")
    card.get_by_label("Why this tenant (kept with the payment)").fill("Payer phoned: typo in the account")
    card.get_by_role("button", name="Credit this payment").click()
    card = page.locator(".unmatched", has_text="SKL4QX71ZP")
    expect(card).to_contain_text("No tenant has this account number.")
    expect(card.get_by_label("Why this tenant (kept with the payment)")).to_have_value(
        "Payer phoned: typo in the account"
    )

    card.get_by_label("Tenant account number").fill(account.lower())
    card.get_by_role("button", name="Credit this payment").click()
    card = page.locator(".unmatched", has_text="SKL4QX71ZP")
    expect(card.locator(".alert-success")).to_have_text(
        f"Credited KSh 1,500.00 to {account}. Their balance is now KSh 1,600.00."
    )
    expect(card).to_contain_text("Tenant A")
    expect(card).to_contain_text("root@platform.example")
    expect(card.get_by_role("button", name="Credit this payment")).to_have_count(0)  # nothing to submit twice
    expect(page.get_by_role("link", name="Waiting (1)")).to_be_visible()
    assert page.evaluate(SIDEWAYS) == []
    screenshot(page, f"admin-unmatched-assigned-{width}")
    context.close()

    db.session.rollback()  # a fresh snapshot: the server committed after this test's last read
    assert db.session.get(Client, tenant.id).balance == Decimal("1600.00") == ledger_balance(tenant.id)
    assert db.session.query(UnmatchedPayment).filter(UnmatchedPayment.assigned_at.is_not(None)).count() == 1


@pytest.mark.parametrize("width", WIDTHS)
def test_the_wallet_says_when_m_pesa_is_simulated(browser, live_server, user, tenant, simulated_mpesa, width):
    from bulkapp.models import WalletTransaction

    db.session.add(
        WalletTransaction(
            client_id=tenant.id,
            type="topup",
            amount=Decimal("500"),
            reference="topup:e2e-sim",
            status="pending",
            checkout_request_id="ws_CO_SIM_e2e",
            simulated=True,
            meta={"simulated": True, "phone": "+254712345678"},
        )
    )
    db.session.commit()
    context, page = browser_page(browser, live_server, width)
    sign_in(page, user)
    page.goto("/wallet/")
    notice = page.locator("#topup-form .simulated-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Simulated M-Pesa: no money moved.")
    expect(page.locator("#history-rows tr").first.locator(".badge.simulated")).to_have_text("Simulated")
    assert page.evaluate(SIDEWAYS) == []
    screenshot(page, f"wallet-simulated-{width}")

    db.session.rollback()  # end this test's read first: SQLite lets one writer in at a time
    db.session.get(User, user.id).language = "sw"  # the reader's language comes from the profile
    db.session.commit()
    page.reload()
    expect(page.locator("#topup-form .simulated-notice")).to_contain_text(
        "M-Pesa ya majaribio: hakuna pesa iliyohamishwa."
    )
    expect(page.locator("#history-rows tr").first.locator(".badge.simulated")).to_have_text("Majaribio")
    context.close()


@pytest.mark.parametrize("width", [390])
def test_without_m_pesa_the_wallet_says_top_ups_are_not_set_up(browser, live_server, user, app, monkeypatch, width):
    for key, value in {"MPESA_ENV": "sandbox", "MPESA_CONSUMER_KEY": None, "MPESA_CONSUMER_SECRET": None}.items():
        monkeypatch.setitem(app.config, key, value)
    context, page = browser_page(browser, live_server, width)
    sign_in(page, user)
    page.goto("/wallet/")
    expect(page.locator("#topup-form")).to_contain_text("M-Pesa top-ups are not set up on this installation yet.")
    expect(page.locator("#topup-form").get_by_role("button", name="Send payment prompt")).to_be_disabled()
    expect(page.locator(".simulated-notice")).to_have_count(0)
    screenshot(page, f"wallet-not-set-up-{width}")
    context.close()
