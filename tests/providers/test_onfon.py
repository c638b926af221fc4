"""Onfon adapter against the Onfon simulator over real loopback sockets, plus Onfon's documented payloads."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from bulkapp.providers.base import (
    AuthenticationError,
    DeliveryStatus,
    MalformedPayload,
    OutboundMessage,
    PermanentError,
    SendStatus,
    TransientError,
    WebhookRequest,
    parse_amount,
)
from bulkapp.providers.onfon import OnfonProvider
from tests.simulators.base import CallbackReceiver
from tests.simulators.onfon import OnfonSimulator, dlr_params

TOKEN = "chan-token-123"


@pytest.fixture
def onfon_sim():
    with OnfonSimulator() as simulator:
        yield simulator


@pytest.fixture
def provider(onfon_sim: OnfonSimulator):
    with OnfonProvider(onfon_sim.credentials, onfon_sim.config(), timeout=(2.0, 0.5)) as adapter:
        yield adapter


def sms(message_id: int, to: str, body: str = "Hello from Bulkapp") -> OutboundMessage:
    return OutboundMessage(message_id, to, body)


def test_batch_goes_in_one_request_and_results_keep_input_order(onfon_sim, provider):
    numbers = ["+254712345600", "+254722000010", "+254110000020"]
    results = provider.send_batch([sms(i, n) for i, n in enumerate(numbers)])

    assert [r.message_id for r in results] == [0, 1, 2]
    assert all(r.status is SendStatus.ACCEPTED for r in results)
    assert [r.provider_message_id for r in results] == ["Smsc1", "Smsc2", "Smsc3"]
    assert onfon_sim.stats()["requests"] == 1
    assert [s.recipient for s in onfon_sim.submissions] == [n.lstrip("+") for n in numbers]
    assert onfon_sim.balance == Decimal("1000.0000") - 3 * Decimal("0.8000")


def test_per_message_errors_even_when_the_top_level_code_is_zero(onfon_sim, provider):
    results = provider.send_batch(
        [sms(1, "+254712345600"), sms(2, "+254712345699"), sms(3, "+254712345688"), sms(4, "12345")]
    )

    assert [r.status for r in results] == [SendStatus.ACCEPTED] + [SendStatus.REJECTED] * 3
    assert results[1].code == "013" and "Invalid mobile number" in results[1].reason
    assert results[2].code == "406" and "opted out" in results[2].reason
    assert results[3].code == "invalid_number"  # refused here, never sent
    assert "12345" not in [s.recipient for s in onfon_sim.submissions]


def test_unwhitelisted_sender_is_a_per_message_401_in_plain_words(onfon_sim):
    provider = OnfonProvider(onfon_sim.credentials, onfon_sim.config(sender_id="NOTALLOWED"))
    [result] = provider.send_batch([sms(1, "+254712345600")])

    assert result.status is SendStatus.REJECTED and result.code == "401"
    assert "sender ID is not approved" in result.reason and "source_address filter mismatch" in result.reason


def test_every_number_invalid_is_top_level_013_and_each_message_rejected(provider):
    results = provider.send_batch([sms(1, "+254712345699"), sms(2, "+254722345699")])
    assert [(r.status, r.code) for r in results] == [(SendStatus.REJECTED, "013")] * 2


def test_codes_as_strings_are_understood(onfon_sim, provider):
    onfon_sim.string_codes = True
    [result] = provider.send_batch([sms(1, "+254712345600")])
    assert result.status is SendStatus.ACCEPTED


def test_wrong_credentials_raise_authentication_error_and_test_connection_shows_onfons_words(onfon_sim):
    provider = OnfonProvider({**onfon_sim.credentials, "api_key": "wrong"}, onfon_sim.config())
    with pytest.raises(AuthenticationError) as caught:
        provider.send_batch([sms(1, "+254712345600")])
    assert caught.value.code == "007"

    ok, message = provider.test_connection()
    assert not ok and "Invalid api credential" in message
    assert onfon_sim.submissions == []


def test_insufficient_credit_is_permanent_021(onfon_sim, provider):
    onfon_sim.balance = Decimal("0.50")
    with pytest.raises(PermanentError) as caught:
        provider.send_batch([sms(1, "+254712345600")])
    assert caught.value.code == "021" and "run out of SMS credit" in caught.value.reason


def test_read_timeout_after_sending_makes_the_batch_unknown_and_nothing_is_resent(onfon_sim, provider):
    onfon_sim.timeout_delay = 1.0
    results = provider.send_batch([sms(1, "+254712345666"), sms(2, "+254712345600")])

    assert [r.status for r in results] == [SendStatus.UNKNOWN, SendStatus.UNKNOWN]
    assert "may have accepted" in results[0].reason
    assert len(onfon_sim.accepted()) == 2  # the vendor did take them: resending would double-send
    assert onfon_sim.stats()["requests"] == 1


def test_503_is_transient_until_the_simulator_recovers(onfon_sim, provider):
    batch = [sms(1, "+254712345655"), sms(2, "+254712345600")]
    for _ in range(2):
        with pytest.raises(TransientError):
            provider.send_batch(batch)
    assert onfon_sim.submissions == []
    assert [r.status for r in provider.send_batch(batch)] == [SendStatus.ACCEPTED] * 2


def test_429_is_transient_with_retry_after(onfon_sim, provider):
    with pytest.raises(TransientError) as caught:
        provider.send_batch([sms(1, "+254712345677")])
    assert caught.value.retry_after == 1.0


def test_failure_of_a_later_request_defers_the_rest_and_keeps_earlier_results(onfon_sim):
    provider = OnfonProvider(onfon_sim.credentials, onfon_sim.config(batch_size=2))
    numbers = ["+254712345600", "+254712345610", "+254712345655", "+254712345620"]
    results = provider.send_batch([sms(i, n) for i, n in enumerate(numbers)])

    assert [r.status for r in results] == [SendStatus.ACCEPTED] * 2 + [SendStatus.DEFERRED] * 2
    assert "busy" in results[2].reason


def test_timeout_on_one_request_stops_the_batch(onfon_sim):
    onfon_sim.timeout_delay = 1.0
    provider = OnfonProvider(onfon_sim.credentials, onfon_sim.config(batch_size=1), timeout=(2.0, 0.5))
    results = provider.send_batch([sms(1, "+254712345600"), sms(2, "+254712345666"), sms(3, "+254712345610")])

    assert [r.status for r in results] == [SendStatus.ACCEPTED, SendStatus.UNKNOWN, SendStatus.DEFERRED]
    assert "+254712345610".lstrip("+") not in [s.recipient for s in onfon_sim.submissions]


def test_unicode_and_gsm_texts_go_in_separate_requests(onfon_sim, provider):
    results = provider.send_batch([sms(1, "+254712345600", "Habari"), sms(2, "+254712345610", "Habari 😀")])
    assert [r.status for r in results] == [SendStatus.ACCEPTED] * 2
    assert onfon_sim.stats()["requests"] == 2


def test_malformed_answer_after_sending_is_unknown(onfon_sim, provider):
    onfon_sim.fault = "malformed_json"
    [result] = provider.send_batch([sms(1, "+254712345600")])
    assert result.status is SendStatus.UNKNOWN


def unreachable(api_key: str = "b") -> OnfonProvider:
    """An Onfon account whose server address has nothing listening."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return OnfonProvider(
        {"access_key": "access-123", "api_key": api_key, "client_id": "c"},
        {"sender_id": "ACME", "base_url": f"http://127.0.0.1:{port}/v1/sms"},
    )


def test_connection_refused_is_transient_in_plain_words():
    with pytest.raises(TransientError) as caught:
        unreachable().send_batch([sms(1, "+254712345600")])
    assert caught.value.describe() == "We could not reach Onfon Media. Check the base URL and try again."


def test_transport_errors_go_to_the_log_without_the_api_key(caplog):
    """The balance call puts ApiKey in the query string, and requests quotes the URL in its errors: the owner
    sees a sentence, the log keeps the details with the key blanked out."""
    provider = unreachable(api_key="API/KEY+secret 42")
    with caplog.at_level("WARNING", logger="bulkapp.providers"), pytest.raises(TransientError) as caught:
        provider.fetch_balance()
    described = caught.value.describe()
    assert described == "We could not reach Onfon Media. Check the base URL and try again."
    logged = caplog.text
    assert "Balance?ApiKey=[hidden]" in logged and "Connection refused" in logged
    assert "secret" not in logged and "API%2FKEY" not in logged and "API/KEY" not in logged


def test_balance_is_parsed_exactly(onfon_sim, provider):
    onfon_sim.balance = Decimal("7578560.8000")
    balance = provider.fetch_balance()
    assert balance.amount == Decimal("7578560.8000") and balance.currency == "KES"
    assert balance.raw == "KSh7578560.8000"
    assert provider.test_connection() == (True, "Connected to Onfon. Balance: KSh7578560.8000")


def test_balance_strings_from_the_docs():
    assert parse_amount("KSh7578560.8000").amount == Decimal("7578560.8000")
    assert parse_amount("€0.6991").amount == Decimal("0.6991")
    assert parse_amount("€0.6991").currency == "EUR"
    assert parse_amount("1,234.50").amount == Decimal("1234.50")
    with pytest.raises(MalformedPayload):
        parse_amount("KSh")


def test_malformed_balance_answer_is_a_clear_error(onfon_sim, provider):
    onfon_sim.fault = "empty_body"
    with pytest.raises(MalformedPayload):
        provider.fetch_balance()


def test_delivery_reports_arrive_as_get_with_the_channel_token(onfon_sim, provider):
    with CallbackReceiver() as receiver:
        onfon_sim.dlr_url = f"{receiver.url}/webhooks/onfon/dlr?token={TOKEN}"
        onfon_sim.callback_delay = 0.0
        results = provider.send_batch([sms(1, "+254712345600"), sms(2, "+254712345601"), sms(3, "+254712345602")])
        received = receiver.wait_for(2)

    requests = [WebhookRequest(cb.method, cb.url, cb.headers, cb.body) for cb in received]
    assert all(r.method == "GET" for r in requests)
    assert all(provider.verify_request(r, webhook_token=TOKEN) for r in requests)
    assert not provider.verify_request(requests[0], webhook_token="another-channel")
    reports = {rep.provider_message_id: rep for r in requests for rep in provider.parse_delivery_report(r)}
    assert reports[results[0].provider_message_id].status is DeliveryStatus.DELIVERED
    failed = reports[results[1].provider_message_id]
    assert failed.status is DeliveryStatus.FAILED and failed.vendor_status == "UNDELIV"
    assert failed.recipient == "+254712345601" and failed.error_reason
    assert results[2].provider_message_id not in reports  # 02: no report ever


def test_documented_dlr_query_is_parsed_in_kenyan_time(provider):
    params = dlr_params("Smsc1603635", "254712345678", "DELIVRD", "000", "2026-04-08 09:30", "2026-04-08 09:31")
    request = WebhookRequest("GET", "https://app.example/webhooks/onfon/dlr?" + urlencode({**params, "token": "t"}), {})
    [report] = provider.parse_delivery_report(request)

    assert report.provider_message_id == "Smsc1603635"
    assert report.status is DeliveryStatus.DELIVERED and report.error_code is None
    assert report.occurred_at == datetime(2026, 4, 8, 6, 31, tzinfo=UTC)
    assert report.recipient == "+254712345678"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("UNDELIV", DeliveryStatus.FAILED),
        ("EXPIRED", DeliveryStatus.FAILED),
        ("REJECTD", DeliveryStatus.FAILED),
        ("ENROUTE", DeliveryStatus.SENT),
        ("ACCEPTD", DeliveryStatus.SENT),
        ("UNKNOWN", DeliveryStatus.UNKNOWN),
        ("SOMETHINGNEW", DeliveryStatus.UNKNOWN),
    ],
)
def test_dlr_status_words(provider, status, expected):
    body = json.dumps({"messageId": "m1", "mobile": "254712345678", "status": status, "errorCode": "001"}).encode()
    request = WebhookRequest("POST", "https://x/dlr", {"Content-Type": "application/json"}, body)
    [report] = provider.parse_delivery_report(request)
    assert report.status is expected
    assert (report.error_reason is not None) == (expected is DeliveryStatus.FAILED)


@pytest.mark.parametrize(
    "body",
    [b'{"messageId": "m1"}', b"{not json", b"[1, 2]", b""],
)
def test_malformed_dlrs_are_parse_errors(provider, body):
    request = WebhookRequest("POST", "https://x/dlr", {"Content-Type": "application/json"}, body)
    with pytest.raises(MalformedPayload):
        provider.parse_delivery_report(request)


def test_inbound_form_and_json_with_every_field_alias(provider):
    form = WebhookRequest(
        "POST",
        "https://x/webhooks/onfon/inbound?token=t",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"from=254712345678&to=22384&message=Habari+yako&id=MO1",
    )
    [first] = provider.parse_inbound(form)
    assert (first.sender, first.to, first.text, first.provider_message_id) == (
        "+254712345678",
        "22384",
        "Habari yako",
        "MO1",
    )
    assert first.channel == "sms" and first.received_at.tzinfo is not None

    body = json.dumps([{"msisdn": "0712345678", "shortcode": "22384", "text": "STOP", "messageId": "MO2"}]).encode()
    [second] = provider.parse_inbound(
        WebhookRequest("POST", "https://x/in", {"Content-Type": "application/json"}, body)
    )
    assert (second.sender, second.text, second.provider_message_id) == ("+254712345678", "STOP", "MO2")

    third = WebhookRequest(
        "POST",
        "https://x/in",
        {"Content-Type": "application/json"},
        b'{"mobile": "254712345678", "sender_id": "ACME", "message": ""}',
    )
    assert provider.parse_inbound(third)[0].text == ""


@pytest.mark.parametrize(
    "body",
    [b'{"message": "hi"}', b'{"from": "254712345678"}', b'{"from": "hello", "message": "hi"}', b"{oops"],
)
def test_malformed_inbound_is_a_parse_error(provider, body):
    with pytest.raises(MalformedPayload):
        provider.parse_inbound(WebhookRequest("POST", "https://x/in", {"Content-Type": "application/json"}, body))


def test_inbound_injected_by_the_simulator(onfon_sim, provider):
    with CallbackReceiver() as receiver:
        onfon_sim.inbound_url = f"{receiver.url}/webhooks/onfon/inbound?token={TOKEN}"
        onfon_sim.inject_inbound(sender="+254712345678", text="Ndio")
        assert onfon_sim.deliver_callbacks() == [200]
        [callback] = receiver.received
    request = WebhookRequest(callback.method, callback.url, callback.headers, callback.body)
    assert provider.verify_request(request, webhook_token=TOKEN)
    assert provider.parse_inbound(request)[0].text == "Ndio"


def test_simulator_records_submissions_for_duplicate_checks(onfon_sim, provider):
    provider.send_batch([sms(1, "+254712345600")])
    assert onfon_sim.duplicate_recipients() == {}
    provider.send_batch([sms(2, "+254712345600")])
    assert onfon_sim.duplicate_recipients() == {"254712345600": 2}


def test_simulator_lists_sent_messages_and_reports_capacity(onfon_sim, provider):
    provider.send_batch([sms(1, "+254712345600"), sms(2, "+254712345601")])
    listing = provider.session.get(
        f"{onfon_sim.url}/v1/sms/sms",
        params={"ApiKey": onfon_sim.api_key, "ClientId": onfon_sim.client_id, "start": 0, "length": 10},
        headers={"AccessKey": onfon_sim.access_key},
        timeout=5,
    ).json()
    assert listing["Data"]["total"] == 2
    assert [m["Status"] for m in listing["Data"]["messages"]] == ["DELIVRD", "UNDELIV"]
    assert onfon_sim.measure_capacity(total=200, batch_size=100) > 0
    assert len(onfon_sim.submissions) == 2


def test_control_routes_over_http(onfon_sim, provider):
    control = provider.session
    assert control.post(f"{onfon_sim.url}/_sim/config", json={"fault": "5xx"}, timeout=5).json() == {"ok": True}
    with pytest.raises(TransientError):
        provider.send_batch([sms(1, "+254712345600")])
    assert control.post(f"{onfon_sim.url}/_sim/config", json={"balance": "5.5"}, timeout=5).status_code == 200
    assert onfon_sim.balance == Decimal("5.5") and onfon_sim.fault == "5xx"
    assert control.post(f"{onfon_sim.url}/_sim/config", json={"nonsense": 1}, timeout=5).status_code == 400
    control.post(f"{onfon_sim.url}/_sim/reset", timeout=5)
    provider.send_batch([sms(2, "+254712345600")])
    [submission] = control.get(f"{onfon_sim.url}/_sim/outbox", timeout=5).json()["submissions"]
    assert submission["recipient"] == "254712345600" and submission["outcome"] == "accepted"
    assert control.get(f"{onfon_sim.url}/_sim/stats", timeout=5).json()["messages"] == 1


def test_a_500_after_sending_is_unknown_not_retried():
    with CallbackReceiver(status=500) as broken_vendor:
        provider = OnfonProvider(
            {"access_key": "a", "api_key": "b", "client_id": "c"},
            {"sender_id": "ACME", "base_url": f"{broken_vendor.url}/v1/sms"},
        )
        results = provider.send_batch([sms(1, "+254712345600"), sms(2, "+254712345610")])
    assert [r.status for r in results] == [SendStatus.UNKNOWN] * 2
    assert len(broken_vendor.received) == 1
