"""WhatsApp Cloud adapter against the Meta simulator: templates, the 24-hour window, limits, signed webhooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

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
from bulkapp.providers.whatsapp_cloud import (
    WhatsAppCloudProvider,
    customer_service_window_open,
    verify_subscription,
    webhook_phone_number_ids,
)
from tests.simulators.base import Callback, CallbackReceiver
from tests.simulators.whatsapp_cloud import (
    WhatsAppCloudSimulator,
    signed_webhook,
    status_item,
    subscription_request,
    webhook_payload,
)

APP_SECRET = "meta-app-secret"
DOCUMENTED_INBOUND = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "102290129340398",
            "changes": [
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550984277", "phone_number_id": "114896151713920"},
                        "contacts": [{"profile": {"name": "Jane"}, "wa_id": "254712345678"}],
                        "messages": [
                            {
                                "from": "254712345678",
                                "id": "wamid.HBgMMjU0NzEyMzQ1Njc4FQIAEhgg",
                                "timestamp": "1694427240",
                                "type": "text",
                                "text": {"body": "Hi"},
                            }
                        ],
                    },
                }
            ],
        }
    ],
}
DOCUMENTED_FAILED_STATUS = {
    "id": "wamid.HBgMMjU0NzEyMzQ1Njc4FQIAERgS",
    "status": "failed",
    "timestamp": "1694492484",
    "recipient_id": "254712345678",
    "biz_opaque_callback_data": "1234",
    "errors": [
        {
            "code": 131047,
            "title": "Re-engagement message",
            "message": "Re-engagement message",
            "error_data": {"details": "Message failed to send because more than 24 hours have passed"},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        }
    ],
}


@pytest.fixture
def meta_sim():
    with WhatsAppCloudSimulator(app_secret=APP_SECRET, timeout_delay=1.0) as simulator:
        yield simulator


@pytest.fixture
def provider(meta_sim):
    with WhatsAppCloudProvider(meta_sim.credentials, meta_sim.config(), timeout=(2.0, 0.5)) as adapter:
        yield adapter


def now() -> datetime:
    return datetime.now(UTC)


def text(message_id: int, to: str, body: str = "Karibu!", last_inbound_at: datetime | None = None):
    return OutboundMessage(message_id, to, body, channel="whatsapp", last_inbound_at=last_inbound_at)


def template(
    message_id: int, to: str, params: tuple[str, ...] = ("Asha", "ORD-9271"), name: str = "order_confirmation"
):
    return OutboundMessage(message_id, to, channel="whatsapp", template_name=name, template_params=params)


def as_request(callback: Callback) -> WebhookRequest:
    return WebhookRequest(callback.method, callback.url, callback.headers, callback.body)


def test_template_send_and_its_payload(meta_sim, provider):
    [result] = provider.send_batch([template(5, "+254712345600")])
    assert result.status is SendStatus.ACCEPTED and result.provider_message_id.startswith("wamid.")
    payload = provider.payload(template(5, "+254712345600"))
    assert payload["to"] == "254712345600" and payload["biz_opaque_callback_data"] == "5"
    assert payload["template"] == {
        "name": "order_confirmation",
        "language": {"code": "en"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Asha"}, {"type": "text", "text": "ORD-9271"}]}
        ],
    }


def test_free_text_inside_the_window_is_sent(meta_sim, provider):
    [result] = provider.send_batch([text(1, "+254712345600", last_inbound_at=now() - timedelta(hours=23))])
    assert result.status is SendStatus.ACCEPTED
    assert provider.payload(text(1, "+254712345600"))["text"] == {"preview_url": False, "body": "Karibu!"}


def test_free_text_outside_the_window_is_refused_before_any_request(meta_sim, provider):
    results = provider.send_batch(
        [text(1, "+254712345600", last_inbound_at=now() - timedelta(hours=25)), text(2, "+254712345610")]
    )
    assert [(r.status, r.code) for r in results] == [(SendStatus.REJECTED, "131047")] * 2
    assert "only a template message is allowed" in results[0].reason
    assert meta_sim.stats()["requests"] == 0


def test_window_helper_boundaries():
    moment = datetime(2026, 4, 8, 12, 0, tzinfo=UTC)
    assert customer_service_window_open(moment - timedelta(hours=23, minutes=59), now=moment)
    assert not customer_service_window_open(moment - timedelta(hours=24), now=moment)
    assert not customer_service_window_open(None, now=moment)
    assert customer_service_window_open(datetime(2026, 4, 8, 11, 0), now=moment)  # naive is UTC


def test_template_mismatches_are_rejected_with_metas_code(provider):
    results = provider.send_batch([template(1, "+254712345600", ("Asha",)), template(2, "+254712345610", name="nope")])
    assert [(r.status, r.code) for r in results] == [(SendStatus.REJECTED, "132000"), (SendStatus.REJECTED, "132001")]
    assert results[0].reason == "The number of template parameters does not match the approved template."


def test_bad_token(meta_sim):
    provider = WhatsAppCloudProvider({**meta_sim.credentials, "access_token": "expired"}, meta_sim.config())
    with pytest.raises(AuthenticationError) as caught:
        provider.send_batch([template(1, "+254712345600")])
    assert caught.value.code == "190"
    ok, message = provider.test_connection()
    assert not ok and "Invalid OAuth access token" in message


def test_test_connection(provider):
    assert provider.test_connection() == (True, "Connected to WhatsApp number +1 555-098-4277 (Bulkapp Test).")


def test_service_unavailable_and_rate_limit_are_transient(provider):
    with pytest.raises(TransientError) as unavailable:
        provider.send_batch([template(1, "+254712345655")])
    assert unavailable.value.code == "2"
    with pytest.raises(TransientError) as limited:
        provider.send_batch([template(2, "+254712345677")])
    assert limited.value.code == "130429" and limited.value.retry_after == 1.0


def test_throughput_limit_mid_batch_defers_the_rest(meta_sim, provider):
    meta_sim.throughput = 2
    results = provider.send_batch([template(i, f"+2547123456{i}0") for i in range(1, 5)])
    assert [r.status for r in results] == [SendStatus.ACCEPTED] * 2 + [SendStatus.DEFERRED] * 2
    assert results[2].code == "130429"


def test_pair_rate_limit_defers_only_that_message(meta_sim, provider):
    meta_sim.pair_interval = 6
    results = provider.send_batch(
        [template(1, "+254712345600"), template(2, "+254712345600"), template(3, "+254712345610")]
    )
    assert [r.status for r in results] == [SendStatus.ACCEPTED, SendStatus.DEFERRED, SendStatus.ACCEPTED]
    assert results[1].code == "131056" and results[1].retry_after == 6.0


def test_timeout_is_unknown(meta_sim, provider):
    results = provider.send_batch([template(1, "+254712345666"), template(2, "+254712345600")])
    assert [r.status for r in results] == [SendStatus.UNKNOWN, SendStatus.DEFERRED]


def test_signed_status_webhooks_over_http(meta_sim, provider):
    with CallbackReceiver() as receiver:
        meta_sim.webhook_url = f"{receiver.url}/webhooks/whatsapp"
        meta_sim.callback_delay = 0.0
        ok, undelivered = provider.send_batch([template(11, "+254712345600"), template(12, "+254712345699")])
        received = receiver.wait_for(4)

    reports = []
    for callback in received:
        request = as_request(callback)
        assert provider.verify_request(request)
        assert webhook_phone_number_ids(request) == {meta_sim.phone_number_id}
        assert provider.parse_inbound(request) == []
        reports += provider.parse_delivery_report(request)
    mine = [
        (r.vendor_status, r.status, r.reference) for r in reports if r.provider_message_id == ok.provider_message_id
    ]
    assert mine == [
        ("sent", DeliveryStatus.SENT, "11"),
        ("delivered", DeliveryStatus.DELIVERED, "11"),
        ("read", DeliveryStatus.DELIVERED, "11"),
    ]
    [failed] = [r for r in reports if r.provider_message_id == undelivered.provider_message_id]
    assert failed.status is DeliveryStatus.FAILED and failed.error_code == "131026" and failed.reference == "12"
    assert failed.recipient == "+254712345699" and failed.occurred_at is not None


def test_simulator_fails_free_text_outside_its_own_window_with_131047(meta_sim, provider):
    meta_sim.webhook_url = "https://app.example/webhooks/whatsapp"
    # Our records say the customer wrote recently, Meta's do not: Meta answers 200, then a failed status.
    [result] = provider.send_batch([text(1, "+254712345600", last_inbound_at=now())])
    assert result.status is SendStatus.ACCEPTED
    [callback] = meta_sim.take_callbacks()
    [report] = provider.parse_delivery_report(as_request(callback))
    assert report.status is DeliveryStatus.FAILED and report.error_code == "131047"


def test_signature_valid_tampered_missing(provider):
    payload = webhook_payload(
        "114896151713920", "15550984277", statuses=[status_item("wamid.1", "sent", "254712345678")]
    )
    good = as_request(signed_webhook("https://app.example/webhooks/whatsapp", APP_SECRET, payload))
    assert provider.verify_request(good)
    tampered = WebhookRequest("POST", good.url, good.headers, good.raw_body.replace(b"sent", b"read"))
    reserialised = WebhookRequest("POST", good.url, good.headers, json.dumps(payload, indent=1).encode())
    unsigned = WebhookRequest("POST", good.url, {"Content-Type": "application/json"}, good.raw_body)
    other_secret = as_request(signed_webhook(good.url, "another-secret", payload))
    for request in (tampered, reserialised, unsigned, other_secret):
        assert not provider.verify_request(request)


def test_verify_handshake(meta_sim):
    callback = subscription_request("https://app.example/webhooks/whatsapp", "chan-token", "1158201444")
    request = as_request(callback)
    assert request.method == "GET"
    assert verify_subscription(request.args, "chan-token") == "1158201444"
    assert verify_subscription(request.args, "other-token") is None
    assert verify_subscription({**request.args, "hub.mode": "unsubscribe"}, "chan-token") is None
    assert verify_subscription(request.args, None) is None


def test_documented_inbound_and_status_payloads(provider):
    [message] = provider.parse_inbound(as_request(signed_webhook("https://x", APP_SECRET, DOCUMENTED_INBOUND)))
    assert (message.sender, message.to, message.text, message.sender_name) == (
        "+254712345678",
        "+15550984277",
        "Hi",
        "Jane",
    )
    assert message.provider_message_id == "wamid.HBgMMjU0NzEyMzQ1Njc4FQIAEhgg"
    assert message.received_at == datetime.fromtimestamp(1694427240, UTC)

    payload = webhook_payload("114896151713920", "15550984277", statuses=[DOCUMENTED_FAILED_STATUS])
    [report] = provider.parse_delivery_report(as_request(signed_webhook("https://x", APP_SECRET, payload)))
    assert (report.status, report.error_code, report.reference) == (DeliveryStatus.FAILED, "131047", "1234")
    assert "only a template message is allowed" in report.error_reason


@pytest.mark.parametrize(
    ("kind", "part", "expected"),
    [
        ("button", {"text": "Yes please", "payload": "YES"}, "Yes please"),
        ("interactive", {"type": "button_reply", "button_reply": {"id": "b1", "title": "Confirm"}}, "Confirm"),
        ("image", {"id": "m1", "mime_type": "image/jpeg", "sha256": "abc", "caption": "receipt"}, "receipt"),
        ("reaction", {"message_id": "wamid.1", "emoji": "👍"}, "👍"),
    ],
)
def test_other_inbound_types_give_their_text(provider, kind, part, expected):
    message = {"from": "254712345678", "id": "wamid.X", "timestamp": "1694427240", "type": kind, kind: part}
    payload = webhook_payload("114896151713920", "15550984277", messages=[message])
    [parsed] = provider.parse_inbound(as_request(signed_webhook("https://x", APP_SECRET, payload)))
    assert (parsed.text, parsed.kind) == (expected, kind)


def test_inbound_injected_by_the_simulator_opens_its_window(meta_sim, provider):
    meta_sim.webhook_url = "https://app.example/webhooks/whatsapp"
    [callback] = meta_sim.inject_inbound(sender="+254712345678", text="Niko tayari", name="Otieno")
    [message] = provider.parse_inbound(as_request(callback))
    assert (message.sender, message.text, message.sender_name) == ("+254712345678", "Niko tayari", "Otieno")
    provider.send_batch([text(2, "+254712345678", last_inbound_at=message.received_at)])
    [status] = meta_sim.take_callbacks()[1:2]
    assert provider.parse_delivery_report(as_request(status))[0].status is DeliveryStatus.SENT


@pytest.mark.parametrize(
    ("parser", "body"),
    [
        ("parse_delivery_report", b'{"object": "page", "entry": []}'),
        ("parse_inbound", b'{"object": "whatsapp_business_account"}'),
        ("parse_inbound", b"not json"),
        ("parse_delivery_report", json.dumps(webhook_payload("1", "2", statuses=[{"status": "sent"}])).encode()),
        ("parse_inbound", json.dumps(webhook_payload("1", "2", messages=[{"id": "wamid.1"}])).encode()),
    ],
)
def test_malformed_webhooks(provider, parser, body):
    request = WebhookRequest("POST", "https://x", {"Content-Type": "application/json"}, body)
    with pytest.raises(MalformedPayload):
        getattr(provider, parser)(request)
