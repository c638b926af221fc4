"""The sandbox provider: no network, magic endings, planned delivery reports."""

from __future__ import annotations

from datetime import timedelta

from bulkapp.providers.base import DeliveryStatus, OutboundMessage, SendStatus
from bulkapp.providers.sandbox import SandboxProvider


def test_accepts_at_once_with_sandbox_ids():
    provider = SandboxProvider({}, {})
    results = provider.send_batch(
        [OutboundMessage(1, "+254712345678", "Hi"), OutboundMessage(2, "+254712345679", "Hi")]
    )
    assert [r.status for r in results] == [SendStatus.ACCEPTED] * 2
    assert all(r.provider_message_id.startswith("sbx-") for r in results)
    assert results[0].provider_message_id != results[1].provider_message_id


def test_numbers_ending_in_01_are_rejected_with_a_clear_reason():
    provider = SandboxProvider({}, {})
    [result] = provider.send_batch([OutboundMessage(1, "+254712345601", "Hi")])
    assert result.status is SendStatus.REJECTED and result.code == "sandbox_rejected"
    assert "ending in 01" in result.reason
    assert provider.planned_reports(OutboundMessage(1, "+254712345601", "Hi"), result) == []


def test_invalid_numbers_are_rejected_but_emails_are_accepted():
    provider = SandboxProvider({}, {})
    results = provider.send_batch(
        [OutboundMessage(1, "0712", "Hi"), OutboundMessage(2, "jane@example.com", "Hi", channel="email")]
    )
    assert [r.status for r in results] == [SendStatus.REJECTED, SendStatus.ACCEPTED]
    assert results[0].code == "invalid_number"


def test_planned_reports_sent_then_delivered_or_failed():
    provider = SandboxProvider({}, {})
    delivered_msg = OutboundMessage(7, "+254712345678", "Hi")
    failing_msg = OutboundMessage(8, "+254712345602", "Hi")
    ok, failing = provider.send_batch([delivered_msg, failing_msg])

    plan = provider.planned_reports(delivered_msg, ok)
    assert [(p.after, p.report.status) for p in plan] == [
        (timedelta(seconds=1), DeliveryStatus.SENT),
        (timedelta(seconds=3), DeliveryStatus.DELIVERED),
    ]
    assert {p.report.provider_message_id for p in plan} == {ok.provider_message_id}
    assert plan[0].report.reference == "7"

    final = provider.planned_reports(failing_msg, failing)[-1].report
    assert final.status is DeliveryStatus.FAILED and "ending in 02" in final.error_reason


def test_connection_check_and_no_balance():
    provider = SandboxProvider({}, {})
    assert provider.test_connection().ok
    assert provider.fetch_balance() is None
    assert provider.config["sender_id"] == "BULKAPP"
