"""Twilio MMS (media kept as links, shown in the inbox thread, never fetched) and Mobitech's dlrStatus values."""

from __future__ import annotations

import json
import re

import pytest

from bulkapp.extensions import db
from bulkapp.models import Event, Message
from tests.blueprints.test_vendor_webhooks import (
    BASE,
    call,
    everything,
    inbound_messages,
    mobitech,  # noqa: F401 - fixtures
    status_of,
    twilio,  # noqa: F401
)
from tests.services.messaging.test_delivery import make_campaign, make_message
from tests.simulators.twilio import signed_form_callback

PHOTO = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
RECEIPT = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2"
MOBITECH_DLR = "/webhooks/mobitech/dlr?token=mobitech-token-a"


def inbound_call(twilio, **params):  # noqa: F811
    base = {"MessageSid": "MM1", "AccountSid": twilio.account_sid, "From": "+254712345678", "To": twilio.from_number}
    return signed_form_callback(f"{BASE}/webhooks/twilio/inbound", twilio.auth_token, {**base, **params})


# ----------------------------------------------------------------------------------------------- Twilio MMS


def test_an_mms_with_an_empty_body_keeps_its_media_urls(client, tenant, twilio):  # noqa: F811
    twilio.inject_inbound(sender="+254712345678", text="", media=[PHOTO, RECEIPT])
    assert [call(client, cb).status_code for cb in twilio.take_callbacks()] == [200]
    (message,) = inbound_messages(tenant.id)
    assert (message.body, message.meta["kind"], message.meta["media_urls"]) == ("", "media", [PHOTO, RECEIPT])
    event = db.session.query(Event).one()
    assert event.data["media_urls"] == [PHOTO, RECEIPT]
    db.session.rollback()


def test_an_mms_without_a_body_field_is_accepted(client, tenant, twilio):  # noqa: F811
    response = call(client, inbound_call(twilio, NumMedia="1", MediaUrl0=PHOTO))
    assert response.status_code == 200
    (message,) = inbound_messages(tenant.id)
    assert message.meta["media_urls"] == [PHOTO]


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,<b>x</b>", "ftp://example.com/x", "//evil.example/x", ""]
)
def test_only_web_links_are_kept_as_media(client, tenant, twilio, url):  # noqa: F811
    response = call(client, inbound_call(twilio, Body="look", NumMedia="2", MediaUrl0=url, MediaUrl1=PHOTO))
    assert response.status_code == 200
    (message,) = inbound_messages(tenant.id)
    assert message.meta["media_urls"] == [PHOTO]


def test_media_without_a_body_or_a_usable_link_is_malformed(client, tenant, twilio):  # noqa: F811
    before = everything()
    response = call(client, inbound_call(twilio, NumMedia="1", MediaUrl0="javascript:alert(1)"))
    assert response.status_code == 400
    assert everything() == before


def test_a_plain_sms_has_no_media(client, tenant, twilio):  # noqa: F811
    assert call(client, inbound_call(twilio, Body="Hi", NumMedia="0")).status_code == 200
    (message,) = inbound_messages(tenant.id)
    assert "media_urls" not in message.meta


def test_the_inbox_thread_shows_media_as_safe_links(client, login, user, tenant, twilio):  # noqa: F811
    twilio.inject_inbound(sender="+254712345678", text="Here is the receipt", media=[PHOTO])
    twilio.inject_inbound(sender="+254712345678", text="", media=[RECEIPT])
    for callback in twilio.take_callbacks():
        assert call(client, callback).status_code == 200
    conversation_id = inbound_messages(tenant.id)[0].conversation_id
    login(user)
    html = client.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    links = re.findall(r'<a href="([^"]+)" target="_blank" rel="noopener noreferrer nofollow">Attachment 1</a>', html)
    assert links == [PHOTO, RECEIPT]
    assert "Here is the receipt" in html
    assert html.count('class="inbox-bubble"') == 1  # the media-only message has no empty bubble


# ------------------------------------------------------------------------------------------- Mobitech DLRs


@pytest.mark.parametrize(
    ("dlr_status", "expected"),
    [(1, "delivered"), ("1", "delivered"), (2, "failed"), ("2", "failed"), (3, "sent"), ("3", "sent")],
)
def test_every_documented_mobitech_dlr_status_is_mapped(client, tenant, mobitech, dlr_status, expected):  # noqa: F811
    message = make_message(tenant.id, "77", provider="mobitech", status="sending")
    body = {"messageId": 77, "dlrStatus": dlr_status, "dlrDesc": "x", "destaddr": "254712345678"}
    response = client.post(MOBITECH_DLR, json=body, csrf=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert status_of(message) == expected


@pytest.mark.parametrize("dlr_status", [0, "0", 9, "PENDING"])
def test_mobitech_dlr_status_0_and_unknown_values_change_nothing(client, tenant, mobitech, dlr_status):  # noqa: F811
    make_message(tenant.id, "77", provider="mobitech", campaign_id=make_campaign(tenant.id).id)
    before = everything()
    body = json.dumps({"messageId": "77", "dlrStatus": dlr_status, "dlrDesc": "SUBMITTED"})
    response = client.post(MOBITECH_DLR, data=body, content_type="application/json", csrf=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert everything() == before


def test_mobitech_dlr_status_0_by_form_is_accepted(client, tenant, mobitech):  # noqa: F811
    message = make_message(tenant.id, "78", provider="mobitech")
    response = client.post(MOBITECH_DLR, data={"messageId": "78", "dlrStatus": "0"}, csrf=False)
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(Message, message.id).status == "sent"
    db.session.rollback()


@pytest.mark.parametrize("body", [{"messageId": "77"}, {"dlrStatus": 0}, {"messageId": "77", "dlrStatus": None}])
def test_a_mobitech_dlr_without_id_or_status_is_still_a_400(client, tenant, mobitech, body):  # noqa: F811
    response = client.post(MOBITECH_DLR, json=body, csrf=False)
    assert response.status_code == 400
