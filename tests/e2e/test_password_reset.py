"""A locked-out owner: "Forgot password?" on the sign-in page, the link from the development outbox, a new
password, and signing in with it (issue 15, items 3 and 5)."""

import re
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.e2e.conftest import shoot

NEW = "a-fresh-password-42"


def test_forgot_password_from_the_outbox_to_a_new_sign_in(page, user):
    page.goto("/login")
    page.get_by_role("link", name="Forgot password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    page.get_by_label("Email").fill(user.email)
    shoot(page, "password-forgot")
    page.get_by_role("button", name="Send me a reset link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    shoot(page, "password-forgot-sent")

    page.goto("/dev/outbox")
    expect(page.get_by_role("heading", name="Reset your Bulkapp password")).to_be_visible()
    shoot(page, "dev-outbox")
    link = page.locator("#dev-outbox a[href*='/password/reset/']").first.get_attribute("href")
    page.goto(urlsplit(link).path)  # BASE_URL in the tests is not the live server's port
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password", exact=True).fill(NEW)
    page.get_by_label("New password again").fill(NEW)
    shoot(page, "password-reset")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_text("Your password was changed")).to_be_visible()

    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(NEW)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))

    page.goto(urlsplit(link).path)  # the link worked once
    expect(page.get_by_text("already used")).to_be_visible()
    shoot(page, "password-reset-used")
