"""Accessibility and hygiene in a real browser: no console errors on the main pages (typing included, which
fires the live quotes), a skip link first in the tab order, a focus ring with 3:1 contrast, chart series told
apart by more than colour with readable labels, a favicon."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_layout import seeded  # noqa: F401 - a fixture used below

CONTRAST = """([a, b]) => {
  const rgb = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lin = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = c => { const [r, g, b] = rgb(c).map(lin); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}"""


def contrast(page, a: str, b: str) -> float:
    return page.evaluate(CONTRAST, [a, b])


def watch_console(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"{page.url}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    return errors


@pytest.mark.parametrize("width", [1366, 390])
def test_no_console_errors_on_the_main_pages(browser, live_server, user, seeded, width):  # noqa: F811
    context = browser.new_context(base_url=live_server, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = watch_console(page)
    sign_in(page, user)
    page.get_by_role("button", name="7 days").click()
    expect(page.locator("#dashboard-charts h2")).to_have_text("Last 7 days")
    for url in ("/contacts/", "/templates/", "/wallet/", "/settings/", "/notifications/", "/campaigns/"):
        page.goto(url)
        page.wait_for_load_state("networkidle")

    page.goto(f"/inbox/{seeded['conversation_id']}")
    with page.expect_response(re.compile(r"/inbox/\d+/quote")):
        page.get_by_label("Reply").fill("Yes, it is back in stock.")
    expect(page.locator("#reply-quote")).to_contain_text("segment")

    page.goto("/messages/")
    with page.expect_response(re.compile(r"/messages/quote")):
        page.get_by_label("Message", exact=True).fill("Habari, your order is ready.")

    page.goto("/settings/channels/new")
    with page.expect_response(re.compile(r"/settings/channels/new/fields")):
        page.get_by_label("Provider").select_option(index=1)

    page.goto("/campaigns/new")
    with page.expect_response(re.compile(r"/campaigns/quote")):
        page.get_by_label("Message", exact=True).fill("Karibu! 20% off this week.")
    page.wait_for_load_state("networkidle")
    context.close()
    assert errors == []


def test_the_skip_link_comes_first_and_jumps_to_the_content(page, user):
    sign_in(page, user)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()  # shown while focused
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    assert page.locator("#main").count() == 1  # the target id is unique (a form field named "main" would steal it)
    page.keyboard.press("Tab")  # the next stop is inside the content, not back in the top bar
    assert page.evaluate("document.activeElement.closest('main') !== null")


@pytest.mark.parametrize("width", [1366, 390])
def test_the_focus_ring_has_3_to_1_contrast_on_white_and_on_the_top_bar(browser, live_server, user, width):
    context = browser.new_context(base_url=live_server, viewport={"width": width, "height": 900})
    page = context.new_page()
    sign_in(page, user)
    page.goto("/contacts/")
    bar = page.locator(".topbar").evaluate("e => getComputedStyle(e).backgroundColor")
    if width < 900:
        page.get_by_role("button", name="Menu").click()
    page.locator(".brand").focus()
    page.keyboard.press("Tab")
    while not page.evaluate("document.activeElement.closest('.nav') !== null"):
        page.keyboard.press("Tab")
    ring = page.evaluate("getComputedStyle(document.activeElement).outlineColor")
    assert page.evaluate("parseFloat(getComputedStyle(document.activeElement).outlineWidth)") >= 2
    assert contrast(page, ring, bar) >= 3, (ring, bar)

    field = page.locator("main input[type=search], main input[type=text]").first
    field.focus()
    ring = field.evaluate("e => getComputedStyle(e).outlineColor")
    assert field.evaluate("e => getComputedStyle(e).outlineStyle") != "none"
    assert contrast(page, ring, "rgb(255, 255, 255)") >= 3, ring
    page.keyboard.press("Shift+Tab")  # a button or link reached by keyboard gets the same ring
    ring = page.evaluate("getComputedStyle(document.activeElement).outlineColor")
    assert contrast(page, ring, "rgb(255, 255, 255)") >= 3
    screenshot(page, f"focus-ring-{width}")
    context.close()


@pytest.mark.parametrize("width", [1366, 390])
def test_chart_series_differ_by_more_than_colour_and_labels_are_readable(
    browser,
    live_server,
    user,
    seeded,  # noqa: F811
    width,
):
    context = browser.new_context(base_url=live_server, viewport={"width": width, "height": 900})
    page = context.new_page()
    sign_in(page, user)
    charts = page.locator("#dashboard-charts")
    fills = {
        status: charts.locator(f".legend rect.bar-{status}").evaluate("e => getComputedStyle(e).fill")
        for status in ("delivered", "sent", "failed", "pending", "sending", "unknown")
    }
    assert len(set(fills.values())) == 6, fills
    assert all("url(" in fills[s] for s in ("pending", "sending", "failed")), fills  # patterns, not just hues
    bar_fill = charts.locator("rect.bar.bar-pending").first.evaluate("e => getComputedStyle(e).fill")
    assert bar_fill == fills["pending"]  # the legend swatch is the bar's own fill
    sizes = charts.locator(".tick").evaluate_all("ts => ts.map(t => parseFloat(getComputedStyle(t).fontSize))")
    assert sizes and min(sizes) >= 11, sizes
    labels = charts.locator(".chart-x .tick").all_inner_texts()
    assert labels and all(re.fullmatch(r"\d\d [A-Z][a-z]{2}", text) for text in labels), labels
    charts.screenshot(path=str(screenshot(page, f"charts-{width}").with_name(f"charts-only-{width}.png")))
    context.close()


def test_a_favicon_is_linked_and_served(page, user):
    page.goto("/login")
    href = page.locator("link[rel=icon]").get_attribute("href")
    response = page.request.get(href)
    assert response.ok and response.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in response.body()
