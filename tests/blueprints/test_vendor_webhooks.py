"""The vendors' webhook endpoints: real sends to the simulators, their real (signed) callbacks replayed into the
app, and every way a callback can be wrong: tampered, wrong token, replayed, malformed, out of order."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Campaign, Contact, Conversation, Event, Message, Notification, WalletTransaction
from bulkapp.providers.base import OutboundMessage
from bulkapp.providers.registry import get_provider
from tests.conftest import make_tenant
from tests.services.messaging.test_delivery import make_campaign, make_channel, make_message
from tests.simulators.base import Callback
from tests.simulators.mobitech import MobitechSimulator
from tests.simulators.onfon import OnfonSimulator, dlr_params
from tests.simulators.twilio import TwilioSimulator, signed_form_callback
from tests.simulators.ultramsg import UltraMsgSimulator, event_callback
from tests.simulators.whatsapp_cloud import (
    WhatsAppCloudSimulator,
    meta_signature,
    signed_webhook,
    status_item,
    subscription_request,
    webhook_payload,
)

BASE = "http://localhost"  # BASE_URL in tests/conftest.py: vendors sign the public URL they call
CUSTOMER = "+254712345678"
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


# --------------------------------------------------------------------------------------------- helpers


def call(client, callback: Callback):
    return client.open(callback.path, method=callback.method, headers=callback.headers, data=callback.body, csrf=False)


def replay(client, sim) -> list[int]:
    """Every callback the simulator made since the last call, sent to the app in order; their statuses."""
    return [call(client, callback).status_code for callback in sim.take_callbacks()]


def dispatch(via, to: str = CUSTOMER, campaign_id: int | None = None, **outbound) -> Message:
    """Send one message through channel ``via``'s real adapter to its simulator and store it as the pipeline
    does (the vendor's id on a sent message)."""
    message = make_message(
        via.client_id,
        None,
        provider=via.provider,
        status="sending",
        campaign_id=campaign_id,
        recipient=to,
        channel=outbound.get("channel", "sms"),
    )
    with get_provider(via.provider, via.credentials, via.config) as provider:
        (result,) = provider.send_batch([OutboundMessage(id=message.id, to=to, body="Hello", **outbound)])
    assert result.status == "accepted", result
    message.provider_message_id, message.status, message.sent_at = result.provider_message_id, "sent", utcnow()
    db.session.commit()
    return message


def everything() -> tuple:
    """Every row a webhook could write, with message statuses and counters; ends the read transaction."""
    db.session.expire_all()
    count = lambda model: db.session.scalar(sa.select(sa.func.count()).select_from(model))  # noqa: E731
    messages = db.session.execute(
        sa.select(Message.id, Message.status, Message.provider_message_id).order_by(Message.id)
    ).all()
    campaigns = db.session.execute(sa.select(Campaign.delivered_count, Campaign.failed_count)).all()
    unread = db.session.scalars(sa.select(Conversation.unread_count).order_by(Conversation.id)).all()
    snapshot = (
        tuple(messages),
        tuple(campaigns),
        tuple(unread),
        *(count(model) for model in (Contact, Event, Notification, WalletTransaction)),
    )
    db.session.rollback()
    return snapshot


def status_of(message: Message) -> str:
    db.session.expire_all()
    value = db.session.get(Message, message.id).status
    db.session.rollback()
    return value


def events() -> list[str]:
    kinds = db.session.scalars(sa.select(Event.type).order_by(Event.id)).all()
    db.session.rollback()
    return kinds


def inbound_messages(client_id: int) -> list[Message]:
    db.session.expire_all()
    query = sa.select(Message).where(Message.client_id == client_id, Message.direction == "inbound")
    return db.session.scalars(query.order_by(Message.id)).all()


# -------------------------------------------------------------------------------------------- vendors


@pytest.fixture
def onfon(tenant):
    token = "onfon-token-a"
    with OnfonSimulator(
        dlr_url=f"{BASE}/webhooks/onfon/dlr?token={token}", inbound_url=f"{BASE}/webhooks/onfon/inbound?token={token}"
    ) as sim:
        sim.channel = make_channel(tenant.id, "onfon", token, credentials=sim.credentials, config=sim.config())
        yield sim


@pytest.fixture
def twilio(tenant):
    with TwilioSimulator(inbound_url=f"{BASE}/webhooks/twilio/inbound") as sim:
        sim.channel = make_channel(tenant.id, "twilio", "twilio-a", credentials=sim.credentials, config=sim.config())
        yield sim


@pytest.fixture
def meta(tenant):
    with WhatsAppCloudSimulator(webhook_url=f"{BASE}/webhooks/whatsapp") as sim:
        sim.channel = make_channel(
            tenant.id, "whatsapp_cloud", "meta-verify-a", name="whatsapp", credentials=sim.credentials,
            config=sim.config(),
        )  # fmt: skip
        yield sim


@pytest.fixture
def ultramsg(tenant):
    token = "ultramsg-token-a"
    with UltraMsgSimulator(webhook_url=f"{BASE}/webhooks/ultramsg?token={token}") as sim:
        sim.channel = make_channel(
            tenant.id, "ultramsg", token, name="whatsapp", credentials=sim.credentials, config=sim.config()
        )
        yield sim


@pytest.fixture
def mobitech(tenant):
    token = "mobitech-token-a"
    with MobitechSimulator(send_dlrs=True, dlr_url=f"{BASE}/webhooks/mobitech/dlr?token={token}") as sim:
        sim.channel = make_channel(tenant.id, "mobitech", token, credentials=sim.credentials, config=sim.config())
        yield sim


# ----------------------------------------------------------------------------------------- Onfon DLRs


def test_onfon_delivery_reports_from_the_simulator_mark_messages_and_count_the_campaign(client, tenant, onfon):
    campaign = make_campaign(tenant.id)
    delivered = dispatch(onfon.channel, "+254712345600", campaign.id)
    failed = dispatch(onfon.channel, "+254712345601", campaign.id)  # ...01: undelivered

    assert replay(client, onfon) == [200, 200]

    assert (status_of(delivered), status_of(failed)) == ("delivered", "failed")
    assert everything()[1] == ((1, 1),)
    assert sorted(events()) == ["message.delivered", "message.failed"]
    db.session.expire_all()
    assert (
        db.session.get(Message, failed.id).error_message == "The network could not deliver the message to the handset."
    )


def test_onfon_dlr_reads_get_post_form_and_json_alike(client, tenant, onfon):
    times = {}
    for n, style in enumerate(("get", "form", "json")):
        message = make_message(tenant.id, f"OM-{n}")
        params = dlr_params(f"OM-{n}", CUSTOMER)
        url = "/webhooks/onfon/dlr?token=onfon-token-a"
        if style == "get":
            response = client.get(f"{url}&{urlencode(params)}")
        elif style == "form":
            response = client.post(url, data=params, csrf=False)
        else:
            response = client.post(url, json=params, csrf=False)
        assert response.status_code == 200, response.get_data(as_text=True)
        db.session.expire_all()
        times[style] = db.session.get(Message, message.id).delivered_at
    # doneDate 2026-04-08 09:31 is Nairobi time (UTC+3)
    assert set(times.values()) == {datetime(2026, 4, 8, 6, 31, tzinfo=UTC)}


def test_a_replayed_onfon_dlr_answers_200_and_changes_nothing(client, tenant, onfon):
    make_message(tenant.id, "OM-1", campaign_id=make_campaign(tenant.id).id)
    url = "/webhooks/onfon/dlr?" + urlencode({"token": "onfon-token-a", **dlr_params("OM-1", CUSTOMER)})
    assert client.get(url).status_code == 200
    once = everything()
    for _ in range(3):
        assert client.get(url).status_code == 200
    assert everything() == once
    assert once[1] == ((1, 0),)


def test_onfon_reports_out_of_order_never_move_a_message_back(client, tenant, onfon):
    message = make_message(tenant.id, "OM-1")
    for status in ("DELIVRD", "ACCEPTD", "UNDELIV", "ENROUTE"):
        query = urlencode({"token": "onfon-token-a", **dlr_params("OM-1", CUSTOMER, status)})
        assert client.get(f"/webhooks/onfon/dlr?{query}").status_code == 200
    assert status_of(message) == "delivered"
    assert events() == ["message.delivered"]


@pytest.mark.parametrize("token", [None, "", "wrong", "onfon-token-", "ultramsg-token-a", "mobitech-token-a"])
def test_onfon_dlr_with_a_wrong_token_is_refused_and_stores_nothing(client, tenant, onfon, token):
    make_channel(tenant.id, "mobitech", "mobitech-token-a", credentials={"api_key": "k"}, config={"sender_name": "S"})
    make_message(tenant.id, "OM-1")
    before = everything()
    params = dlr_params("OM-1", CUSTOMER) | ({"token": token} if token is not None else {})
    response = client.get(f"/webhooks/onfon/dlr?{urlencode(params)}")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert everything() == before


@pytest.mark.parametrize(
    "body",
    [{"mobile": "254712345678", "status": "DELIVRD"}, {"messageId": "OM-1"}, [{"messageId": "OM-1"}], [], "[1, 2]"],
)
def test_a_malformed_onfon_dlr_is_a_400(client, tenant, onfon, body):
    make_message(tenant.id, "OM-1")
    before = everything()
    url = "/webhooks/onfon/dlr?token=onfon-token-a"
    if isinstance(body, str):
        response = client.post(url, data=body, content_type="application/json", csrf=False)
    else:
        response = client.post(url, json=body, csrf=False)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed"
    assert everything() == before


def test_a_dlr_for_an_unknown_or_foreign_message_is_acknowledged_and_ignored(client, tenant, other_tenant, onfon):
    theirs = make_message(other_tenant.id, "OM-B")
    before = everything()
    for message_id in ("NOT-OURS", "OM-B"):
        query = urlencode({"token": "onfon-token-a", **dlr_params(message_id, CUSTOMER)})
        assert client.get(f"/webhooks/onfon/dlr?{query}").status_code == 200
    assert everything() == before
    assert status_of(theirs) == "sent"


def test_a_shared_onfon_account_reports_each_tenants_messages_to_that_tenant(client, tenant, other_tenant, onfon):
    """Several tenants on one reseller Onfon account: Onfon calls the one URL registered in its portal."""
    make_channel(other_tenant.id, "onfon", "onfon-token-b", credentials=onfon.credentials, config=onfon.config())
    shared = make_message(other_tenant.id, "OM-B")
    third = make_tenant("Tenant C", "owner@c.example")
    make_channel(third.id, "onfon", "onfon-token-c", credentials={**onfon.credentials, "api_key": "x"}, config={})
    stranger = make_message(third.id, "OM-C")  # another Onfon account: never reachable through A's token

    for message_id in ("OM-B", "OM-C"):
        query = urlencode({"token": "onfon-token-a", **dlr_params(message_id, CUSTOMER)})
        assert client.get(f"/webhooks/onfon/dlr?{query}").status_code == 200
    assert (status_of(shared), status_of(stranger)) == ("delivered", "sent")


# ------------------------------------------------------------------------------------- Onfon inbound


def test_onfon_incoming_sms_from_the_simulator_lands_in_the_inbox(client, tenant, onfon):
    onfon.inject_inbound(sender="254712345678", text="Do you deliver to Thika?", to="ACME")
    assert replay(client, onfon) == [200]

    (message,) = inbound_messages(tenant.id)
    assert (message.sender, message.body, message.channel, message.provider) == (
        CUSTOMER,
        "Do you deliver to Thika?",
        "sms",
        "onfon",
    )
    assert events() == ["message.received"]
    assert everything()[2] == (1,)


def test_onfon_inbound_accepts_forms_and_every_documented_field_name(client, tenant, onfon):
    url = "/webhooks/onfon/inbound?token=onfon-token-a"
    first = {"mobile": "0712345678", "shortcode": "22384", "text": "Hello", "messageId": "MO-1"}
    second = {"msisdn": "254712345678", "sender_id": "ACME", "message": "Again", "id": "MO-2"}
    assert client.post(url, data=first, csrf=False).status_code == 200
    assert client.post(url, json=second, csrf=False).status_code == 200
    assert [(m.body, m.provider_message_id) for m in inbound_messages(tenant.id)] == [
        ("Hello", "MO-1"),
        ("Again", "MO-2"),
    ]
    assert everything()[2] == (2,)


def test_a_replayed_onfon_inbound_is_recorded_once(client, tenant, onfon):
    (callback,) = onfon.inject_inbound(sender="254712345678", text="Hi")
    onfon.take_callbacks()
    assert [call(client, callback).status_code for _ in range(3)] == [200, 200, 200]
    assert len(inbound_messages(tenant.id)) == 1
    assert events() == ["message.received"]


@pytest.mark.parametrize("token", [None, "wrong", "ultramsg-token-a"])
def test_onfon_inbound_with_a_wrong_token_is_refused(client, tenant, onfon, token):
    make_channel(tenant.id, "ultramsg", "ultramsg-token-a", credentials={"instance_id": "i", "token": "t"})
    before = everything()
    query = f"?token={token}" if token is not None else ""
    body = {"from": "254712345678", "message": "Hi", "id": "MO-1"}
    assert client.post(f"/webhooks/onfon/inbound{query}", json=body, csrf=False).status_code == 403
    assert everything() == before


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        {"message": "no sender"},
        {"from": "254712345678"},
        {"from": "call me", "message": "Hi"},
        [{"from": "254712345678", "message": "fine", "id": "MO-1"}, {"from": "254712345678"}],
    ],
)
def test_a_malformed_onfon_inbound_is_a_400_and_keeps_nothing(client, tenant, onfon, body):
    before = everything()
    url = "/webhooks/onfon/inbound?token=onfon-token-a"
    if isinstance(body, str):
        response = client.post(url, data=body, content_type="application/json", csrf=False)
    else:
        response = client.post(url, json=body, csrf=False)
    assert response.status_code == 400
    assert everything() == before


def test_a_shared_onfon_account_routes_incoming_sms_by_the_short_code_or_sender_id(client, tenant, other_tenant, onfon):
    make_channel(
        other_tenant.id, "onfon", "onfon-token-b", credentials=onfon.credentials, config={"sender_id": "SHOP_B"}
    )
    make_channel(  # not on the same account: naming its sender ID must not route anything to it
        other_tenant.id, "onfon", "onfon-token-c", credentials={**onfon.credentials, "api_key": "x"},
        config={"sender_id": "SHOP_C"},
    )  # fmt: skip
    url = "/webhooks/onfon/inbound?token=onfon-token-a"
    for n, to in enumerate(("SHOP_B", "shop_b", "ACME", "SHOP_C", "")):
        body = {"from": "254712345678", "to": to, "message": f"to {to}", "id": f"MO-{n}"}
        assert client.post(url, json=body, csrf=False).status_code == 200

    assert [m.body for m in inbound_messages(other_tenant.id)] == ["to SHOP_B", "to shop_b"]
    assert [m.body for m in inbound_messages(tenant.id)] == ["to ACME", "to SHOP_C", "to "]


# ------------------------------------------------------------------------------------------------ Twilio


def twilio_inbound(twilio, **params) -> Callback:
    values = {
        "MessageSid": "SM" + "a" * 32,
        "AccountSid": twilio.account_sid,
        "From": CUSTOMER,
        "To": twilio.from_number,
        "Body": "Hello there",
        "NumMedia": "0",
        "SmsStatus": "received",
    }
    values.update(params)
    return signed_form_callback(f"{BASE}/webhooks/twilio/inbound", twilio.auth_token, values)


def twilio_status(twilio, sid: str, status: str, **params) -> Callback:
    values = {
        "MessageSid": sid,
        "MessageStatus": status,
        "AccountSid": twilio.account_sid,
        "From": twilio.from_number,
        "To": CUSTOMER,
    }
    values.update(params)
    return signed_form_callback(f"{BASE}/webhooks/twilio/status", twilio.auth_token, values)


def test_twilio_status_callbacks_from_the_simulator_deliver_and_fail_messages(client, tenant, twilio):
    campaign = make_campaign(tenant.id)
    callback_url = f"{BASE}/webhooks/twilio/status"
    delivered = dispatch(twilio.channel, "+254712345600", campaign.id, callback_url=callback_url)
    failed = dispatch(twilio.channel, "+254712345601", campaign.id, callback_url=callback_url)

    responses = [call(client, callback) for callback in twilio.take_callbacks()]
    assert [r.status_code for r in responses] == [200] * 4  # sent + final, for each
    assert {(r.mimetype, r.get_data(as_text=True)) for r in responses} == {("text/xml", TWIML)}

    assert (status_of(delivered), status_of(failed)) == ("delivered", "failed")
    assert everything()[1] == ((1, 1),)
    db.session.expire_all()
    assert (
        db.session.get(Message, failed.id).error_message
        == "The handset is unreachable (switched off or out of coverage)."
    )


def test_twilio_status_out_of_order_and_replayed(client, tenant, twilio):
    message = make_message(tenant.id, "SM1", provider="twilio")
    for status in ("delivered", "sent", "delivered", "undelivered", "queued"):
        assert call(client, twilio_status(twilio, "SM1", status)).status_code == 200
    assert status_of(message) == "delivered"
    assert events() == ["message.delivered"]


def test_twilio_inbound_from_the_simulator_is_recorded_once_and_answered_with_empty_twiml(client, tenant, twilio):
    (callback,) = twilio.inject_inbound(sender=CUSTOMER, text="What time do you open?")
    twilio.take_callbacks()
    for _ in range(2):
        response = call(client, callback)
        assert (response.status_code, response.mimetype, response.get_data(as_text=True)) == (200, "text/xml", TWIML)
    (message,) = inbound_messages(tenant.id)
    assert (message.body, message.recipient, message.provider) == (
        "What time do you open?",
        twilio.from_number,
        "twilio",
    )


def tampered(callback: Callback, **changes: str) -> Callback:
    """The same signed callback with form fields changed or added after signing."""
    form = dict(parse_qsl(callback.body.decode()))
    form.update(changes)
    return Callback(callback.method, callback.url, callback.headers, urlencode(form).encode())


@pytest.mark.parametrize("mischief", ["body", "extra_field", "wrong_token", "no_header", "other_url", "query"])
def test_a_twilio_webhook_that_fails_its_signature_is_refused(client, tenant, twilio, mischief):
    genuine = twilio_inbound(twilio)
    if mischief == "body":
        forged = tampered(genuine, Body="Send me your balance")
    elif mischief == "extra_field":
        forged = tampered(genuine, Extra="1")
    elif mischief == "wrong_token":
        forged = twilio_inbound(TwilioSimulator(auth_token="not-the-auth-token"), AccountSid=twilio.account_sid)
    elif mischief == "no_header":
        forged = Callback("POST", genuine.url, {"Content-Type": genuine.headers["Content-Type"]}, genuine.body)
    elif mischief == "other_url":  # a genuine status callback posted to the inbound URL
        status = twilio_status(twilio, "SM1", "received")
        forged = Callback("POST", genuine.url, status.headers, status.body)
    else:
        forged = Callback("POST", genuine.url + "?x=1", genuine.headers, genuine.body)
    before = everything()
    assert call(client, forged).status_code == 403
    assert everything() == before


def test_twilio_webhooks_for_an_unknown_account_are_refused(client, tenant, twilio):
    stranger = signed_form_callback(
        f"{BASE}/webhooks/twilio/inbound",
        twilio.auth_token,
        {"MessageSid": "SM9", "AccountSid": "AC" + "9" * 32, "From": CUSTOMER, "To": "+1500", "Body": "x"},
    )
    assert call(client, stranger).status_code == 403
    assert inbound_messages(tenant.id) == []


@pytest.mark.parametrize("drop", ["Body", "From", "MessageSid", "AccountSid"])
def test_a_signed_but_incomplete_twilio_inbound_is_a_400(client, tenant, twilio, drop):
    values = {"MessageSid": "SM1", "AccountSid": twilio.account_sid, "From": CUSTOMER, "To": "+1", "Body": "x"}
    del values[drop]
    callback = signed_form_callback(f"{BASE}/webhooks/twilio/inbound", twilio.auth_token, values)
    assert call(client, callback).status_code == 400
    assert inbound_messages(tenant.id) == []


def test_a_signed_status_without_a_status_is_a_400(client, tenant, twilio):
    callback = signed_form_callback(
        f"{BASE}/webhooks/twilio/status", twilio.auth_token, {"MessageSid": "SM1", "AccountSid": twilio.account_sid}
    )
    assert call(client, callback).status_code == 400


def test_one_twilio_account_shared_by_two_tenants_reaches_each_by_its_number(client, tenant, other_tenant, twilio):
    make_channel(
        other_tenant.id, "twilio", "twilio-b", credentials=twilio.credentials, config={"from_number": "+15005550007"}
    )
    theirs = make_message(other_tenant.id, "SM-B", provider="twilio")

    assert call(client, twilio_inbound(twilio, To="+15005550007", MessageSid="SM-IN-B")).status_code == 200
    assert call(client, twilio_inbound(twilio, MessageSid="SM-IN-A")).status_code == 200
    assert call(client, twilio_status(twilio, "SM-B", "delivered", From="+15005550007")).status_code == 200

    assert [m.provider_message_id for m in inbound_messages(other_tenant.id)] == ["SM-IN-B"]
    assert [m.provider_message_id for m in inbound_messages(tenant.id)] == ["SM-IN-A"]
    assert status_of(theirs) == "delivered"


def test_twilio_signatures_cover_the_public_url_not_the_internal_one(app, client, tenant, twilio, monkeypatch):
    """Behind a TLS-terminating proxy the app sees http://internal; Twilio signed https://public."""
    monkeypatch.setitem(app.config, "BASE_URL", "https://sms.example.co.ke")
    public = signed_form_callback(
        "https://sms.example.co.ke/webhooks/twilio/inbound",
        twilio.auth_token,
        {"MessageSid": "SM1", "AccountSid": twilio.account_sid, "From": CUSTOMER, "To": "+1", "Body": "x"},
    )
    assert call(client, twilio_inbound(twilio)).status_code == 403  # signed for http://localhost
    assert call(client, public).status_code == 200


# ----------------------------------------------------------------------------------------- WhatsApp Cloud


def test_meta_verification_handshake_echoes_the_challenge(client, meta):
    response = call(client, subscription_request(f"{BASE}/webhooks/whatsapp", "meta-verify-a", "1158201444"))
    assert (response.status_code, response.get_data(as_text=True)) == (200, "1158201444")


@pytest.mark.parametrize("token", ["", "meta-verify-", "onfon-token-a", "META-VERIFY-A"])
def test_meta_verification_with_a_wrong_token_is_refused(client, tenant, meta, token):
    make_channel(tenant.id, "onfon", "onfon-token-a", credentials={"access_key": "a", "api_key": "b", "client_id": "c"})
    assert call(client, subscription_request(f"{BASE}/webhooks/whatsapp", token)).status_code == 403


def test_meta_verification_needs_subscribe_mode(client, meta):
    query = urlencode({"hub.mode": "unsubscribe", "hub.challenge": "1", "hub.verify_token": "meta-verify-a"})
    assert client.get(f"/webhooks/whatsapp?{query}").status_code == 403


def test_meta_statuses_from_the_simulator_even_reversed_and_duplicated(client, tenant, meta):
    meta.duplicate_statuses = meta.reverse_statuses = True
    campaign = make_campaign(tenant.id)
    template = {"template_name": "hello_world", "template_language": "en_US"}
    message = dispatch(meta.channel, CUSTOMER, campaign.id, channel="whatsapp", **template)

    statuses = replay(client, meta)
    assert statuses and set(statuses) == {200}
    assert status_of(message) == "delivered"
    assert everything()[1] == ((1, 0),)
    assert events() == ["message.delivered"]


def test_meta_failed_status_records_metas_reason(client, tenant, meta):
    message = make_message(tenant.id, "wamid.F", provider="whatsapp_cloud", channel="whatsapp")
    payload = webhook_payload(
        meta.phone_number_id,
        meta.display_number,
        statuses=[status_item("wamid.F", "failed", "254712345678", error=131026)],
    )
    assert call(client, signed_webhook(f"{BASE}/webhooks/whatsapp", meta.app_secret, payload)).status_code == 200
    db.session.expire_all()
    failed = db.session.get(Message, message.id)
    assert (failed.status, failed.meta["delivery"]["error_code"]) == ("failed", "131026")
    assert "not on WhatsApp" in failed.error_message


def test_meta_inbound_from_the_simulator_is_recorded_once_with_the_profile_name(client, tenant, meta):
    (callback,) = meta.inject_inbound(sender="254712345678", text="Habari! Is the shop open?", name="Jane")
    meta.take_callbacks()
    assert [call(client, callback).status_code for _ in range(3)] == [200, 200, 200]

    (message,) = inbound_messages(tenant.id)
    assert (message.channel, message.sender, message.body) == ("whatsapp", CUSTOMER, "Habari! Is the shop open?")
    db.session.expire_all()
    assert db.session.scalar(sa.select(Contact.name)) == "Jane"
    assert events() == ["message.received"]


@pytest.mark.parametrize("mischief", ["body", "secret", "no_header", "bare_hex", "other_number"])
def test_a_meta_webhook_that_fails_its_signature_is_refused(client, tenant, other_tenant, meta, mischief):
    make_channel(  # a second tenant's number under another Meta app
        other_tenant.id, "whatsapp_cloud", "meta-verify-b", name="whatsapp",
        credentials={"access_token": "t", "app_secret": "other-secret", "phone_number_id": "2222"},
    )  # fmt: skip
    (genuine,) = meta.inject_inbound(sender="254712345678", text="Hi")
    meta.take_callbacks()
    headers = dict(genuine.headers)
    body = genuine.body
    if mischief == "body":
        body = body.replace(b"Hi", b"Yo")
    elif mischief == "secret":
        headers = signed_webhook(genuine.url, "not-the-secret", json.loads(body)).headers
    elif mischief == "no_header":
        del headers["X-Hub-Signature-256"]
    elif mischief == "bare_hex":
        headers["X-Hub-Signature-256"] = headers["X-Hub-Signature-256"].removeprefix("sha256=")
    else:  # the right signature for our app, claiming the other tenant's number
        body = body.replace(meta.phone_number_id.encode(), b"2222")
        headers = signed_webhook(genuine.url, meta.app_secret, json.loads(body)).headers
        body = signed_webhook(genuine.url, meta.app_secret, json.loads(body)).body
    before = everything()
    assert call(client, Callback("POST", genuine.url, headers, body)).status_code == 403
    assert everything() == before


def test_a_meta_webhook_for_an_unknown_number_is_refused(client, tenant, meta):
    payload = webhook_payload("999", "15550000000", statuses=[status_item("wamid.X", "delivered", "2547")])
    assert call(client, signed_webhook(f"{BASE}/webhooks/whatsapp", meta.app_secret, payload)).status_code == 403


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[]", b'{"object": "page", "entry": []}', b'{"object": "whatsapp_business_account"}']
)
def test_a_malformed_meta_webhook_is_a_400(client, tenant, meta, raw):
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(meta.app_secret, raw)}
    before = everything()
    assert call(client, Callback("POST", f"{BASE}/webhooks/whatsapp", headers, raw)).status_code == 400
    assert everything() == before


def test_a_meta_webhook_without_message_changes_is_acknowledged(client, tenant, meta):
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "account_update", "value": {}}]}],
    }
    before = everything()
    assert call(client, signed_webhook(f"{BASE}/webhooks/whatsapp", meta.app_secret, payload)).status_code == 200
    assert everything() == before


def test_one_meta_webhook_for_two_numbers_reaches_each_tenant(client, tenant, other_tenant, meta):
    """One Meta app, two tenants' numbers: Meta may batch both numbers' changes into one signed call."""
    make_channel(
        other_tenant.id, "whatsapp_cloud", "meta-verify-b", name="whatsapp",
        credentials={**meta.credentials, "phone_number_id": "2222"},
    )  # fmt: skip
    ours = make_message(tenant.id, "wamid.A", provider="whatsapp_cloud", channel="whatsapp")
    theirs = make_message(other_tenant.id, "wamid.B", provider="whatsapp_cloud", channel="whatsapp")
    first = webhook_payload(meta.phone_number_id, "15550984277", statuses=[status_item("wamid.A", "delivered", "2547")])
    second = webhook_payload(
        "2222",
        "15550000002",
        statuses=[status_item("wamid.B", "delivered", "2547")],
        contacts=[{"profile": {"name": "Otieno"}, "wa_id": "254722000111"}],
        messages=[
            {
                "from": "254722000111",
                "id": "wamid.IN",
                "timestamp": "1694427240",
                "type": "text",
                "text": {"body": "Niaje"},
            }
        ],
    )
    both = {"object": "whatsapp_business_account", "entry": first["entry"] + second["entry"]}
    assert call(client, signed_webhook(f"{BASE}/webhooks/whatsapp", meta.app_secret, both)).status_code == 200

    assert (status_of(ours), status_of(theirs)) == ("delivered", "delivered")
    assert [m.body for m in inbound_messages(other_tenant.id)] == ["Niaje"]
    assert inbound_messages(tenant.id) == []


# ------------------------------------------------------------------------------------------------ UltraMsg


def test_ultramsg_acks_from_the_simulator_deliver_the_message_once(client, tenant, ultramsg):
    campaign = make_campaign(tenant.id)
    message = dispatch(ultramsg.channel, CUSTOMER, campaign.id, channel="whatsapp")
    statuses = replay(client, ultramsg)  # message_create, then acks server, device, read
    assert statuses == [200, 200, 200, 200]
    assert status_of(message) == "delivered"
    assert everything()[1] == ((1, 0),)
    assert inbound_messages(tenant.id) == []  # the message_create echo of our own send is not an inbound


def test_ultramsg_inbound_is_recorded_once_and_echoes_are_ignored(client, tenant, ultramsg):
    (incoming,) = ultramsg.inject_inbound(sender="254712345678", text="Niko na swali", name="Achieng")
    (echo,) = ultramsg.inject_inbound(sender="254712345678", text="our own", from_me=True)
    ultramsg.take_callbacks()
    assert [call(client, cb).status_code for cb in (incoming, incoming, echo)] == [200, 200, 200]

    (message,) = inbound_messages(tenant.id)
    assert (message.channel, message.body, message.meta["sender_name"]) == ("whatsapp", "Niko na swali", "Achieng")
    assert events() == ["message.received"]


@pytest.mark.parametrize("token", [None, "ultramsg-token-", "onfon-token-a"])
def test_ultramsg_with_a_wrong_token_is_refused(client, tenant, ultramsg, token):
    make_channel(tenant.id, "onfon", "onfon-token-a", credentials={"access_key": "a", "api_key": "b", "client_id": "c"})
    url = f"{BASE}/webhooks/ultramsg" + (f"?token={token}" if token is not None else "")
    data = {"id": "false_254712345678@c.us_1", "from": "254712345678@c.us", "body": "Hi", "fromMe": False}
    before = everything()
    assert call(client, event_callback(url, "message_received", data)).status_code == 403
    assert everything() == before


@pytest.mark.parametrize(
    "raw", [b"", b"nonsense", b'{"event_type": "message_received"}', b'{"event_type": "message_ack", "data": {}}']
)
def test_a_malformed_ultramsg_event_is_a_400(client, tenant, ultramsg, raw):
    callback = Callback(
        "POST", f"{BASE}/webhooks/ultramsg?token=ultramsg-token-a", {"Content-Type": "application/json"}, raw
    )
    assert call(client, callback).status_code == 400


# ------------------------------------------------------------------------------------------------ Mobitech


def test_mobitech_dlrs_from_the_simulator(client, tenant, mobitech):
    campaign = make_campaign(tenant.id)
    delivered = dispatch(mobitech.channel, "+254712345600", campaign.id)
    failed = dispatch(mobitech.channel, "+254712345601", campaign.id)
    callbacks = mobitech.take_callbacks()
    assert [call(client, cb).status_code for cb in callbacks + callbacks] == [200] * 4  # each replayed once
    assert (status_of(delivered), status_of(failed)) == ("delivered", "failed")
    assert everything()[1] == ((1, 1),)
    assert sorted(events()) == ["message.delivered", "message.failed"]


def test_mobitech_wrong_token_and_malformed(client, tenant, mobitech):
    make_message(tenant.id, "100001", provider="mobitech")
    body = {"messageId": "100001", "dlrStatus": 1}
    before = everything()
    assert client.post("/webhooks/mobitech/dlr?token=nope", json=body, csrf=False).status_code == 403
    assert client.post("/webhooks/mobitech/dlr", json=body, csrf=False).status_code == 403
    assert (
        client.post("/webhooks/mobitech/dlr?token=mobitech-token-a", json={"dlrStatus": 1}, csrf=False).status_code
        == 400
    )
    assert everything() == before


# ------------------------------------------------------------------------------------------- all vendors


def test_oversize_bodies_are_refused_before_anything_is_read(client, tenant, onfon):
    huge = json.dumps({"from": "254712345678", "message": "x" * (2 * 1024 * 1024), "id": "MO-1"})
    response = client.post(
        "/webhooks/onfon/inbound?token=onfon-token-a", data=huge, content_type="application/json", csrf=False
    )
    assert response.status_code == 413
    assert inbound_messages(tenant.id) == []


def test_a_channel_with_incomplete_settings_refuses_its_webhooks(client, tenant):
    make_channel(tenant.id, "onfon", "onfon-broken", credentials={"access_key": "a"})
    make_message(tenant.id, "OM-1")
    query = urlencode({"token": "onfon-broken", **dlr_params("OM-1", CUSTOMER)})
    response = client.get(f"/webhooks/onfon/dlr?{query}")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "channel_not_configured"


def test_concurrent_dlrs_through_the_endpoint_count_each_message_once(app, work_app, tenant, onfon):
    """Eight clients post the same 20 reports (each twice, interleaved with late ENROUTEs) at the same time."""
    campaign = make_campaign(tenant.id)
    total = 20
    for n in range(total):
        make_message(tenant.id, f"OM-{n}", campaign_id=campaign.id)
    urls = [
        "/webhooks/onfon/dlr?" + urlencode({"token": "onfon-token-a", **dlr_params(f"OM-{n}", CUSTOMER, status)})
        for n in range(total)
        for status in ("UNDELIV" if n % 5 == 0 else "DELIVRD", "ENROUTE")
    ]
    db.session.rollback()
    barrier, errors, codes = threading.Barrier(8), [], []

    def work(k: int) -> None:
        try:
            with work_app.app_context():
                http = app.test_client()
                barrier.wait()
                for url in urls[k % 3 :] + urls[: k % 3]:
                    codes.append(http.get(url).status_code)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert set(codes) == {200} and len(codes) == 8 * len(urls)
    assert everything()[1] == ((16, 4),)
    assert sorted(events()) == ["message.delivered"] * 16 + ["message.failed"] * 4
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 1  # the campaign's first failure


def test_twilio_calls_the_running_app_over_http_with_real_signatures(app, live_server, tenant, monkeypatch):
    """The simulator POSTs its signed callbacks over a real socket to the served app, whose public URL it is."""
    monkeypatch.setitem(app.config, "BASE_URL", live_server)
    with TwilioSimulator(inbound_url=f"{live_server}/webhooks/twilio/inbound") as sim:
        channel = make_channel(tenant.id, "twilio", "twilio-a", credentials=sim.credentials, config=sim.config())
        message = dispatch(channel, "+254712345600", callback_url=f"{live_server}/webhooks/twilio/status")
        sim.inject_inbound(sender=CUSTOMER, text="Asante!")
        assert sim.deliver_callbacks() == [200, 200, 200]  # sent, delivered, the incoming SMS
    assert status_of(message) == "delivered"
    assert [m.body for m in inbound_messages(tenant.id)] == ["Asante!"]
