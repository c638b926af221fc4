"""Keyboard use: the inbox's `r` focuses the reply text even when a template picker sits above it; the contact
row's inline edit saves on Enter, cancels on Escape, gives focus back to the row, and its Save button is legible."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.models import Contact
from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_accessibility import contrast
from tests.e2e.test_layout import seeded  # noqa: F401 - a fixture used below


def open_page(browser, live_server, user, width: int):
    context = browser.new_context(base_url=live_server, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, user)
    return context, page


@pytest.mark.parametrize("width", [1366, 390])
def test_r_focuses_the_reply_text_not_the_template_picker(browser, live_server, user, seeded, width):  # noqa: F811
    context, page = open_page(browser, live_server, user, width)
    page.goto(f"/inbox/{seeded['conversation_id']}")
    form = page.locator("#reply-form")
    expect(form.locator("select")).to_have_count(1)  # a template exists, so the picker comes first
    page.locator("body").press("r")
    expect(page.get_by_label("Reply")).to_be_focused()
    page.keyboard.type("Ndiyo")
    expect(page.get_by_label("Reply")).to_have_value("Ndiyo")
    screenshot(page, f"inbox-r-{width}")
    context.close()


@pytest.mark.parametrize("width", [1366, 390])
def test_inline_contact_edit_by_keyboard(browser, live_server, user, seeded, width):  # noqa: F811
    context, page = open_page(browser, live_server, user, width)
    page.goto("/contacts/")
    row = page.locator(f"#contact-row-{seeded['contact_id']}")
    row.get_by_role("button", name="Edit").click()
    name = row.get_by_label("Name")
    expect(name).to_be_focused()  # the edit row takes the focus

    save = row.get_by_role("button", name="Save")
    colours = save.evaluate("b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]")
    assert contrast(page, *colours) >= 4.5, colours  # was brand-green text on the brand-green button
    screenshot(page, f"contact-inline-edit-{width}")

    name.fill("Achieng Otieno")
    name.press("Escape")  # cancels: nothing saved, the plain row is back with focus on its Edit button
    expect(row.get_by_role("button", name="Edit")).to_be_focused()
    expect(row).to_contain_text("Achieng Otieno wa Kisumu Mjini")

    page.keyboard.press("Enter")  # Enter on the focused Edit button opens the editor again
    name = row.get_by_label("Name")
    expect(name).to_be_focused()
    name.fill("Achieng Otieno")
    row.get_by_label("Department").press("Enter")  # Enter in any field saves
    expect(row.get_by_role("button", name="Edit")).to_be_focused()
    expect(row.get_by_role("link", name="Achieng Otieno")).to_be_visible()
    db.session.commit()
    assert db.session.get(Contact, seeded["contact_id"]).name == "Achieng Otieno"

    row.get_by_role("button", name="Edit").click()
    expect(row.get_by_label("Name")).to_be_focused()  # the editor is in and its keys are bound
    row.get_by_label("Phone or email").fill("not a phone")
    row.get_by_label("Phone or email").press("Enter")
    expect(row.locator(".error")).to_be_visible()
    expect(row.get_by_label("Phone or email")).to_be_focused()  # focus lands on the field to fix
    context.close()
