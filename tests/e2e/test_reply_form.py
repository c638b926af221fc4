"""A recipient opens the reply link of an SMS on a phone-sized screen, replies, and the business sees it."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.models import ShortLink
from bulkapp.services.messaging.compose import send_message
from tests.e2e.conftest import screenshot, sign_in


@pytest.fixture
def quick_form(app, monkeypatch):
    monkeypatch.setitem(app.config, "REPLY_FORM_MIN_SECONDS", 0.5)


def test_reply_from_a_phone_and_see_it_in_the_inbox(phone_page, page, user, tenant, quick_form):
    tenant.company_name = "Mama Mboga Grocers"
    db.session.commit()
    message = send_message(tenant.id, to="0712345678", body="Your order is ready for pick-up.", channel="sms")
    db.session.commit()
    code = db.session.scalar(sa.select(ShortLink.code).where(ShortLink.message_id == message.id))

    phone_page.goto(f"/x/{code}")
    expect(phone_page.get_by_role("heading", name="Mama Mboga Grocers")).to_be_visible()
    expect(phone_page.locator("body")).not_to_contain_text("712345678")
    phone_page.get_by_label("Your message").fill("Asante! I will come at 5pm. Can I pay by M-Pesa?")
    screenshot(phone_page, "reply-form-phone")
    phone_page.wait_for_timeout(600)  # the minimum fill time
    phone_page.get_by_role("button", name="Send").click()
    expect(phone_page).to_have_url(re.compile(rf"/x/{code}/sent$"))
    expect(phone_page.get_by_role("heading", name="Sent")).to_be_visible()
    screenshot(phone_page, "reply-form-sent")

    sign_in(page, user)
    expect(page.locator("#inbox-nav-badge")).to_have_text("1")
    page.goto("/inbox/")
    item = page.locator("#inbox-list li").first
    expect(item).to_contain_text("Can I pay by M-Pesa?")
    expect(item.locator(".inbox-badge")).to_have_text("1")
    item.locator("a").click()
    expect(page.locator("#inbox-thread .inbox-inbound")).to_contain_text("I will come at 5pm")
    expect(page.locator("#inbox-thread")).to_contain_text("via reply link")
    expect(page.locator("#inbox-thread .inbox-outbound")).to_contain_text("Your order is ready")
    screenshot(page, "inbox-web-reply")


def test_unknown_and_expired_links_on_a_phone(phone_page):
    response = phone_page.goto("/x/Zz9q")
    assert response.status == 404
    expect(phone_page.get_by_role("heading", name="Link not found")).to_be_visible()
    screenshot(phone_page, "reply-form-unknown")
