"""A sandbox tenant sends an SMS from /messages and watches it go pending -> sent -> delivered, with no external
service: the app runs its embedded background worker (as on a newcomer's first run), not inline jobs."""

from __future__ import annotations

import re
import threading

import pytest
from playwright.sync_api import expect

from tests.conftest import test_settings
from tests.e2e.conftest import screenshot, sign_in


@pytest.fixture(scope="module")
def embedded_server(app):
    """The app with JOBS_MODE=thread served on loopback (the shared live server runs jobs inline)."""
    from werkzeug.serving import make_server

    from bulkapp import create_app

    threaded = create_app(test_settings(JOBS_MODE="thread", EMBEDDED_SCHEDULER=False))
    server = make_server("127.0.0.1", 0, threaded, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def open_as(browser, base_url: str, user, **viewport):
    context = browser.new_context(base_url=base_url, viewport=viewport or {"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, user)
    return context, page


def test_send_an_sms_and_watch_it_reach_delivered(browser, embedded_server, user):
    context, page = open_as(browser, embedded_server, user)
    page.get_by_role("link", name="Messages").click()
    expect(page).to_have_url(re.compile(r"/messages/$"))
    expect(page.locator("#quote")).to_contain_text("Type a message to see what it costs.")

    page.get_by_label("To").fill("0712 345 678")
    page.get_by_label("Message").fill("Habari! Your order is ready for pick-up at our Westlands shop.")
    quote = page.locator("#quote")
    expect(quote).to_contain_text("GSM-7")  # the debounced live quote arrived
    expect(quote.locator("dd").nth(2)).to_have_text("1")  # segments
    expect(quote).to_contain_text("KSh 0.80")
    expect(quote).to_contain_text("KSh 99.20")  # balance after
    screenshot(page, "messages-composer")

    page.get_by_role("button", name="Send").click()
    expect(page.locator("#send-form .alert-success")).to_contain_text("queued")
    expect(page.get_by_label("To")).to_have_value("")
    row = page.locator("#message-list tbody tr").first
    expect(row).to_contain_text("+254712345678")
    expect(page.locator("#balance-badge")).to_contain_text("KSh 99.20")
    status = row.locator(".msg-status")
    expect(status).to_have_text(re.compile(r"Pending|Sending|Sent"))
    expect(page.locator("#message-list")).to_have_attribute("hx-trigger", "every 2s")
    expect(status).to_have_text("Sent", timeout=8_000)  # the sandbox accepted it; its report is due
    expect(status).to_have_text("Delivered", timeout=15_000)
    expect(page.locator("#message-list")).not_to_have_attribute("hx-trigger", "every 2s")  # polling stopped
    screenshot(page, "messages-delivered")
    context.close()


def test_a_refused_number_and_a_unicode_message(browser, embedded_server, user):
    context, page = open_as(browser, embedded_server, user)
    page.goto("/messages/")
    page.get_by_label("To").fill("0712 345 601")  # the sandbox refuses numbers ending in 01
    page.get_by_label("Message").fill("Asante sana 🙏 karibu tena!")
    quote = page.locator("#quote")
    expect(quote).to_contain_text("UCS-2")
    expect(quote.locator("kbd")).to_have_text("🙏")
    page.get_by_role("button", name="Send").click()
    status = page.locator("#message-list tbody tr").first.locator(".msg-status")
    expect(status).to_have_text("Failed", timeout=15_000)
    expect(page.locator("#message-list")).to_contain_text("always rejected")
    expect(page.locator("#balance-badge")).to_contain_text("KSh 100.00")  # refunded
    page.get_by_label("To").fill("0712")
    page.get_by_label("Message").fill("Hello")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#send-form")).to_contain_text("not valid")
    screenshot(page, "messages-failed-and-error")
    context.close()


def test_the_page_on_a_phone(browser, embedded_server, user):
    context, page = open_as(browser, embedded_server, user, width=375, height=740)
    page.goto("/messages/")
    page.get_by_label("To").fill("0722 000 111")
    page.get_by_label("Message").fill("Karibu!")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#message-list tbody tr").first.locator(".msg-status")).to_have_text(
        "Delivered", timeout=15_000
    )
    screenshot(page, "messages-phone")
    context.close()


def test_a_fixed_number_clears_its_error_while_typing(browser, embedded_server, user):
    """Issue 13 item 7: the To error from a failed send goes away once the number is right (the live quote swaps
    out the error only, so what is being typed stays as typed)."""
    context, page = open_as(browser, embedded_server, user)
    page.goto("/messages/")
    page.get_by_label("To").fill("0712")
    page.get_by_label("Message").fill("Habari! Your order is ready.")
    page.get_by_role("button", name="Send").click()
    error = page.locator("#to-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("not valid")
    box = page.get_by_label("To")
    box.click()
    box.press("End")
    box.type("345678")
    expect(error).to_be_hidden()
    expect(box).to_have_value("0712345678")
    expect(box).to_be_focused()
    screenshot(page, "messages-number-fixed")
    context.close()
