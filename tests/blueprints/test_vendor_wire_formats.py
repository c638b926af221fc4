"""Vendor wire formats on the webhook endpoints: Onfon's two DLR shapes (its own and Jasmin's, with the
``ACK/Jasmin`` answer), inbound pushes by GET, errors in each vendor's format (never an HTML page), and
hostile characters (NUL, lone surrogates) recorded with the bad characters replaced instead of a 500."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from bulkapp.extensions import db
from bulkapp.models import Message
from tests.blueprints.test_vendor_webhooks import (
    BASE,
    CUSTOMER,
    call,
    dispatch,
    events,
    everything,
    inbound_messages,
    meta,  # noqa: F401 - fixtures
    mobitech,  # noqa: F401
    status_of,
    twilio,  # noqa: F401
    ultramsg,  # noqa: F401
)
from tests.services.messaging.test_delivery import make_campaign, make_channel, make_message
from tests.simulators.onfon import OnfonSimulator, dlr_params, jasmin_dlr_params, jasmin_mo_params
from tests.simulators.twilio import signed_form_callback
from tests.simulators.ultramsg import event_callback
from tests.simulators.whatsapp_cloud import signed_webhook, webhook_payload

TOKEN = "onfon-token-a"
DLR = f"/webhooks/onfon/dlr?token={TOKEN}"
INBOUND = f"/webhooks/onfon/inbound?token={TOKEN}"
REPLACED = "\ufffd"


@pytest.fixture(params=["GET", "POST"])
def jasmin(request, tenant):
    """Onfon's simulator speaking Jasmin's push shape, by GET query or form POST."""
    with OnfonSimulator(
        shape="jasmin", jasmin_method=request.param, dlr_url=f"{BASE}{DLR}", inbound_url=f"{BASE}{INBOUND}"
    ) as sim:
        sim.channel = make_channel(tenant.id, "onfon", TOKEN, credentials=sim.credentials, config=sim.config())
        yield sim


@pytest.fixture
def onfon_channel(tenant):
    with OnfonSimulator(dlr_url=f"{BASE}{DLR}", inbound_url=f"{BASE}{INBOUND}") as sim:
        sim.channel = make_channel(tenant.id, "onfon", TOKEN, credentials=sim.credentials, config=sim.config())
        yield sim


def not_html(response) -> None:
    assert response.mimetype in ("application/json", "text/plain"), response.mimetype
    assert b"<html" not in response.data.lower() and b"<!doctype" not in response.data.lower()


# ---------------------------------------------------------------------------------- Onfon: Jasmin's shape


def test_jasmin_delivery_reports_from_the_simulator_are_acknowledged_and_applied(client, tenant, jasmin):
    campaign = make_campaign(tenant.id)
    delivered = dispatch(jasmin.channel, "+254712345600", campaign.id)
    failed = dispatch(jasmin.channel, "+254712345601", campaign.id)  # ...01: undelivered

    callbacks = jasmin.take_callbacks()
    assert {cb.method for cb in callbacks} == {jasmin.jasmin_method}
    responses = [call(client, cb) for cb in callbacks]
    assert [(r.status_code, r.get_data(as_text=True), r.mimetype) for r in responses] == [
        (200, "ACK/Jasmin", "text/plain")
    ] * 2

    assert (status_of(delivered), status_of(failed)) == ("delivered", "failed")
    assert everything()[1] == ((1, 1),)
    db.session.expire_all()
    assert db.session.get(Message, failed.id).error_message == (
        "The network could not deliver the message to the handset."
    )


def test_onfon_own_shape_still_gets_json_and_both_shapes_apply_alike(client, tenant, onfon_channel):
    own = make_message(tenant.id, "OM-1")
    theirs = make_message(tenant.id, "OM-2")
    response = client.get(f"{DLR}&{urlencode(dlr_params('OM-1', CUSTOMER))}")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})
    response = client.post(DLR, data=jasmin_dlr_params("OM-2", done_date="2604080931"), csrf=False)
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ACK/Jasmin")
    db.session.expire_all()
    # doneDate 2026-04-08 09:31 and donedate 2604080931 are both Nairobi time (UTC+3)
    assert {db.session.get(Message, m.id).delivered_at for m in (own, theirs)} == {
        datetime(2026, 4, 8, 6, 31, tzinfo=UTC)
    }


@pytest.mark.parametrize(
    ("status", "expected", "error"),
    [
        ("ESME_ROK", "sent", None),
        ("ESME_RINVNUMDESTS", "failed", "The SMS centre refused the message (ESME_RINVNUMDESTS)."),
    ],
)
def test_a_level_1_jasmin_report_carries_the_sms_centres_answer(client, tenant, onfon_channel, status, expected, error):
    message = make_message(tenant.id, "OM-1", status="sending")
    response = client.get(f"{DLR}&{urlencode(jasmin_dlr_params('OM-1', status, level=1))}")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ACK/Jasmin")
    assert status_of(message) == expected
    db.session.expire_all()
    assert db.session.get(Message, message.id).error_message == error


def test_a_replayed_jasmin_report_is_acknowledged_each_time_and_applied_once(client, tenant, onfon_channel):
    make_message(tenant.id, "OM-1", campaign_id=make_campaign(tenant.id).id)
    url = f"{DLR}&{urlencode(jasmin_dlr_params('OM-1'))}"
    assert client.get(url).get_data(as_text=True) == "ACK/Jasmin"
    once = everything()
    assert [client.get(url).get_data(as_text=True) for _ in range(3)] == ["ACK/Jasmin"] * 3
    assert everything() == once
    assert events() == ["message.delivered"]


@pytest.mark.parametrize("params", [{"message_status": "DELIVRD", "level": "2"}, {"id": "OM-1", "id_smsc": "1"}])
def test_a_malformed_jasmin_report_is_a_plain_text_400(client, tenant, onfon_channel, params):
    make_message(tenant.id, "OM-1")
    before = everything()
    response = client.get(f"{DLR}&{urlencode(params)}")
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) != "ACK/Jasmin"  # Jasmin keeps it to retry, we keep nothing
    assert everything() == before


def test_a_jasmin_report_with_a_wrong_token_is_refused_in_plain_text(client, tenant, onfon_channel):
    make_message(tenant.id, "OM-1")
    before = everything()
    response = client.get(f"/webhooks/onfon/dlr?token=wrong&{urlencode(jasmin_dlr_params('OM-1'))}")
    assert (response.status_code, response.mimetype) == (403, "text/plain")
    assert everything() == before


def test_jasmin_incoming_sms_from_the_simulator_lands_in_the_inbox(client, tenant, jasmin):
    jasmin.inject_inbound(sender="254712345678", text="Mnauza unga?", to="ACME")
    (response,) = [call(client, cb) for cb in jasmin.take_callbacks()]
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ACK/Jasmin")
    (message,) = inbound_messages(tenant.id)
    assert (message.sender, message.body, message.provider) == (CUSTOMER, "Mnauza unga?", "onfon")


def test_onfon_inbound_accepts_a_get_push_in_its_own_shape(client, tenant, onfon_channel):
    query = urlencode({"from": "254712345678", "to": "ACME", "message": "Habari", "id": "MO-9"})
    response = client.get(f"{INBOUND}&{query}")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})
    assert [(m.body, m.provider_message_id) for m in inbound_messages(tenant.id)] == [("Habari", "MO-9")]


def test_a_jasmin_mo_push_is_recorded_once_however_often_jasmin_resends_it(client, tenant, onfon_channel):
    url = f"{INBOUND}&{urlencode(jasmin_mo_params('MO-1', '+254712345678', 'ACME', 'Hi'))}"
    assert [client.get(url).get_data(as_text=True) for _ in range(3)] == ["ACK/Jasmin"] * 3
    assert len(inbound_messages(tenant.id)) == 1


# ------------------------------------------------------------------------- errors in the vendor's format


@pytest.mark.parametrize(
    ("method", "path", "status", "mimetype"),
    [
        ("GET", "/webhooks/nowhere", 404, "application/json"),
        ("POST", "/webhooks/onfon/nowhere?token=x", 404, "application/json"),
        ("GET", "/webhooks/mobitech/dlr", 405, "application/json"),
        ("PUT", "/webhooks/onfon/dlr", 405, "application/json"),
        ("GET", "/webhooks/twilio/inbound", 405, "text/plain"),
        ("GET", "/webhooks/ultramsg", 405, "application/json"),
        ("DELETE", "/webhooks/whatsapp", 405, "application/json"),
        ("GET", "/webhooks/mpesa/callback", 405, "application/json"),
        ("GET", "/webhooks/onfon/dlr?token=%00", 403, "application/json"),
        ("GET", f"/webhooks/onfon/dlr?token={TOKEN}&message_status=DELIVRD", 400, "text/plain"),
        ("GET", "/webhooks/nowhere?x=%00", 400, "application/json"),
    ],
)
def test_webhook_errors_answer_in_the_vendors_format_never_html(client, onfon_channel, method, path, status, mimetype):
    response = client.open(path, method=method, csrf=False)
    assert response.status_code == status
    assert response.mimetype == mimetype
    not_html(response)
    if mimetype == "application/json":
        assert set(response.get_json()["error"]) == {"code", "message"}


def test_an_oversized_webhook_body_is_a_413_in_json(client, onfon_channel):
    body = json.dumps({"from": "254712345678", "message": "x" * (1024 * 1024 + 10)})
    response = client.post(INBOUND, data=body, content_type="application/json", csrf=False)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"


def test_an_oversized_twilio_body_is_a_413_in_plain_text(client, twilio):  # noqa: F811
    body = urlencode({"AccountSid": "AC1", "Body": "x" * (1024 * 1024 + 10)})
    response = client.post(
        "/webhooks/twilio/inbound",
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": "x"},
        csrf=False,
    )
    assert (response.status_code, response.mimetype) == (413, "text/plain")


def test_a_failure_inside_a_webhook_is_a_json_500_not_a_page(app, client, tenant, onfon_channel, monkeypatch):
    from bulkapp.services.inbox import inbound

    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)  # as in production: the error handler answers

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(inbound, "record_inbound", broken)
    response = client.post(INBOUND, json={"from": "254712345678", "message": "Hi", "id": "MO-1"}, csrf=False)
    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "server_error"


# ------------------------------------------------------------------- NUL and lone surrogates: stored, replaced


@pytest.mark.parametrize("bad", ["\x00", "\ud800", "\udfff"])
def test_onfon_inbound_with_a_bad_character_in_message_or_to_is_recorded_with_it_replaced(
    client, tenant, onfon_channel, bad
):
    body = json.dumps({"from": "254712345678", "to": f"AC{bad}ME", "message": f"Hi{bad}there", "id": f"MO{bad}1"})
    response = client.post(INBOUND, data=body, content_type="application/json", csrf=False)
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})
    (message,) = inbound_messages(tenant.id)
    assert (message.body, message.recipient, message.provider_message_id) == (
        f"Hi{REPLACED}there",
        f"AC{REPLACED}ME",
        f"MO{REPLACED}1",
    )
    assert events() == ["message.received"]


def test_onfon_form_and_get_pushes_with_nul_are_recorded(client, tenant, onfon_channel):
    form = {"from": "254712345678", "message": "a\x00b", "id": "MO-1"}
    assert client.post(INBOUND, data=form, csrf=False).status_code == 200
    assert client.get(f"{INBOUND}&{urlencode({**form, 'id': 'MO-2'})}").status_code == 200
    assert [m.body for m in inbound_messages(tenant.id)] == [f"a{REPLACED}b"] * 2


@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
def test_an_onfon_dlr_with_a_bad_message_id_is_acknowledged(client, tenant, onfon_channel, bad):
    make_message(tenant.id, "OM-1")
    before = everything()
    body = json.dumps(dlr_params(f"OM{bad}1", CUSTOMER))
    response = client.post(DLR, data=body, content_type="application/json", csrf=False)
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})
    assert everything() == before  # no message has that id


def test_a_jasmin_dlr_with_nul_in_its_id_is_acknowledged(client, tenant, onfon_channel):
    query = urlencode(jasmin_dlr_params("OM\x001"))
    response = client.get(f"{DLR}&{query}")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ACK/Jasmin")


def test_twilio_inbound_with_nul_is_recorded_with_it_replaced(client, tenant, twilio):  # noqa: F811
    params = {
        "MessageSid": "SM\x001",
        "AccountSid": twilio.account_sid,
        "From": "+254712345678",
        "To": twilio.from_number,
        "Body": "Hi\x00",
        "NumMedia": "0",
    }
    response = call(client, signed_form_callback(f"{BASE}/webhooks/twilio/inbound", twilio.auth_token, params))
    assert response.status_code == 200
    (message,) = inbound_messages(tenant.id)
    assert (message.body, message.provider_message_id) == (f"Hi{REPLACED}", f"SM{REPLACED}1")


@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
def test_whatsapp_messages_and_statuses_with_bad_characters_are_acknowledged(client, tenant, meta, bad):  # noqa: F811
    number_id = meta.credentials["phone_number_id"]
    message = {
        "from": "254712345678",
        "id": f"wamid.IN{bad}",
        "timestamp": "1694427240",
        "type": "text",
        "text": {"body": f"Hi{bad}"},
    }
    contacts = [{"profile": {"name": f"Ja{bad}ne"}, "wa_id": "254712345678"}]
    statuses = [{"id": f"wamid.OUT{bad}", "status": "delivered", "timestamp": "1694492484", "recipient_id": "2547"}]
    payload = webhook_payload(number_id, "15550984277", messages=[message], contacts=contacts, statuses=statuses)
    response = call(client, signed_webhook(f"{BASE}/webhooks/whatsapp", meta.credentials["app_secret"], payload))
    assert response.status_code == 200, response.get_data(as_text=True)
    (stored,) = inbound_messages(tenant.id)
    assert (stored.body, stored.provider_message_id) == (f"Hi{REPLACED}", f"wamid.IN{REPLACED}")


def test_whatsapp_verify_token_with_nul_is_refused_not_a_500(client, meta):  # noqa: F811
    response = client.get("/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1&hub.verify_token=%00")
    assert response.status_code == 403
    not_html(response)


@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
def test_ultramsg_message_with_bad_characters_is_recorded(client, tenant, ultramsg, bad):  # noqa: F811
    data = {
        "id": f"false_254712345678@c.us_3EB0{bad}",
        "from": "254712345678@c.us",
        "to": "254700000000@c.us",
        "type": "chat",
        "body": f"Hi{bad}",
        "fromMe": False,
        "time": 1650002663,
        "pushname": f"E{bad}",
    }
    response = call(
        client, event_callback(f"{BASE}/webhooks/ultramsg?token=ultramsg-token-a", "message_received", data)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    (stored,) = inbound_messages(tenant.id)
    assert stored.body == f"Hi{REPLACED}"


@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
def test_a_mobitech_dlr_with_a_bad_message_id_is_acknowledged(client, tenant, mobitech, bad):  # noqa: F811
    body = json.dumps({"messageId": f"1{bad}", "dlrStatus": 1, "dlrDesc": f"DELIVRD{bad}"})
    response = client.post(
        "/webhooks/mobitech/dlr?token=mobitech-token-a", data=body, content_type="application/json", csrf=False
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def test_jasmin_pushes_over_http_are_acknowledged_by_the_running_app(live_server, tenant):
    """Real sockets: the simulator counts a push as received only on a 200 whose body is exactly ACK/Jasmin, and
    resends anything else (a wrong token here) until it gives up, as Jasmin does."""
    good, bad = f"{live_server}{DLR}", f"{live_server}/webhooks/onfon/dlr?token=wrong"
    with OnfonSimulator(shape="jasmin", dlr_url=good, inbound_url=f"{live_server}{INBOUND}") as sim:
        sim.callback_retries = 2
        channel = make_channel(tenant.id, "onfon", TOKEN, credentials=sim.credentials, config=sim.config())
        message = dispatch(channel, "+254712345600")
        sim.inject_inbound(sender="254712345678", text="Asante")
        assert sim.deliver_callbacks() == [200, 200]
        sim.dlr_url = bad
        dispatch(channel, "+254712345610")
        assert sim.deliver_callbacks() == [0]  # never acknowledged: refused three times
    assert status_of(message) == "delivered"
    assert [m.body for m in inbound_messages(tenant.id)] == ["Asante"]
