"""Two browsers signed in as the same user: one signs the other out from the profile's session list, and the
other lands on the sign-in page at its next click."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in

PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_sign_out_the_other_browser_from_the_list(browser, live_server, page, user):
    phone_context = browser.new_context(
        base_url=live_server, user_agent=PHONE_UA, viewport={"width": 390, "height": 800}
    )
    phone = phone_context.new_page()
    phone.set_default_timeout(10_000)
    try:
        sign_in(phone, user)
        sign_in(page, user)
        page.goto("/settings/profile")
        sessions = page.locator("#profile-sessions")
        expect(sessions.get_by_role("heading", name="Where you are signed in")).to_be_visible()
        rows = sessions.locator("tbody tr")
        expect(rows).to_have_count(2)
        phone_row = rows.filter(has_text="Safari on iPhone")
        expect(phone_row).to_have_count(1)
        expect(rows.filter(has_text="This browser")).to_have_count(1)
        for width in (1366, 390):
            page.set_viewport_size({"width": width, "height": 800})
            page.locator("#profile-sessions").scroll_into_view_if_needed()
            screenshot(page, f"profile-sessions-{width}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.set_viewport_size({"width": 1280, "height": 860})

        phone_row.get_by_role("button", name="Sign out").click()
        expect(page.get_by_text("That session is signed out.")).to_be_visible()
        expect(page.locator("#profile-sessions tbody tr")).to_have_count(1)

        phone.goto("/dashboard")
        expect(phone).to_have_url(re.compile(r"/login"))
        page.goto("/dashboard")
        expect(page).to_have_url(re.compile(r"/dashboard$"))  # this browser is still signed in

        sign_in(phone, user)
        page.goto("/settings/profile")
        page.get_by_role("button", name="Sign out everywhere else").click()
        expect(page.get_by_text("1 other session is signed out.")).to_be_visible()
        phone.goto("/contacts/")
        expect(phone).to_have_url(re.compile(r"/login"))
    finally:
        phone_context.close()
