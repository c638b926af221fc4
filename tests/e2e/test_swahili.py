"""Switching the UI to Swahili: from the sign-in page's language links, and from the profile."""

import re

from playwright.sync_api import expect

from tests.blueprints.test_reply_form import link  # noqa: F401 - the fixture
from tests.e2e.conftest import screenshot, sign_in


def test_signed_out_visitor_switches_the_sign_in_page_to_swahili(page):
    page.goto("/login")
    expect(page.get_by_role("heading", name="Sign in to Bulkapp")).to_be_visible()
    page.locator(".i18n-switcher").get_by_role("link", name="Kiswahili").click()
    expect(page.get_by_role("heading", name="Ingia kwenye Bulkapp")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "sw")
    # remembered for the rest of the visit
    page.get_by_role("link", name="Fungua akaunti").click()
    expect(page.get_by_role("heading", name="Anza kuwatumia wateja wako SMS")).to_be_visible()
    page.get_by_role("button", name="Fungua akaunti").click()  # empty form: the errors are in Swahili too
    expect(page.locator(".error").first).to_have_text("Sehemu hii inahitajika.")
    screenshot(page, "swahili-signup-errors")


def test_profile_language_switches_navigation_and_dashboard_to_swahili(page, user):
    sign_in(page, user)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard")).to_be_visible()

    page.goto("/settings/profile")
    page.get_by_label("Language").select_option("sw")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#flash")).to_contain_text("Wasifu wako umehifadhiwa.")
    expect(page.get_by_label("Lugha")).to_have_value("sw")

    nav = page.get_by_role("navigation", name="Menyu kuu")
    nav.get_by_role("link", name="Dashibodi").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.locator("html")).to_have_attribute("lang", "sw")
    for label in ("Dashibodi", "Ujumbe", "Wateja", "Violezo", "Pochi", "Mipangilio"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Toka")).to_be_visible()
    stats = page.locator("#dashboard-stats")
    expect(stats.get_by_role("heading", name="Salio")).to_be_visible()
    expect(stats.get_by_role("heading", name="Jumbe za leo")).to_be_visible()
    expect(stats).to_contain_text("KSh 100.00")  # money looks the same in both languages
    expect(page.locator("#dashboard-charts h2")).to_have_text("Siku 30 zilizopita")
    page.get_by_role("button", name="Siku 7").click()
    expect(page.locator("#dashboard-charts h2")).to_have_text("Siku 7 zilizopita")
    screenshot(page, "swahili-dashboard")

    page.get_by_role("navigation", name="Menyu kuu").get_by_role("link", name="Pochi").click()
    expect(page.get_by_role("heading", name="Ongeza salio kwa M-Pesa")).to_be_visible()
    expect(page.locator("#wallet-balance")).to_contain_text("KSh 100.00")
    screenshot(page, "swahili-wallet")


def test_customer_answers_on_the_reply_form_in_swahili(phone_page, link):  # noqa: F811
    phone_page.goto(f"/x/{link.code}")
    expect(phone_page.get_by_label("Your message")).to_be_visible()
    phone_page.locator(".i18n-switcher").get_by_role("link", name="Kiswahili").click()
    expect(phone_page.locator("html")).to_have_attribute("lang", "sw")
    expect(phone_page.get_by_text("Jibu", exact=True)).to_be_visible()
    expect(phone_page.get_by_label("Ujumbe wako")).to_be_visible()
    screenshot(phone_page, "swahili-reply-form")


def test_campaign_composer_in_swahili(page, user):
    from bulkapp.extensions import db
    from bulkapp.models import User

    db.session.get(User, user.id).language = "sw"
    db.session.commit()
    # signed out, the sign-in page follows the (English) browser
    sign_in(page, user)
    page.goto("/campaigns/new")
    expect(page.get_by_role("heading", name="Kampeni mpya")).to_be_visible()
    expect(page.locator("#campaign-quote")).to_contain_text("Andika ujumbe au chagua kiolezo uone gharama yake.")
    expect(page.get_by_label("Bandika namba")).to_have_attribute(
        "placeholder", "0712 345 678, namba moja kwa kila mstari au zitenganishwe kwa koma"
    )
    page.get_by_label("Ujumbe", exact=True).fill("Habari {{name}}, ofa ya leo: unga KSh 150.")
    page.get_by_label("Bandika namba").fill("0712345678\n0722000111")
    expect(page.get_by_test_id("quote-recipients")).to_have_text("2")
    expect(page.locator("#campaign-quote")).to_contain_text("Makadirio")
    screenshot(page, "swahili-campaign-compose")


def test_swahili_user_reads_notifications_in_swahili_in_the_bell(page, user):
    from decimal import Decimal

    from bulkapp.extensions import db
    from bulkapp.models import User
    from bulkapp.services.notifications.notify import notify

    db.session.get(User, user.id).language = "sw"
    params = {"name": "Ofa ya Jumamosi", "sent": 1200, "total": 1203, "failed": 3, "cost": Decimal("962.4")}
    notify(user.client_id, "campaign_completed", "campaign_finished", params)  # stored in English
    db.session.commit()
    sign_in(page, user)

    bell = page.locator("#notification-bell")
    expect(bell.locator(".count")).to_have_text("1")
    bell.locator("summary").click()
    item = bell.locator("#notification-latest .dropdown-item").first
    expect(item).to_contain_text("Kampeni “Ofa ya Jumamosi” imekamilika")
    screenshot(page, "swahili-notification-bell")
    item.click()
    expect(page).to_have_url(re.compile(r"/notifications/$"))
    expect(page.locator("#notification-list")).to_contain_text(
        "Jumbe 1,200 kati ya 1,203 zimetumwa; 3 hazikutumwa. Gharama: KSh 962.40."
    )


def test_contacts_bulk_delete_button_keeps_its_swahili_label(page, user):
    from bulkapp.extensions import db
    from bulkapp.models import User
    from bulkapp.services.contacts import book as contacts

    db.session.get(User, user.id).language = "sw"
    contacts.create_contact(user.client_id, contact="0712345678", name="Wanjiru Kamau", department="Customers")
    contacts.create_contact(user.client_id, contact="0722000111", name="Otieno Odhiambo", department="Customers")
    db.session.commit()
    sign_in(page, user)
    page.goto("/contacts/")
    expect(page.get_by_role("button", name="Futa waliochaguliwa", exact=True)).to_be_disabled()
    page.locator("tr", has_text="Wanjiru").get_by_role("checkbox").check()  # the count is written by contacts.js
    expect(page.get_by_role("button", name="Futa waliochaguliwa (1)")).to_be_enabled()
