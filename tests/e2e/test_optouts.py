"""A tenant sees who replied STOP, adds and removes numbers, searches, exports and edits the keywords."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.models import Client
from bulkapp.providers.base import InboundMessage
from bulkapp.services.compliance import optouts
from bulkapp.services.inbox.inbound import record_inbound
from tests.e2e.conftest import screenshot, sign_in


def stop_from(client_id: int, sender: str, text: str, mo_id: str) -> None:
    at = datetime(2026, 4, 8, 6, 0, tzinfo=UTC)
    record_inbound(client_id, "sms", "onfon", InboundMessage(sender, "22384", text, mo_id, at, "sms"))


def test_manage_the_opt_out_list(page, user, tenant):
    stop_from(tenant.id, "+254712345678", "STOP", "MO-1")
    stop_from(tenant.id, "+254733000111", "Ondoka", "MO-2")
    optouts.opt_out(tenant.id, "+254700000088", source="provider", keyword="onfon 406", channel="sms")
    db.session.commit()

    sign_in(page, user)
    page.goto("/settings/")
    page.locator("article", has_text="Opt-outs").get_by_role("link", name="Open").click()
    expect(page).to_have_url(re.compile(r"/settings/opt-outs$"))
    listing = page.locator("#optout-list")
    expect(listing).to_contain_text("3 numbers")
    expect(listing).to_contain_text("ONDOKA")
    expect(listing).to_contain_text("Provider")

    # A mistake first, then a real number: the list refreshes by itself.
    page.get_by_label("Phone number or email").fill("0202 123456")
    page.get_by_role("button", name="Add to the list").click()
    expect(page.locator("#optout-add .error")).to_be_visible()
    page.get_by_label("Phone number or email").fill("0722 000 111")
    page.get_by_role("button", name="Add to the list").click()
    expect(page.locator("#optout-add")).to_contain_text("+254722000111 is now opted out.")
    expect(listing).to_contain_text("4 numbers")
    expect(listing).to_contain_text("Added by hand")
    screenshot(page, "optouts_list")

    # Search as you type, by the number as people write it.
    page.get_by_role("searchbox").fill("0733")
    expect(listing).to_contain_text("1 number matching")
    expect(listing).to_contain_text("+254733000111")
    expect(listing).not_to_contain_text("+254712345678")

    # Remove it (after confirming) and the search stays applied.
    page.once("dialog", lambda dialog: dialog.accept())
    listing.get_by_role("button", name="Remove").click()
    expect(listing).to_contain_text("+254733000111 was removed")
    expect(listing).to_contain_text("No opted-out number matches")
    db.session.rollback()  # end the test's read transaction to see the server's commit
    assert not optouts.is_suppressed(tenant.id, "+254733000111")
    db.session.rollback()

    # Export.
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("contact,source,keyword,channel,opted_out_at") and "+254722000111" in text

    # Keywords: an overlap is refused, then a Swahili-first list is saved.
    page.get_by_label("Opt-in keywords").fill("START\nSTOP")
    page.locator("#optout-keywords").get_by_role("button", name="Save").click()
    expect(page.locator("#optout-keywords .error")).to_contain_text("cannot both opt out and opt in")
    page.get_by_label("Opt-out keywords").fill("STOP, ONDOKA, TOKA, ACHA")
    page.get_by_label("Opt-in keywords").fill("START\nANZA")
    page.get_by_label("Promotional footer").fill("STOP*456*9*5#")
    page.locator("#optout-keywords").get_by_role("button", name="Save").click()
    expect(page.locator("#optout-keywords")).to_contain_text("Saved.")
    db.session.rollback()
    assert optouts.classify(db.session.get(Client, tenant.id), "acha") == "opt_out"
    db.session.rollback()
    screenshot(page, "optouts_keywords")


def test_the_opt_out_page_on_a_phone(phone_page, user, tenant):
    stop_from(tenant.id, "+254712345678", "stop", "MO-1")
    db.session.commit()
    sign_in(phone_page, user)
    phone_page.goto("/settings/opt-outs")
    expect(phone_page.locator("#optout-list")).to_contain_text("+254712345678")
    screenshot(phone_page, "optouts_phone")
