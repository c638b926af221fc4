"""Hostile values typed or pasted into a URL land on a readable page at desktop and phone width."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in
from tests.test_tenant_isolation import _objects_of


@pytest.mark.parametrize("width", [1366, 390])
def test_a_wallet_filter_at_the_end_of_the_calendar_explains_itself(browser, live_server, user, width):
    context = browser.new_context(base_url=live_server, viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, user)
        response = page.goto("/wallet/?date_from=0001-01-01&date_to=9999-12-31&cursor=999999999999999999")
        assert response.status == 200
        expect(page.get_by_text("Choose a date between the years 2000 and 2100.").first).to_be_visible()
        screenshot(page, f"wallet-date-bounds-{width}")
        page.goto("/contacts/?after=%C2%B2")
        expect(page.locator("h1")).to_contain_text("Contacts")
    finally:
        context.close()


def test_a_bookmarked_inline_editor_opens_the_contact_page(page, tenant, user):
    ids = _objects_of(tenant)
    sign_in(page, user)
    page.goto(f"/contacts/{ids['contact_id']}/edit")
    expect(page).to_have_url(re.compile(rf"/contacts/{ids['contact_id']}/details/edit$"))
    expect(page.get_by_text("Private Person").first).to_be_visible()
    screenshot(page, "contact-edit-plain-get")
