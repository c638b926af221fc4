"""WhatsApp templates carry the language they are approved in, and it goes out on the wire: Meta matches a
template by name and exact language code, so a ``sw`` or ``en_US`` template sent as ``en`` is refused."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Channel, Client, Message
from bulkapp.services.billing import wallet
from bulkapp.services.messaging import compose as messaging
from bulkapp.services.messaging import dispatch, templates
from bulkapp.services.messaging.templates import TemplateError
from tests.simulators.whatsapp_cloud import WhatsAppCloudSimulator

CUSTOMER = "+254712345678"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("sw", "sw"),
        ("en_US", "en_US"),
        ("en-us", "en_US"),
        (" EN_gb ", "en_GB"),
        ("fil", "fil"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_the_language_is_stored_in_metas_form(tenant, given, stored):
    template = templates.save_template(
        tenant.id, name="Order", content="Hi {{name}}", channel="whatsapp", whatsapp_template_id="order_ready",
        whatsapp_language=given,
    )  # fmt: skip
    assert template.whatsapp_language == stored


@pytest.mark.parametrize("given", ["english", "e", "en_USA", "en_U1", "sw;DROP", "en__US", "1234", "en_US_x"])
def test_a_malformed_language_is_refused_on_its_field(tenant, given):
    with pytest.raises(TemplateError) as error:
        templates.save_template(
            tenant.id, name="Order", content="Hi", channel="whatsapp", whatsapp_template_id="x", whatsapp_language=given
        )
    assert error.value.field == "whatsapp_language"


def test_other_channels_keep_the_default(tenant):
    template = templates.save_template(tenant.id, name="T", content="Hi", channel="sms", whatsapp_language="sw")
    assert template.whatsapp_language == "en"


@pytest.fixture
def meta_channel(tenant):
    """Tenant A live on WhatsApp Cloud (the simulator knows order_ready in sw only), with money and a customer
    whose 24-hour window has closed, so only an approved template may go out."""
    with WhatsAppCloudSimulator(templates={"order_ready": {"sw": 1}}) as sim:
        db.session.get(Client, tenant.id).is_test_mode = False
        db.session.add(
            Channel(
                client_id=tenant.id, name="whatsapp", provider="whatsapp_cloud", credentials=sim.credentials,
                config=sim.config(), active=True,
            )
        )  # fmt: skip
        wallet.credit(tenant.id, Decimal("100"), reference="test-topup-wa")
        db.session.commit()
        yield sim


def send_template(tenant, language: str) -> Message:
    template = templates.save_template(
        tenant.id, name=f"Order {language}", content="Habari {{name}}, oda yako iko tayari.", channel="whatsapp",
        whatsapp_template_id="order_ready", whatsapp_language=language,
    )  # fmt: skip
    db.session.commit()
    message = messaging.send_message(
        tenant.id, to=CUSTOMER, channel="whatsapp", template_id=template.id, variables={"name": "Amina"}
    )
    db.session.commit()
    if message.status == "pending":  # no job runner in this test: dispatch as the job would
        dispatch.dispatch_messages(tenant.id, [message.id], checkpoint=db.session.commit)
        db.session.commit()
    db.session.expire_all()
    return db.session.get(Message, message.id)


def test_the_templates_language_goes_out_on_the_wire(tenant, meta_channel):
    message = send_template(tenant, "sw")
    assert message.meta["whatsapp_template"] == {"name": "order_ready", "language": "sw", "params": ["Amina"]}
    assert message.status == "sent", message.error_message
    (submission,) = meta_channel.accepted()
    assert submission.text == "template:order_ready@sw"


def test_a_template_in_a_language_meta_does_not_have_is_refused_by_meta(tenant, meta_channel):
    message = send_template(tenant, "en_US")
    assert message.status == "failed"
    assert meta_channel.accepted() == []


def test_messages_queued_before_languages_existed_use_the_channels_default(tenant, meta_channel):
    message = send_template(tenant, "sw")
    message.meta = {**message.meta, "whatsapp_template": {"name": "order_ready", "params": ["Amina"]}}
    message.status, message.provider_message_id = "pending", None
    db.session.execute(sa.update(Channel).values(config={**meta_channel.config(), "template_language": "sw"}))
    db.session.commit()
    dispatch.dispatch_messages(tenant.id, [message.id], checkpoint=db.session.commit)
    db.session.commit()
    assert [s.text for s in meta_channel.accepted()] == ["template:order_ready@sw"] * 2
    assert utcnow() - timedelta(minutes=5) < db.session.get(Message, message.id).sent_at


# --------------------------------------------------------------------------------------- the template form

HX = {"HX-Request": "true"}
FORM = {"name": "Order ready", "channel": "whatsapp", "content": "Hi {{name}}", "whatsapp_template_id": "order_ready"}


def test_the_form_offers_and_saves_the_language(login, tenant):
    client = login(tenant.test_user)
    page = client.get("/templates/new?channel=whatsapp").get_data(as_text=True)
    assert 'name="whatsapp_language"' in page and 'list="wa-languages"' in page
    assert '<option value="en_US">' in page and '<option value="sw">' in page
    response = client.post("/templates/", data={**FORM, "whatsapp_language": "en-gb"}, headers=HX)
    assert response.status_code == 204
    template = db.session.scalar(sa.select(templates.Template))
    assert template.whatsapp_language == "en_GB"
    edit = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert 'value="en_GB"' in edit


def test_the_form_refuses_a_malformed_language_with_422(login, tenant):
    client = login(tenant.test_user)
    response = client.post("/templates/", data={**FORM, "whatsapp_language": "Kiswahili"}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "such as en, en_US or sw" in body
    assert db.session.scalar(sa.select(sa.func.count(templates.Template.id))) == 0
