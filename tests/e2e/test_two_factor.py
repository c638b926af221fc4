"""Two-factor sign-in in the browser (issue 15, item 6): set it up from the profile by the key printed under the
QR code, keep the recovery codes, sign out, sign in with the password and then a code."""

import re
import time

import pyotp
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import shoot, sign_in


def test_enrol_sign_out_and_sign_in_with_a_code(page, user):
    sign_in(page, user)
    page.goto("/settings/profile")
    page.get_by_role("link", name="Set up two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()
    shoot(page, "two-factor-setup")
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().strip())
    page.get_by_label("The 6-digit code your app shows").fill(totp.now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.locator("ol.recovery-codes li")).to_have_count(10)
    shoot(page, "two-factor-recovery-codes")
    page.get_by_role("link", name="I have saved them").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    shoot(page, "two-factor-on")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/login/code$"))
    shoot(page, "two-factor-login")
    page.get_by_label("Code from your authenticator app, or a recovery code").fill("000000")
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page.get_by_text("That code is not right, or it was already used.")).to_be_visible()
    shoot(page, "two-factor-login-wrong")
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
