"""Phone layout: every signed-in page (tenant and platform admin) fits a 360 px and a 390 px wide screen
without sideways scrolling or console errors, the navigation is a real disclosure menu, and wide tables
scroll inside their card."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Campaign, Contact, Message, Template
from tests.e2e.conftest import screenshot, sign_in
from tests.services.inbox.test_inbox import receive
from tests.services.messaging.test_delivery import make_channel

# Ids a page needs, filled from the seeded rows; a rule needing any other argument is not a page to walk.
NOT_PAGES = {
    "dashboard.healthz", "dashboard.chart_panel", "notifications.bell", "notifications.latest", "static",
    "settings.channel_fields", "settings.avatar", "auth.login", "auth.signup", "auth.accept_invite",
    "contacts.edit", "contacts.row", "contacts.edit_details", "inbox.messages",  # fragments of a page
}  # fmt: skip


@pytest.fixture
def seeded(user, admin_user):
    """A tenant with a bit of everything, so that each page shows its real tables rather than an empty state."""
    now = utcnow()
    campaign = Campaign(client_id=user.client_id, name="December promo for every shop in Nairobi and Mombasa",
                        message="Karibu! 20% off maize flour this week.", status="completed", total_recipients=400,
                        sent_count=400, delivered_count=398, failed_count=2, sent_at=now, completed_at=now)  # fmt: skip
    db.session.add(campaign)
    db.session.add(Contact(client_id=user.client_id, name="Achieng Otieno wa Kisumu Mjini", contact="+254712345678",
                           department="Wholesale customers"))  # fmt: skip
    db.session.add(Template(client_id=user.client_id, name="Weekly offer", content="Hello {name}, our offer..."))
    db.session.flush()
    statuses = ("delivered", "sent", "failed", "pending", "sending", "unknown")
    db.session.add_all(
        Message(client_id=user.client_id, recipient="+254712345678", body="Karibu sana " * 6, status=status,
                campaign_id=campaign.id, created_at=now - timedelta(days=day, hours=i))
        for day in range(0, 30, 2) for i, status in enumerate(statuses)
    )  # fmt: skip
    db.session.commit()
    make_channel(user.client_id)
    conversation = receive(user.client_id, "+254712345678", "Habari! Is the 2kg maize flour back in stock?")
    return {
        "campaign_id": campaign.id,
        "contact_id": db.session.scalar(db.select(Contact.id).filter_by(client_id=user.client_id)),
        "template_id": db.session.scalar(db.select(Template.id).filter_by(client_id=user.client_id)),
        "conversation_id": conversation.id,
        "client_id": user.client_id,
    }


# For a failure message: the innermost elements that stick out past the window, with their ancestors.
WIDEST = """(w) => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > w + 0.5)
  .filter(e => !Array.from(e.children).some(c => c.getBoundingClientRect().right > w + 0.5)).slice(0, 1)
  .flatMap(e => { const out = []; for (let x = e; x; x = x.parentElement) out.push(x); return out; })
  .map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))"""


def pages(app, ids: dict, admin: bool) -> list[str]:
    urls = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.endpoint in NOT_PAGES or rule.rule.endswith((".csv", "/progress")):
                continue
            if rule.endpoint.split(".")[0] in {"api", "webhooks", "shortlinks"}:
                continue
            if (rule.endpoint.startswith("admin.")) != admin or not set(rule.arguments) <= set(ids):
                continue
            urls.append(app.url_for(rule.endpoint, **{k: ids[k] for k in rule.arguments}))
    return sorted(set(urls))


def problems(browser, live_server, user, urls: list[str], width: int, lands_on: str) -> dict:
    """Each page that is wider than the window (with what sticks out), answers 5xx, lacks a unique skip-link
    target or logs a console error."""
    context = browser.new_context(base_url=live_server, viewport={"width": width, "height": 800}, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, user, lands_on)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    found = {}
    for url in urls:
        errors.clear()
        response = page.goto(url)
        if response.status >= 500:
            found[url] = response.status
        if not response.ok:  # e.g. a retry page for a campaign with nothing to retry (409)
            continue
        if "text/html" not in response.headers.get("content-type", "") or not page.locator("main").count():
            continue
        page.wait_for_load_state("networkidle")
        if page.locator("#main").count() != 1:  # the skip link's target must be unique on every page
            found[url] = "duplicate #main"
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if scroll > width:
            found[url] = (scroll, page.evaluate(WIDEST, width))
        if errors:
            found[url] = list(errors)
    context.close()
    return found


@pytest.mark.parametrize("width", [360, 390])
def test_every_tenant_page_fits_a_phone(app, browser, live_server, user, seeded, width):
    urls = pages(app, seeded, admin=False)
    assert len(urls) > 20
    assert problems(browser, live_server, user, urls, width, r"/dashboard$") == {}


@pytest.mark.parametrize("width", [360, 390])
def test_every_admin_page_fits_a_phone(app, browser, live_server, admin_user, seeded, width):
    urls = pages(app, seeded, admin=True)
    assert len(urls) >= 2
    assert problems(browser, live_server, admin_user, urls, width, r"/admin/$") == {}


def test_the_phone_menu_is_a_keyboard_disclosure(browser, live_server, user):
    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 800}, is_mobile=True)
    page = context.new_page()
    sign_in(page, user)
    toggle = page.get_by_role("button", name="Menu")
    campaigns = page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_have_attribute("aria-controls", "site-menu")
    expect(campaigns).to_be_hidden()
    expect(page.locator("#balance-badge")).to_be_visible()  # the balance stays in view with the menu folded
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(campaigns).to_be_visible()
    box = campaigns.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390  # a whole link, not a clipped strip
    screenshot(page, "layout-390-menu-open")
    page.keyboard.press("Tab")
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()
    expect(campaigns).to_be_hidden()
    page.keyboard.press(" ")
    expect(campaigns).to_be_visible()
    campaigns.click()
    expect(page).to_have_url(re.compile(r"/campaigns/$"))
    context.close()

    wide = browser.new_context(base_url=live_server, viewport={"width": 1366, "height": 800})
    page = wide.new_page()
    sign_in(page, user)
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns")).to_be_visible()
    wide.close()


@pytest.mark.parametrize("width", [1366, 390])
def test_screenshots_of_the_main_pages(browser, live_server, user, admin_user, seeded, width):
    """Screenshots for a person to look at; also checks that the wide tables scroll inside their card."""
    for who, shots in (
        (user, {"dashboard": "/dashboard", "inbox": f"/inbox/{seeded['conversation_id']}", "contacts": "/contacts/",
                "campaigns": "/campaigns/", "campaign": f"/campaigns/{seeded['campaign_id']}"}),
        (admin_user, {"admin-client": f"/admin/clients/{seeded['client_id']}"}),
    ):  # fmt: skip
        context = browser.new_context(base_url=live_server, viewport={"width": width, "height": 900})
        page = context.new_page()
        sign_in(page, who, r"/dashboard$" if who is user else r"/admin/$")
        for name, url in shots.items():
            page.goto(url)
            for table in page.locator("main table").all():
                card = table.locator("xpath=ancestor::*[contains(@class, 'card')][1]")
                if card.count():
                    t, c = table.bounding_box(), card.bounding_box()
                    scroller = table.evaluate("t => getComputedStyle(t.parentElement).overflowX")
                    assert t["width"] <= c["width"] or scroller == "auto", (name, t, c)
            if name == "admin-client" and width >= 1366:  # on a wide screen the campaigns table fits its card
                card = page.locator("#admin-client-campaigns")
                assert card.locator("table").bounding_box()["width"] <= card.bounding_box()["width"]
            screenshot(page, f"layout-{width}-{name}")
        context.close()


def test_the_top_bar_is_one_row_on_a_360_px_phone_with_a_six_figure_balance(browser, live_server, user):
    from decimal import Decimal

    from bulkapp.models import Client

    db.session.get(Client, user.client_id).balance = Decimal("123456.00")
    db.session.commit()
    context = browser.new_context(base_url=live_server, viewport={"width": 360, "height": 640}, is_mobile=True)
    page = context.new_page()
    sign_in(page, user)
    brand, toggle = page.locator(".brand").bounding_box(), page.get_by_role("button", name="Menu").bounding_box()
    assert abs((toggle["y"] + toggle["height"] / 2) - (brand["y"] + brand["height"] / 2)) < 8  # the same row
    assert toggle["x"] + toggle["width"] <= 360
    expect(page.locator("#balance-badge")).to_contain_text("KSh 123,456.00")
    screenshot(page, "layout-360-top-bar")
    context.close()
