"""Templates in a real browser: write one, watch the live preview (samples, encoding, segments), save it."""

from __future__ import annotations

from playwright.sync_api import expect

from bulkapp.extensions import db
from bulkapp.models import Template
from tests.e2e.conftest import screenshot, sign_in


def test_create_a_template_and_see_its_live_preview(page, user):
    sign_in(page, user)
    page.get_by_role("link", name="Templates").click()
    expect(page.get_by_text("No templates yet.")).to_be_visible()
    page.get_by_role("link", name="New template").click()
    page.wait_for_load_state()  # htmx binds the live preview when the document is ready; typing earlier is lost

    page.get_by_label("Name", exact=True).fill("Order ready")
    message = page.get_by_label("Message")
    message.fill("Hello {{name}}, your order {{order_id}} is ready at our Westlands shop.")
    preview = page.locator("#template-preview")
    expect(preview.locator(".bubble")).to_contain_text("Hello Wanjiru Kamau, your order [order_id] is ready")
    expect(preview).to_contain_text("GSM-7")
    expect(preview.locator(".segments")).to_have_text("1")
    expect(page.get_by_label("{{order_id}}")).to_have_value("[order_id]")

    page.get_by_label("{{order_id}}").fill("A-1042")
    expect(preview.locator(".bubble")).to_contain_text("your order A-1042 is ready")
    page.get_by_label("{{name}}").fill("")
    expect(preview.locator(".bubble")).to_contain_text("Hello, your order A-1042")
    expect(preview).to_contain_text("No value for {{name}}")

    # An emoji forces UCS-2 and a longer text needs a second segment.
    message.fill("Habari {{name}} 😀! Your order {{order_id}} is ready. Karibu tena at our Westlands shop.")
    expect(preview).to_contain_text("UCS-2")
    expect(preview.locator(".segments")).to_have_text("2")
    screenshot(page, "template-editor-preview")

    page.get_by_label("Channel").select_option("whatsapp")
    expect(page.get_by_label("WhatsApp template name")).to_be_visible()
    expect(preview).to_contain_text("of 4,096 characters")
    page.get_by_label("WhatsApp template name").fill("order ready")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator("#template-form .error")).to_contain_text("no spaces")
    page.get_by_label("WhatsApp template name").fill("order_ready")
    page.get_by_role("button", name="Save template").click()

    expect(page.get_by_text("Template “Order ready” saved.")).to_be_visible()
    row = page.locator("tr", has_text="Order ready")
    expect(row).to_contain_text("WhatsApp")
    expect(row).to_contain_text("{{order_id}}")
    expect(row).to_contain_text("order_ready")
    screenshot(page, "templates-list")
    db.session.rollback()  # a fresh snapshot: the live server committed the template
    saved = db.session.query(Template).one()
    assert (saved.channel, saved.variables, saved.whatsapp_template_id) == (
        "whatsapp",
        ["name", "order_id"],
        "order_ready",
    )

    page.locator("#template-list").get_by_role("link", name="SMS", exact=True).click()
    expect(page.locator("#template-list")).to_contain_text("No SMS templates yet.")


def test_template_editor_on_a_phone(phone_page, user):
    sign_in(phone_page, user)
    phone_page.goto("/templates/new")
    phone_page.get_by_label("Name", exact=True).fill("Weekly offer")
    phone_page.get_by_label("Message").fill("Hi {{first_name}}! This week: sukuma wiki KSh 20 a bunch. Karibu!")
    expect(phone_page.locator("#template-preview .bubble")).to_contain_text("Hi Wanjiru! This week")
    screenshot(phone_page, "template-editor-phone")
