"""A tenant revokes the API key, creates a new one, sees it exactly once, then rotates it."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.services.accounts.api_key_settings import authenticate_api_key
from tests.e2e.conftest import screenshot, sign_in


def test_create_an_api_key_and_see_it_once(page, user, tenant):
    page.on("dialog", lambda dialog: dialog.accept())  # the "are you sure?" of Revoke and Rotate
    sign_in(page, user)
    page.goto("/settings/")
    page.locator("article", has_text="API key").get_by_role("link", name="Open").click()
    expect(page).to_have_url(re.compile(r"/settings/api$"))
    card = page.locator("#api-key")
    expect(card).to_contain_text(tenant.api_key_prefix)
    expect(card).to_contain_text("Never")

    card.get_by_role("button", name="Revoke").click()
    expect(card).to_contain_text("Key revoked")
    card.get_by_role("button", name="Create key").click()
    new_key = page.get_by_label("Your new API key")
    expect(new_key).to_have_value(re.compile(r"^bk_test_"))
    key = new_key.input_value()
    expect(card).to_contain_text("cannot be shown again")
    screenshot(page, "settings-api-key-created")

    db.session.rollback()  # a fresh look at what the server committed
    assert authenticate_api_key(tenant.test_api_key) is None
    assert authenticate_api_key(key).id == tenant.id
    db.session.commit()

    page.reload()
    expect(card).to_contain_text(key[:12])
    assert key not in page.content()
    expect(page.get_by_label("Your new API key")).to_have_count(0)

    card.get_by_role("button", name="Rotate").click()
    rotated = page.get_by_label("Your new API key")
    expect(rotated).to_have_value(re.compile(r"^bk_test_"))
    assert rotated.input_value() != key
    db.session.rollback()
    assert authenticate_api_key(key) is None
    screenshot(page, "settings-api-key")
