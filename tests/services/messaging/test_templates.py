"""Templates service: variable detection, rendering (missing values, fallbacks), preview pricing, saving."""

from decimal import Decimal

import pytest

from bulkapp.extensions import db
from bulkapp.models import Contact, Template
from bulkapp.services.messaging import templates
from bulkapp.services.messaging.templates import (
    MissingVariables,
    TemplateError,
    contact_variables,
    detect_variables,
    render,
    render_template_text,
    save_template,
)


def test_variables_are_detected_in_order_once_and_lower_case():
    content = "Hi {{Name}}, order {{ order_id }} for {{name}} at {{branch|our shop}}; WhatsApp {{1}} {{order.ref}}"
    assert detect_variables(content) == ["name", "order_id", "branch", "1", "order.ref"]
    assert detect_variables("No variables here {not one} {{}}") == []


@pytest.mark.parametrize(
    ("content", "values", "expected"),
    [
        ("Hello {{name}}, your order is ready.", {"name": "Wanjiru"}, "Hello Wanjiru, your order is ready."),
        ("Hello {{NAME}}!", {"name": "Otieno"}, "Hello Otieno!"),
        ("Hello {{name}}, your order is ready.", {}, "Hello, your order is ready."),
        ("Hello {{name}}! Karibu", {"name": "  "}, "Hello! Karibu"),
        ("Order {{order_id}} is ready", {}, "Order is ready"),
        ("{{name}} your order is ready", {}, "your order is ready"),
        ("Dear {{name}}\nThanks", {}, "Dear\nThanks"),
        ("Hi {{name|customer}}, karibu", {}, "Hi customer, karibu"),
        ("Hi {{ name | mteja }}, karibu", {"name": "Akinyi"}, "Hi Akinyi, karibu"),
        ("Pay KSh {{amount}}", {"amount": 250}, "Pay KSh 250"),
        ("Literal {{ not a var }} stays", {}, "Literal {{ not a var }} stays"),
    ],
)
def test_render_fills_values_and_tidies_missing_ones(content, values, expected):
    assert render_template_text(content, values) == expected


def test_missing_variables_are_reported_and_strict_mode_raises():
    result = render("Hi {{name}}, order {{order_id}} ({{name}}) at {{branch|the shop}}", {"name": ""})
    assert result.missing == ("name", "order_id")
    with pytest.raises(MissingVariables) as caught:
        render_template_text("Hi {{name}}, order {{order_id}}", {"name": "Ann"}, strict=True)
    assert caught.value.missing == ("order_id",)
    assert "{{order_id}}" in str(caught.value)
    assert render_template_text("Hi {{name}}", {"name": "Ann"}, strict=True) == "Hi Ann"


def test_contact_variables_include_builtins_and_fields(tenant):
    contact = Contact(
        client_id=tenant.id,
        name="Wanjiru Kamau",
        contact="+254712345678",
        department="VIP",
        fields={"order_id": "A-17", "name": "ignored: the contact's name wins"},
    )
    values = contact_variables(contact)
    assert values["name"] == "Wanjiru Kamau" and values["first_name"] == "Wanjiru"
    assert values["phone"] == values["contact"] == "+254712345678"
    assert values["department"] == "VIP" and values["order_id"] == "A-17"
    text = render_template_text("Hi {{first_name}}, order {{order_id}} ({{department}})", values)
    assert text == "Hi Wanjiru, order A-17 (VIP)"


def test_placeholder_problems_name_the_bad_placeholder():
    assert templates.placeholder_problems("Hi {{name}}") == []
    assert "{{first name}}" in templates.placeholder_problems("Hi {{first name}}")[0]
    assert templates.placeholder_problems("Hi {{name") == ["A “{{” has no closing “}}”."]


def test_save_creates_and_updates_with_detected_variables(tenant):
    template = save_template(tenant.id, name="  Order   ready ", content="Hi {{name}}, {{order_id}}", channel="sms")
    db.session.commit()
    assert template.name == "Order ready" and template.variables == ["name", "order_id"]
    updated = save_template(
        tenant.id, name="Order ready", content="Karibu {{first_name}}", channel="sms", template_id=template.id
    )
    db.session.commit()
    assert updated.id == template.id and updated.variables == ["first_name"]


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"name": " ", "content": "x", "channel": "sms"}, "name", "Give the template a name."),
        ({"name": "A" * 121, "content": "x", "channel": "sms"}, "name", "under 120"),
        ({"name": "T", "content": "   ", "channel": "sms"}, "content", "Write the message."),
        ({"name": "T", "content": "x" * 1601, "channel": "sms"}, "content", "at most 1,600"),
        ({"name": "T", "content": "x", "channel": "fax"}, "channel", "Choose SMS"),
        ({"name": "T", "content": "Hi {{first name}}", "channel": "sms"}, "content", "not a valid variable"),
        (
            {"name": "T", "content": "x", "channel": "whatsapp", "whatsapp_template_id": "has space"},
            "whatsapp_template_id",
            "no spaces",
        ),
    ],
)
def test_save_rejects_bad_input(tenant, kwargs, field, message):
    with pytest.raises(TemplateError) as caught:
        save_template(tenant.id, **kwargs)
    assert caught.value.field == field and message in caught.value.message
    assert db.session.query(Template).count() == 0


def test_names_are_unique_per_channel_case_insensitively(tenant, other_tenant):
    save_template(tenant.id, name="Promo", content="x", channel="sms")
    with pytest.raises(TemplateError, match="already have a template called “PROMO” for SMS"):
        save_template(tenant.id, name="PROMO", content="y", channel="sms")
    save_template(tenant.id, name="Promo", content="y", channel="whatsapp")  # another channel: fine
    save_template(other_tenant.id, name="Promo", content="z", channel="sms")  # another tenant: fine
    db.session.commit()
    assert db.session.query(Template).count() == 3


def test_whatsapp_template_id_is_kept_only_for_whatsapp(tenant):
    wa = save_template(tenant.id, name="W", content="Hi {{1}}", channel="whatsapp", whatsapp_template_id="order_ready")
    sms = save_template(tenant.id, name="S", content="Hi", channel="sms", whatsapp_template_id="order_ready")
    assert wa.whatsapp_template_id == "order_ready" and wa.variables == ["1"]
    assert sms.whatsapp_template_id is None


def test_update_and_delete_are_scoped_to_the_tenant(tenant, other_tenant):
    theirs = save_template(other_tenant.id, name="Theirs", content="x", channel="sms")
    db.session.commit()
    with pytest.raises(LookupError):
        save_template(tenant.id, name="Mine now", content="y", channel="sms", template_id=theirs.id)
    assert templates.delete_template(tenant.id, theirs.id) is False
    assert templates.delete_template(other_tenant.id, theirs.id) is True


def test_preview_prices_the_rendered_text_with_the_reply_link(work_app, tenant):
    with work_app.test_request_context():
        gsm = templates.preview_template(tenant, "sms", "Hi {{name}}, your order is ready.", {"name": "Wanjiru"})
        assert gsm.text == "Hi Wanjiru, your order is ready."
        assert gsm.quote.encoding == "GSM-7" and gsm.quote.segments == 1 and gsm.quote.reply_link
        assert gsm.quote.cost == Decimal("0.8000")
        long_unicode = templates.preview_template(tenant, "sms", "Habari {{name}} 😀 " + "x" * 60, {"name": "Ann"})
        assert long_unicode.quote.encoding == "UCS-2" and long_unicode.quote.segments == 2
        assert "😀" in long_unicode.quote.ucs2_characters
        wa = templates.preview_template(tenant, "whatsapp", "x" * 5000, {})
        assert wa.quote.segments == 1 and wa.too_long and wa.limit == 4096
        empty = templates.preview_template(tenant, "sms", "{{name}}", {"name": ""})
        assert empty.quote is None and empty.missing == ("name",)


def test_sample_values_prefer_given_then_defaults_then_the_name():
    samples = templates.sample_values(["name", "order_id", "first_name"], {"ORDER_ID": "A1"})
    assert samples == {"name": "Wanjiru Kamau", "order_id": "A1", "first_name": "Wanjiru"}
    assert templates.sample_values(["branch"]) == {"branch": "[branch]"}
