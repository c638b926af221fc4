"""Twilio adapter against the Twilio simulator: sends, error envelopes, signed callbacks, inbound SMS."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from bulkapp.providers.base import (
    AuthenticationError,
    ConfigurationError,
    DeliveryStatus,
    MalformedPayload,
    OutboundMessage,
    SendStatus,
    TransientError,
    WebhookRequest,
)
from bulkapp.providers.twilio import TwilioProvider
from tests.simulators.base import Callback, CallbackReceiver
from tests.simulators.twilio import TwilioSimulator, signed_form_callback, twilio_signature

AUTH_TOKEN = "twilio-auth-token"


@pytest.fixture
def twilio_sim():
    with TwilioSimulator(auth_token=AUTH_TOKEN, timeout_delay=1.0) as simulator:
        yield simulator


@pytest.fixture
def provider(twilio_sim):
    with TwilioProvider(twilio_sim.credentials, twilio_sim.config(), timeout=(2.0, 0.5)) as adapter:
        yield adapter


def sms(message_id: int, to: str, body: str = "Hello from Bulkapp", callback_url: str | None = None):
    return OutboundMessage(message_id, to, body, callback_url=callback_url)


def as_request(callback: Callback) -> WebhookRequest:
    return WebhookRequest(callback.method, callback.url, callback.headers, callback.body)


def test_each_message_is_one_request_with_a_message_sid(twilio_sim, provider):
    results = provider.send_batch([sms(1, "+254712345600"), sms(2, "0722000010")])

    assert [r.status for r in results] == [SendStatus.ACCEPTED] * 2
    assert all(r.provider_message_id.startswith("SM") for r in results)
    assert [s.recipient for s in twilio_sim.submissions] == ["+254712345600", "+254722000010"]
    assert [s.sender for s in twilio_sim.submissions] == ["+15005550006"] * 2
    assert twilio_sim.stats()["requests"] == 2
    assert twilio_sim.balance == Decimal("20.00") - 2 * Decimal("0.0500")


def test_messaging_service_instead_of_a_from_number(twilio_sim):
    provider = TwilioProvider(twilio_sim.credentials, {"messaging_service_sid": "MG123", "base_url": twilio_sim.url})
    [result] = provider.send_batch([sms(1, "+254712345600")])
    assert result.status is SendStatus.ACCEPTED
    assert twilio_sim.resources[result.provider_message_id]["status"] == "accepted"


def test_a_from_number_or_service_is_required():
    with pytest.raises(ConfigurationError) as caught:
        TwilioProvider({"account_sid": "AC1", "auth_token": "t"}, {})
    assert set(caught.value.fields) == {"from_number", "messaging_service_sid"}


def test_per_message_errors_are_rejections_and_the_batch_goes_on(twilio_sim, provider):
    results = provider.send_batch([sms(1, "+254712345699"), sms(2, "+254712345688"), sms(3, "+254712345600")])

    assert [r.status for r in results] == [SendStatus.REJECTED, SendStatus.REJECTED, SendStatus.ACCEPTED]
    assert (results[0].code, results[0].reason) == ("21211", "This is not a valid phone number.")
    assert results[1].code == "21610" and "opted out" in results[1].reason


def test_local_checks_refuse_without_a_request(twilio_sim, provider):
    results = provider.send_batch([sms(1, "+254201234567"), sms(2, "+254712345600", "x" * 1601), sms(3, "0712", "")])
    assert [r.code for r in results] == ["invalid_number", "21617", "invalid_number"]
    assert twilio_sim.stats()["requests"] == 0


def test_bad_credentials(twilio_sim):
    provider = TwilioProvider({**twilio_sim.credentials, "auth_token": "wrong"}, twilio_sim.config())
    with pytest.raises(AuthenticationError) as caught:
        provider.send_batch([sms(1, "+254712345600")])
    assert caught.value.code == "20003"
    ok, message = provider.test_connection()
    assert not ok and "Authenticate" in message


def test_test_connection_names_the_account(provider):
    assert provider.test_connection() == (True, "Connected to Twilio account Bulkapp test (active).")


def test_429_on_the_first_message_raises_with_retry_after(provider):
    with pytest.raises(TransientError) as caught:
        provider.send_batch([sms(1, "+254712345677")])
    assert caught.value.code == "20429" and caught.value.retry_after == 1.0


def test_429_later_in_the_batch_defers_the_rest(twilio_sim, provider):
    results = provider.send_batch([sms(1, "+254712345600"), sms(2, "+254712345677"), sms(3, "+254712345610")])
    assert [r.status for r in results] == [SendStatus.ACCEPTED, SendStatus.DEFERRED, SendStatus.DEFERRED]
    assert results[1].retry_after == 1.0
    assert len(twilio_sim.accepted()) == 1


def test_503_is_transient(provider):
    with pytest.raises(TransientError):
        provider.send_batch([sms(1, "+254712345655")])


def test_timeout_is_unknown_and_stops_the_batch(twilio_sim, provider):
    results = provider.send_batch([sms(1, "+254712345666"), sms(2, "+254712345600")])
    assert [r.status for r in results] == [SendStatus.UNKNOWN, SendStatus.DEFERRED]
    assert [s.recipient for s in twilio_sim.accepted()] == ["+254712345666"]


def test_balance(provider):
    balance = provider.fetch_balance()
    assert (balance.amount, balance.currency, balance.raw) == (Decimal("20.00"), "USD", "20.00 USD")


def test_signed_status_callbacks_over_http(twilio_sim, provider):
    with CallbackReceiver() as receiver:
        twilio_sim.callback_delay = 0.0
        url = f"{receiver.url}/webhooks/twilio/status?channel=7"
        results = provider.send_batch(
            [sms(1, "+254712345600", callback_url=url), sms(2, "+254712345601", callback_url=url)]
        )
        received = receiver.wait_for(4)

    reports = []
    for callback in received:
        request = as_request(callback)
        assert provider.verify_request(request)
        reports += provider.parse_delivery_report(request)
    by_message = {(r.provider_message_id, r.vendor_status): r for r in reports}
    first, second = (r.provider_message_id for r in results)
    assert by_message[(first, "sent")].status is DeliveryStatus.SENT
    assert by_message[(first, "delivered")].status is DeliveryStatus.DELIVERED
    failed = by_message[(second, "undelivered")]
    assert failed.status is DeliveryStatus.FAILED and failed.error_code == "30003"
    assert failed.error_reason == "The handset is unreachable (switched off or out of coverage)."
    assert failed.occurred_at is not None and failed.recipient == "+254712345601"


def test_tampered_or_unsigned_callbacks_fail_verification(provider):
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+254712345678"}
    good = as_request(signed_form_callback("https://app.example/webhooks/twilio/status", AUTH_TOKEN, params))
    assert provider.verify_request(good)

    tampered_body = WebhookRequest("POST", good.url, good.headers, good.raw_body.replace(b"delivered", b"failed"))
    other_url = WebhookRequest("POST", good.url + "?x=1", good.headers, good.raw_body)
    unsigned = WebhookRequest("POST", good.url, {"Content-Type": good.headers["content-type"]}, good.raw_body)
    wrong_key = as_request(signed_form_callback(good.url, "another-token", params))
    for request in (tampered_body, other_url, unsigned, wrong_key):
        assert not provider.verify_request(request)


def test_signature_accepts_the_url_with_or_without_the_default_port(provider):
    params = {"MessageSid": "SM1", "MessageStatus": "sent"}
    signed = signed_form_callback("https://app.example:443/webhooks/twilio/status", AUTH_TOKEN, params)
    assert provider.verify_request(
        WebhookRequest("POST", "https://app.example/webhooks/twilio/status", signed.headers, signed.body)
    )


def test_repeated_parameters_are_signed_in_value_order(provider):
    url = "https://app.example/webhooks/twilio/inbound"
    body = urlencode([("MediaUrl", "b"), ("MediaUrl", "a"), ("Body", "hi")]).encode()
    signature = twilio_signature(AUTH_TOKEN, url, {"MediaUrl": ["b", "a"], "Body": "hi"})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    assert provider.verify_request(WebhookRequest("POST", url, headers, body))


def test_json_bodies_are_checked_through_body_sha256(provider):
    body = b'{"MessageSid": "SM1"}'
    url = "https://app.example/hook?bodySHA256=" + hashlib.sha256(body).hexdigest()
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": twilio_signature(AUTH_TOKEN, url, {})}
    assert provider.verify_request(WebhookRequest("POST", url, headers, body))
    assert not provider.verify_request(WebhookRequest("POST", url, headers, b'{"MessageSid": "SM2"}'))


def test_documented_status_callback_fields():
    provider = TwilioProvider({"account_sid": "AC1", "auth_token": AUTH_TOKEN}, {"from_number": "+15005550006"})
    form = {
        "MessageSid": "SM9",
        "MessageStatus": "undelivered",
        "SmsSid": "SM9",
        "SmsStatus": "undelivered",
        "AccountSid": "AC1",
        "From": "+15005550006",
        "To": "+254712345678",
        "ApiVersion": "2010-04-01",
        "ErrorCode": "30007",
        "RawDlrDoneDate": "2604080931",
    }
    request = as_request(signed_form_callback("https://x/status", AUTH_TOKEN, form))
    [report] = provider.parse_delivery_report(request)
    assert report.status is DeliveryStatus.FAILED and report.error_code == "30007"
    assert report.error_reason == "The carrier filtered the message (suspected spam)."
    assert report.occurred_at == datetime(2026, 4, 8, 9, 31, tzinfo=UTC)


def test_inbound_stop_is_parsed_and_opts_the_sender_out(twilio_sim, provider):
    with CallbackReceiver() as receiver:
        twilio_sim.inbound_url = f"{receiver.url}/webhooks/twilio/inbound"
        twilio_sim.inject_inbound(sender="+254712345678", text="STOP")
        assert twilio_sim.deliver_callbacks() == [200]
        [callback] = receiver.received
    request = as_request(callback)
    assert provider.verify_request(request)
    [message] = provider.parse_inbound(request)
    assert (message.sender, message.text, message.channel) == ("+254712345678", "STOP", "sms")
    assert message.provider_message_id.startswith("SM")

    [result] = provider.send_batch([sms(1, "+254712345678")])
    assert result.status is SendStatus.REJECTED and result.code == "21610"


@pytest.mark.parametrize("form", [{"MessageStatus": "sent"}, {"MessageSid": "SM1"}])
def test_malformed_status_callbacks(provider, form):
    with pytest.raises(MalformedPayload):
        provider.parse_delivery_report(as_request(signed_form_callback("https://x/s", AUTH_TOKEN, form)))


def test_malformed_inbound(provider):
    with pytest.raises(MalformedPayload):
        provider.parse_inbound(as_request(signed_form_callback("https://x/i", AUTH_TOKEN, {"Body": "hi"})))
