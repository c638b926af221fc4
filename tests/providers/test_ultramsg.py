"""UltraMsg adapter against the UltraMsg simulator, and the official webhook sample."""

from __future__ import annotations

import json

import pytest

from bulkapp.providers.base import (
    AuthenticationError,
    DeliveryStatus,
    MalformedPayload,
    OutboundMessage,
    SendStatus,
    TransientError,
    WebhookRequest,
)
from bulkapp.providers.ultramsg import UltraMsgProvider
from tests.simulators.base import CallbackReceiver
from tests.simulators.ultramsg import UltraMsgSimulator, event_callback

TOKEN = "ultramsg-channel-token"
OFFICIAL_INBOUND_SAMPLE = {
    "event_type": "message_received",
    "instanceId": "1150",
    "id": "",
    "referenceId": "",
    "data": {
        "id": "false_10172127174@c.us_3EB02E5EB89CE03FB034",
        "from": "10172127174@c.us",
        "to": "10172127170@c.us",
        "author": "",
        "pushname": "E.St",
        "ack": "",
        "type": "chat",
        "body": "Hi",
        "media": "",
        "fromMe": False,
        "isForwarded": False,
        "isMentioned": False,
        "quotedMsg": {},
        "mentionedIds": [],
        "time": 1650002663,
    },
}


@pytest.fixture
def ultramsg_sim():
    with UltraMsgSimulator(timeout_delay=1.0) as simulator:
        yield simulator


@pytest.fixture
def provider(ultramsg_sim):
    with UltraMsgProvider(ultramsg_sim.credentials, ultramsg_sim.config(), timeout=(2.0, 0.5)) as adapter:
        yield adapter


def wa(message_id: int, to: str, body: str = "Habari! Your order is ready.") -> OutboundMessage:
    return OutboundMessage(message_id, to, body, channel="whatsapp")


def json_request(payload: object, url: str = f"https://x/webhooks/ultramsg?token={TOKEN}") -> WebhookRequest:
    return WebhookRequest("POST", url, {"Content-Type": "application/json"}, json.dumps(payload).encode())


def test_send_with_our_id_as_reference(ultramsg_sim, provider):
    results = provider.send_batch([wa(41, "+254712345600"), wa(42, "+254712345610")])
    assert [(r.status, r.provider_message_id) for r in results] == [
        (SendStatus.ACCEPTED, "1"),
        (SendStatus.ACCEPTED, "2"),
    ]
    assert [m["referenceId"] for m in ultramsg_sim.messages] == ["41", "42"]
    assert [m["to"] for m in ultramsg_sim.messages] == ["254712345600@c.us", "254712345610@c.us"]


def test_refusals_in_both_shapes(provider):
    results = provider.send_batch([wa(1, "+254712345699"), wa(2, "+254712345688"), wa(3, "+254712345600", "x" * 4097)])
    assert [r.status for r in results] == [SendStatus.REJECTED] * 3
    assert results[0].reason == "UltraMsg refused the message: to: Invalid phone number"
    assert results[1].reason == "UltraMsg did not send the message: The recipient has blocked this number"
    assert results[2].code == "body_too_long"


def test_wrong_token_and_unknown_instance(ultramsg_sim):
    wrong_token = UltraMsgProvider({**ultramsg_sim.credentials, "token": "nope"}, ultramsg_sim.config())
    with pytest.raises(AuthenticationError) as caught:
        wrong_token.send_batch([wa(1, "+254712345600")])
    assert "Wrong token" in caught.value.vendor_message
    assert wrong_token.test_connection() == (
        False,
        "UltraMsg rejected the instance ID or token. (the provider said: Wrong token. Please provide token as a "
        "GET parameter.)",
    )

    unknown = UltraMsgProvider({**ultramsg_sim.credentials, "instance_id": "instance9"}, ultramsg_sim.config())
    with pytest.raises(AuthenticationError, match="does not know this instance"):
        unknown.send_batch([wa(1, "+254712345600")])


def test_disconnected_instance_queues_then_bursts_on_reconnect(ultramsg_sim, provider):
    ultramsg_sim.connected = False
    ultramsg_sim.webhook_url = "http://127.0.0.1:9/unused"
    ok, message = provider.test_connection()
    assert not ok and "not linked" in message
    [result] = provider.send_batch([wa(1, "+254712345600")])
    assert result.status is SendStatus.ACCEPTED
    assert ultramsg_sim.messages[0]["status"] == "queue" and ultramsg_sim.take_callbacks() == []

    ultramsg_sim.reconnect()
    assert ultramsg_sim.messages[0]["status"] == "sent"
    assert len(ultramsg_sim.take_callbacks()) == 4  # message_create + acks server, device, read
    assert provider.test_connection() == (True, "Connected to UltraMsg; WhatsApp is linked (connected).")


def test_timeout_unknown_and_busy_transient(provider):
    results = provider.send_batch([wa(1, "+254712345666"), wa(2, "+254712345600")])
    assert [r.status for r in results] == [SendStatus.UNKNOWN, SendStatus.DEFERRED]
    with pytest.raises(TransientError):
        provider.send_batch([wa(3, "+254712345655")])


def test_acks_over_http_are_delivery_reports(ultramsg_sim, provider):
    with CallbackReceiver() as receiver:
        ultramsg_sim.webhook_url = f"{receiver.url}/webhooks/ultramsg?token={TOKEN}"
        [ok, bad] = provider.send_batch([wa(7, "+254712345600"), wa(8, "+254712345601")])
        ultramsg_sim.deliver_callbacks()
        received = receiver.received
    requests = [WebhookRequest(cb.method, cb.url, cb.headers, cb.body) for cb in received]
    assert all(provider.verify_request(r, webhook_token=TOKEN) for r in requests)
    assert not provider.verify_request(requests[0], webhook_token="other")
    reports = [rep for r in requests for rep in provider.parse_delivery_report(r)]
    assert all(provider.parse_inbound(r) == [] for r in requests)  # message_create / acks are not inbound
    first = [(r.vendor_status, r.status) for r in reports if r.provider_message_id == ok.provider_message_id]
    assert first == [
        ("server", DeliveryStatus.SENT),
        ("device", DeliveryStatus.DELIVERED),
        ("read", DeliveryStatus.DELIVERED),
    ]
    assert {r.reference for r in reports if r.provider_message_id == ok.provider_message_id} == {"7"}
    assert [r.vendor_status for r in reports if r.provider_message_id == bad.provider_message_id] == ["server"]


def test_official_inbound_sample(provider):
    [message] = provider.parse_inbound(json_request(OFFICIAL_INBOUND_SAMPLE))
    assert (message.sender, message.to, message.text) == ("+10172127174", "+10172127170", "Hi")
    assert message.provider_message_id == "false_10172127174@c.us_3EB02E5EB89CE03FB034"
    assert message.sender_name == "E.St" and message.channel == "whatsapp"
    assert int(message.received_at.timestamp()) == 1650002663
    assert provider.parse_delivery_report(json_request(OFFICIAL_INBOUND_SAMPLE)) == []


def test_echoes_and_groups_are_ignored(ultramsg_sim, provider):
    ultramsg_sim.webhook_url = f"https://x/webhooks/ultramsg?token={TOKEN}"
    [echo] = ultramsg_sim.inject_inbound(sender="254712345678", text="sent from the phone", from_me=True)
    [kenyan] = ultramsg_sim.inject_inbound(sender="254712345678", text="Asante", name="Wanjiru")
    assert provider.parse_inbound(WebhookRequest(echo.method, echo.url, echo.headers, echo.body)) == []
    [message] = provider.parse_inbound(WebhookRequest(kenyan.method, kenyan.url, kenyan.headers, kenyan.body))
    assert (message.sender, message.text, message.sender_name) == ("+254712345678", "Asante", "Wanjiru")

    group = event_callback("https://x", "message_received", {**OFFICIAL_INBOUND_SAMPLE["data"], "from": "1203@g.us"})
    assert provider.parse_inbound(WebhookRequest(group.method, group.url, group.headers, group.body)) == []


@pytest.mark.parametrize(
    "payload",
    [{"data": {}}, {"event_type": "message_received"}, {"event_type": "message_received", "data": {"body": "x"}}, []],
)
def test_malformed_webhooks(provider, payload):
    with pytest.raises(MalformedPayload):
        provider.parse_inbound(json_request(payload))


def test_malformed_ack(provider):
    with pytest.raises(MalformedPayload):
        provider.parse_delivery_report(json_request({"event_type": "message_ack", "data": {"id": "x"}}))
