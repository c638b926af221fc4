"""A newcomer signs up, confirms with the password, signs out, signs in again and sees the dashboard; a wrong
password says so."""

import re

from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, shoot


def test_sign_up_confirm_sign_out_sign_in_and_dashboard(page, caplog):
    page.goto("/signup")
    page.get_by_label("Business name").fill("Duka la Mama")
    page.get_by_label("Your name").fill("Grace Wambui")
    page.get_by_label("Email").fill("grace@duka.example")
    page.get_by_label("Phone (M-Pesa)").fill("0712 345 678")
    page.get_by_label("Password").fill("a-strong-password")
    page.get_by_role("button", name="Create account").click()

    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.get_by_text("We sent a confirmation link to grace@duka.example")).to_be_visible()
    shoot(page, "signup-check-your-email")

    # The account waits for its link: signing in says so and offers a new one.
    page.goto("/login")
    page.get_by_label("Email").fill("grace@duka.example")
    page.get_by_label("Password").fill("a-strong-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Confirm your email address first")
    expect(page.get_by_role("button", name="Send me a new confirmation link")).to_be_visible()
    shoot(page, "login-unconfirmed")

    # No mail server in the tests: the development log shows the link, as it does for `make run`.
    link = re.findall(r"https?://[^/\s]+(/signup/confirm/\S+)", caplog.text)[-1]
    page.goto(link)  # opening the link only asks for the password chosen at sign-up
    expect(page.get_by_role("heading", name="Confirm your email address")).to_be_visible()
    expect(page.get_by_text("If you did not sign up, ignore this email")).to_be_visible()
    page.get_by_label("The password you chose when you signed up").fill("not-my-password")
    page.get_by_role("button", name="Confirm my email").click()
    expect(page.get_by_text("This is not the password you chose when you signed up.")).to_be_visible()
    shoot(page, "signup-confirm-wrong-password")
    page.goto(link)
    shoot(page, "signup-confirm-form")
    page.get_by_label("The password you chose when you signed up").fill("a-strong-password")
    page.get_by_role("button", name="Confirm my email").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("heading", name="Duka la Mama")).to_be_visible()
    expect(page.locator("#balance-badge")).to_contain_text("KSh 0.00")
    expect(page.locator("#notification-bell .count")).to_have_text("1")  # the welcome note
    screenshot(page, "dashboard-after-signup")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_text("You are signed out.")).to_be_visible()

    page.get_by_label("Email").fill("grace@duka.example")
    page.get_by_label("Password").fill("a-strong-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.locator("#dashboard-stats")).to_contain_text("Messages today")
    screenshot(page, "dashboard")


def test_wrong_password_shows_an_error(page, user):
    page.goto("/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page).to_have_url(re.compile(r"/login$"))
    screenshot(page, "login-wrong-password")


def test_signup_errors_keep_the_form(page):
    page.goto("/signup")
    page.get_by_label("Business name").fill("Kibanda")
    page.get_by_label("Your name").fill("Juma")
    page.get_by_label("Email").fill("juma@kibanda.example")
    page.get_by_label("Phone (M-Pesa)").fill("020 123 4567")
    page.get_by_label("Password").fill("long-enough-pass")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("not a mobile number")).to_be_visible()
    expect(page.get_by_label("Business name")).to_have_value("Kibanda")


def test_notifications_mark_all_read_updates_the_bell(page, user):
    from bulkapp.extensions import db
    from bulkapp.services.notifications.notify import notify
    from tests.conftest import PASSWORD

    notify(user.client_id, "low_balance", "low_balance", {"balance": "99.20", "threshold": "100.00"})
    db.session.commit()
    page.goto("/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#notification-bell .count")).to_have_text("1")
    page.locator("#notification-bell summary").click()
    expect(page.locator("#notification-latest")).to_contain_text("Low balance")
    page.get_by_role("link", name="All notifications").click()
    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator("#notification-bell .count")).to_have_count(0)
    expect(page.get_by_role("button", name="Mark read")).to_have_count(0)


def test_a_bad_confirmation_link_explains_what_to_do(page):
    page.goto("/signup/confirm/not-a-real-token")
    expect(page.get_by_role("alert")).to_have_text("This confirmation link is not valid.")
    expect(page.get_by_role("link", name="Sign in").first).to_be_visible()
    shoot(page, "signup-confirm-invalid")
