"""The inbox in a real browser: an inbound SMS appears with an unread badge, open it, reply, close it; new
messages arrive by polling; keyboard shortcuts."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from bulkapp.extensions import db
from tests.e2e.conftest import screenshot, sign_in
from tests.services.inbox.test_inbox import receive


@pytest.fixture
def fast_polling(app, monkeypatch):
    monkeypatch.setitem(app.config, "INBOX_POLL_SECONDS", 1)


def test_inbound_sms_open_reply_and_close(page, user, fast_polling):
    receive(user.client_id, "+254712345678", "Habari! Is the 2kg maize flour back in stock?", name="Achieng Otieno")
    receive(user.client_id, "+254733000111", "Asante sana", channel="whatsapp", name="Baraka")
    sign_in(page, user)
    nav_badge = page.locator("#inbox-nav-badge")
    expect(nav_badge).to_have_text("2")
    page.get_by_role("link", name=re.compile("^Inbox")).click()
    item = page.locator("#inbox-list li", has_text="Achieng Otieno")
    expect(item.locator(".inbox-badge")).to_have_text("1")
    expect(item).to_contain_text("maize flour")
    screenshot(page, "inbox-list-unread")

    item.locator("a").click()
    thread = page.locator("#inbox-thread")
    expect(thread.locator(".inbox-title")).to_have_text("Achieng Otieno")
    expect(thread.locator(".inbox-inbound")).to_contain_text("2kg maize flour")
    expect(nav_badge).to_have_text("1")  # out-of-band: one unread conversation left
    expect(item.locator(".inbox-badge")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/inbox/\d+"))

    page.get_by_label("Reply").fill("Yes, it is back. KSh 240 a packet.")
    expect(page.locator("#reply-quote")).to_contain_text("1 segment · KSh 0.80")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#reply-form .alert-success")).to_contain_text("Reply queued")
    expect(page.get_by_label("Reply")).to_have_value("")
    outbound = thread.locator(".inbox-outbound").last
    expect(outbound).to_contain_text("KSh 240 a packet")
    expect(outbound.locator(".inbox-tick")).to_contain_text(re.compile("Sent|Delivered|Queued"))
    expect(page.locator("#balance-badge")).to_contain_text("KSh 99.20")
    screenshot(page, "inbox-thread-replied")

    # A new message from the customer shows up without a reload.
    receive(user.client_id, "+254712345678", "Great, I will pass by at 5pm")
    expect(thread.locator(".inbox-inbound").last).to_contain_text("pass by at 5pm", timeout=8_000)

    page.get_by_role("button", name="Close").click()
    expect(thread.locator(".inbox-state")).to_have_text("Closed")
    expect(page.locator("#inbox-list")).not_to_contain_text("Achieng Otieno")
    expect(thread.get_by_role("button", name="Reopen")).to_be_visible()
    page.get_by_label("Closed").check(force=True)
    expect(page.locator("#inbox-list")).to_contain_text("Achieng Otieno")
    screenshot(page, "inbox-closed")


def test_new_conversations_appear_by_polling_and_keyboard_shortcuts(page, user, fast_polling):
    receive(user.client_id, "+254712345678", "first customer", name="Akinyi")
    sign_in(page, user)
    page.goto("/inbox/")
    expect(page.locator("#inbox-list li")).to_have_count(1)
    receive(user.client_id, "+254733000111", "second customer", name="Kamau")
    db.session.commit()
    expect(page.locator("#inbox-list li")).to_have_count(2, timeout=8_000)
    expect(page.locator("#inbox-nav-badge")).to_have_text("2")

    page.keyboard.press("j")
    expect(page.locator("#inbox-thread .inbox-title")).to_have_text("Kamau")
    page.keyboard.press("j")
    expect(page.locator("#inbox-thread .inbox-title")).to_have_text("Akinyi")
    page.keyboard.press("k")
    expect(page.locator("#inbox-thread .inbox-title")).to_have_text("Kamau")
    page.keyboard.press("r")
    expect(page.get_by_label("Reply")).to_be_focused()
    page.keyboard.type("jk")  # typing in the box is not a shortcut
    expect(page.get_by_label("Reply")).to_have_value("jk")
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    expect(page.locator("#inbox-thread .inbox-state")).to_have_text("Archived")
    expect(page.locator("#inbox-list li")).to_have_count(1)
    screenshot(page, "inbox-keyboard")
