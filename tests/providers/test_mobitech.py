"""Mobitech adapter against the Mobitech simulator (stand-in error codes) and the one known DLR shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bulkapp.providers.base import (
    AuthenticationError,
    DeliveryStatus,
    MalformedPayload,
    NotSupported,
    OutboundMessage,
    SendStatus,
    TransientError,
    WebhookRequest,
)
from bulkapp.providers.mobitech import MobitechProvider
from tests.simulators.base import CallbackReceiver

# The shared fixture, as other suites use it (this module must not import the simulator module itself, or
# pytest could not rewrite its asserts).
pytest_plugins = ["tests.simulators.mobitech"]

TOKEN = "mobitech-channel-token"


@pytest.fixture
def provider(mobitech_sim):
    mobitech_sim.timeout_delay = 1.0
    with MobitechProvider(mobitech_sim.credentials, mobitech_sim.config(), timeout=(2.0, 0.5)) as adapter:
        yield adapter


def sms(message_id: int, to: str, body: str = "Hello from Bulkapp") -> OutboundMessage:
    return OutboundMessage(message_id, to, body)


def test_one_request_per_recipient_with_cost(mobitech_sim, provider):
    results = provider.send_batch([sms(1, "+254712345600"), sms(2, "+254110000010")])

    assert [r.status for r in results] == [SendStatus.ACCEPTED] * 2
    assert [r.provider_message_id for r in results] == ["100001", "100002"]
    assert [r.cost for r in results] == [Decimal("0.80")] * 2
    assert [s.recipient for s in mobitech_sim.submissions] == ["254712345600", "254110000010"]
    assert mobitech_sim.stats()["requests"] == 2
    assert mobitech_sim.balance == Decimal("98.40")


def test_refusals_carry_mobitechs_own_words(mobitech_sim, provider):
    results = provider.send_batch([sms(1, "+254712345699"), sms(2, "+254712345600")])
    assert results[0].status is SendStatus.REJECTED and results[0].code == "4003"
    assert results[0].reason == "Mobitech refused the message: Invalid mobile number"
    assert results[1].status is SendStatus.ACCEPTED

    other = MobitechProvider(mobitech_sim.credentials, mobitech_sim.config(sender_name="UNKNOWN"))
    [refused] = other.send_batch([sms(3, "+254712345600")])
    assert refused.reason == "Mobitech refused the message: Invalid sender name"


def test_low_credit_is_a_refusal(mobitech_sim, provider):
    mobitech_sim.balance = Decimal("0.10")
    [result] = provider.send_batch([sms(1, "+254712345600")])
    assert result.status is SendStatus.REJECTED and "Insufficient credit" in result.reason


def test_wrong_key(mobitech_sim):
    provider = MobitechProvider({"api_key": "b" * 64}, mobitech_sim.config())
    with pytest.raises(AuthenticationError):
        provider.send_batch([sms(1, "+254712345600")])
    ok, message = provider.test_connection()
    assert not ok and "Invalid API key" in message


def test_timeout_unknown_and_503_transient(mobitech_sim, provider):
    results = provider.send_batch([sms(1, "+254712345666"), sms(2, "+254712345600")])
    assert [r.status for r in results] == [SendStatus.UNKNOWN, SendStatus.DEFERRED]
    with pytest.raises(TransientError):
        provider.send_batch([sms(3, "+254712345655")])


def test_balance_and_connection(mobitech_sim, provider):
    mobitech_sim.balance = Decimal("1234.5")
    assert provider.fetch_balance().amount == Decimal("1234.5")
    assert provider.test_connection() == (True, "Connected to Mobitech. Credit balance: 1234.5")


def test_delivery_reports_behind_the_flag(mobitech_sim, provider):
    with CallbackReceiver() as receiver:
        mobitech_sim.send_dlrs = True
        mobitech_sim.dlr_url = f"{receiver.url}/webhooks/mobitech/dlr?token={TOKEN}"
        results = provider.send_batch([sms(1, "+254712345600"), sms(2, "+254712345601")])
        assert mobitech_sim.deliver_callbacks() == [200, 200]
        received = receiver.received
    requests = [WebhookRequest(cb.method, cb.url, cb.headers, cb.body) for cb in received]
    assert all(provider.verify_request(r, webhook_token=TOKEN) for r in requests)
    reports = [rep for r in requests for rep in provider.parse_delivery_report(r)]
    assert [(r.provider_message_id, r.status) for r in reports] == [
        (results[0].provider_message_id, DeliveryStatus.DELIVERED),
        (results[1].provider_message_id, DeliveryStatus.FAILED),
    ]
    assert (
        reports[1].error_reason == "The message could not be delivered (UNDELIV)."
        and reports[1].recipient == "+254712345601"
    )


def test_known_dlr_shape_as_json_and_form(provider):
    sample = {
        "messageId": "123456",
        "dlrTime": "2026-04-08 09:31:00",
        "dlrStatus": "3",
        "dlrDesc": "PENDING",
        "destaddr": "254712345678",
        "sourceaddr": "23107",
    }
    body = json.dumps(sample).encode()
    [report] = provider.parse_delivery_report(
        WebhookRequest("POST", "https://x/d", {"Content-Type": "application/json"}, body)
    )
    assert report.status is DeliveryStatus.SENT
    assert report.occurred_at == datetime(2026, 4, 8, 6, 31, tzinfo=UTC)
    form = b"messageId=9&dlrStatus=1&dlrDesc=DELIVRD"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert (
        provider.parse_delivery_report(WebhookRequest("POST", "https://x/d", headers, form))[0].status
        is DeliveryStatus.DELIVERED
    )


@pytest.mark.parametrize("body", [b'{"messageId": "9"}', b"not json at all {", b'{"dlrStatus": 1}'])
def test_malformed_dlr(provider, body):
    with pytest.raises(MalformedPayload):
        provider.parse_delivery_report(
            WebhookRequest("POST", "https://x/d", {"Content-Type": "application/json"}, body)
        )


def test_no_inbound_contract(provider):
    with pytest.raises(NotSupported):
        provider.parse_inbound(WebhookRequest("POST", "https://x/i", {}, b"{}"))
