"""A platform admin creates a client, corrects a client's balance with a reason, and is refused a debit
larger than the balance."""

from __future__ import annotations

from decimal import Decimal

from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.models import Client
from tests.conftest import ledger_balance
from tests.e2e.conftest import screenshot, sign_in


def test_an_admin_adjusts_a_clients_balance_with_a_reason(page, admin_user, tenant):
    sign_in(page, admin_user, r"/admin/$")
    page.get_by_role("link", name="Tenant A").click()
    expect(page.get_by_role("heading", name="Tenant A")).to_be_visible()

    form = page.locator("#client-adjust-form")
    form.get_by_label("Credit (add to the balance)").check()
    form.get_by_label("Amount (KSh)").fill("250")
    form.get_by_label("Reason (the client sees it in their history)").fill("Goodwill credit for Tuesday's outage")
    form.get_by_role("button", name="Apply adjustment").click()

    expect(page.locator("#admin-client .alert-success")).to_have_text(
        "Added KSh 250.00. The balance is now KSh 350.00."
    )
    expect(page.locator("#admin-client-balance")).to_have_text("KSh 350.00")
    newest = page.locator("#admin-ledger tbody tr").first
    expect(newest).to_contain_text("Goodwill credit for Tuesday's outage")
    expect(newest).to_contain_text("+250.00")
    expect(newest).to_contain_text("100.00 → 350.00")
    expect(page.locator("#client-adjust-form").get_by_label("Amount (KSh)")).to_have_value("")  # a fresh form

    form = page.locator("#client-adjust-form")
    form.get_by_label("Debit (take off)").check()
    form.get_by_label("Amount (KSh)").fill("1000")
    form.get_by_label("Reason (the client sees it in their history)").fill("Chargeback")
    form.get_by_role("button", name="Apply adjustment").click()
    expect(page.locator("#client-adjust-form")).to_contain_text(
        "The balance is only KSh 350.00, so KSh 1,000.00 cannot be taken off"
    )
    expect(page.locator("#client-adjust-form").get_by_label("Amount (KSh)")).to_have_value("1000")
    expect(page.locator("#admin-client-balance")).to_have_text("KSh 350.00")
    screenshot(page, "admin-client-adjustment")

    db.session.rollback()
    assert db.session.get(Client, tenant.id).balance == Decimal("350.00") == ledger_balance(tenant.id)


def test_an_admin_creates_a_client_and_edits_it(page, admin_user):
    sign_in(page, admin_user, r"/admin/$")
    page.get_by_text("New client").click()
    form = page.locator("#create-client-form")
    form.get_by_label("Business name").fill("Duka la Mama")
    form.get_by_label("Sender id").fill("D")
    form.get_by_label("Opening balance (KSh)").fill("500")
    form.get_by_role("button", name="Create client").click()
    expect(page.locator("#create-client-form")).to_contain_text("A sender id is 3 to 11 letters or digits")
    expect(page.locator("#create-client-form").get_by_label("Business name")).to_have_value("Duka la Mama")
    screenshot(page, "admin-create-client-error")

    page.locator("#create-client-form").get_by_label("Sender id").fill("DUKA_MAMA")
    # An owner made by an admin is confirmed at once: going live needs one.
    page.locator("#create-client-form").get_by_label("Owner's email (optional)").fill("mama@duka.example")
    page.locator("#create-client-form").get_by_label("Owner's first password").fill("mama-duka-2026")
    page.locator("#create-client-form").get_by_role("button", name="Create client").click()
    expect(page.get_by_role("heading", name="Duka la Mama")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Client Duka la Mama created with paybill account BK")
    expect(page.locator("#admin-client-balance")).to_have_text("KSh 500.00")

    edit = page.locator("#client-edit-form")
    edit.get_by_label("Tier").select_option("premium")
    edit.get_by_label("Price per SMS unit (KSh)").fill("0.65")
    edit.get_by_label("Test mode (sandbox provider)").uncheck()
    edit.get_by_role("button", name="Save changes").click()
    expect(page.locator("#admin-client .alert-success")).to_have_text("Saved the account settings of Duka la Mama.")
    facts = page.locator("#admin-client .facts")
    expect(facts).to_contain_text("premium")
    expect(facts).to_contain_text("KSh 0.65")
    expect(facts).to_contain_text("Live")
    screenshot(page, "admin-client-edited")
