"""In a real browser, at 1366 and 390 px: an MMS's media are links in the inbox thread (safe rel, new tab, no
server fetch), and the template editor's WhatsApp template language field with its suggestions."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Template
from bulkapp.providers.base import InboundMessage
from bulkapp.services.inbox import inbound
from tests.e2e.conftest import screenshot, sign_in

PHOTO = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
WIDTHS = [(1366, 860), (390, 844)]


@pytest.fixture(params=WIDTHS, ids=lambda size: f"{size[0]}px")
def sized_page(request, browser, live_server):
    width, height = request.param
    context = browser.new_context(
        base_url=live_server, viewport={"width": width, "height": height}, is_mobile=width < 500
    )
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.width = width
    yield tab
    context.close()


def test_an_mms_shows_its_media_as_links_in_the_thread(sized_page, user):
    page = sized_page
    for n, (text, media) in enumerate([("Here is the receipt for order 1042", (PHOTO,)), ("", (PHOTO, PHOTO))]):
        message = InboundMessage(
            sender="+254712345678", to="+15005550006", text=text, provider_message_id=f"MM{n}",
            received_at=utcnow(), channel="sms", kind="media", media_urls=media,
        )  # fmt: skip
        inbound.record_inbound(user.client_id, "sms", "twilio", message)
    db.session.commit()
    sign_in(page, user)
    page.goto("/inbox/")
    page.locator("#inbox-list li a").first.click()
    links = page.locator("#inbox-thread .inbox-media a")
    expect(links).to_have_count(3)
    for i in range(3):
        expect(links.nth(i)).to_have_attribute("rel", "noopener noreferrer nofollow")
        expect(links.nth(i)).to_have_attribute("href", PHOTO)
        expect(links.nth(i)).to_have_attribute("target", "_blank")
    expect(links.nth(2)).to_have_text("Attachment 2")
    assert page.evaluate("document.documentElement.scrollWidth") <= page.width
    screenshot(page, f"inbox-thread-media-{page.width}")


def test_the_template_form_sets_the_whatsapp_language(sized_page, user):
    page = sized_page
    sign_in(page, user)
    page.goto("/templates/new?channel=whatsapp")
    page.get_by_label("Name", exact=True).fill("Order ready")
    page.locator("textarea[name=content]").fill("Habari {{name}}, oda yako iko tayari.")
    page.get_by_label("WhatsApp template name").fill("order_ready")
    language = page.get_by_label("WhatsApp template language")
    expect(language).to_be_visible()
    expect(language).to_have_value("en")
    language.fill("sw")
    assert page.evaluate("document.documentElement.scrollWidth") <= page.width
    screenshot(page, f"template-form-language-{page.width}")
    page.wait_for_function("!document.querySelector('.htmx-request')")  # the live preview has answered
    page.get_by_role("button", name="Save template").click()
    expect(page).to_have_url(re.compile(r"/templates/$"), timeout=10_000)
    db.session.rollback()  # end the test's own read transaction: the live server committed the template
    assert db.session.query(Template).one().whatsapp_language == "sw"
    db.session.rollback()
