"""The sandbox provider for test mode: accepts at once, no network, and plans fake delivery reports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import lazy_gettext as _l

from bulkapp.i18n import N_, stored_sentences
from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.providers.base import (
    ConnectionCheck,
    DeliveryReport,
    DeliveryStatus,
    OutboundMessage,
    Provider,
    SendResult,
    SendStatus,
    SettingField,
)

REJECT_SUFFIX = "01"
FAIL_SUFFIX = "02"
SENT_AFTER = timedelta(seconds=1)
FINAL_AFTER = timedelta(seconds=3)
# Stored on the message in English and shown in the reader's language (messages, inbox, campaign recipients).
SANDBOX_REJECTED, SANDBOX_FAILED = stored_sentences(
    N_("Sandbox: recipients ending in 01 are always rejected, to show what a refused message looks like."),
    N_("Sandbox: recipients ending in 02 always fail delivery."),
)


@dataclass(frozen=True, slots=True)
class PlannedReport:
    """A delivery report the pipeline should apply ``after`` the send, as if the vendor had called back."""

    after: timedelta
    report: DeliveryReport


def _recipient_key(to: str) -> str:
    """The part of the recipient whose ending picks the outcome: the number, or an email's local part."""
    return to.split("@", 1)[0]


class SandboxProvider(Provider):
    """Test mode for every channel (SMS, WhatsApp, email): nothing leaves the machine.

    Everything valid is accepted with an id ``sbx-<uuid>``, except recipients ending in ``01``, which are
    rejected so tenants can see a failure. Accepted messages get :meth:`planned_reports`: ``sent`` after
    one second, then ``delivered`` after three, or ``failed`` for recipients ending in ``02``.
    """

    name = "sandbox"
    label = "Sandbox (test mode)"
    channel = "sms"
    preferred_batch_size = 500
    config_fields = (SettingField("sender_id", _l("Sender ID"), required=False, default="BULKAPP"),)

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult]:
        return [self._send_one(message) for message in messages]

    def _send_one(self, message: OutboundMessage) -> SendResult:
        if message.channel != "email":
            try:
                normalise_msisdn(message.to)
            except InvalidNumber as exc:
                return SendResult.rejected(message.id, exc.reason, code="invalid_number")
        if _recipient_key(message.to).endswith(REJECT_SUFFIX):
            return SendResult.rejected(message.id, SANDBOX_REJECTED, code="sandbox_rejected")
        return SendResult.accepted(message.id, f"sbx-{uuid.uuid4()}")

    def planned_reports(self, message: OutboundMessage, result: SendResult) -> list[PlannedReport]:
        """The delivery reports to apply a few seconds after ``result`` (none unless it was accepted)."""
        if result.status is not SendStatus.ACCEPTED or not result.provider_message_id:
            return []
        provider_id = result.provider_message_id
        sent = DeliveryReport(provider_id, DeliveryStatus.SENT, "sent", recipient=message.to, reference=str(message.id))
        if _recipient_key(message.to).endswith(FAIL_SUFFIX):
            final = DeliveryReport(
                provider_id,
                DeliveryStatus.FAILED,
                "failed",
                error_code="sandbox_failed",
                error_reason=SANDBOX_FAILED,
                recipient=message.to,
                reference=str(message.id),
            )
        else:
            final = DeliveryReport(
                provider_id, DeliveryStatus.DELIVERED, "delivered", recipient=message.to, reference=str(message.id)
            )
        return [PlannedReport(SENT_AFTER, sent), PlannedReport(FINAL_AFTER, final)]

    def test_connection(self) -> ConnectionCheck:
        return ConnectionCheck(True, "The sandbox is always available; messages are accepted but never really sent.")
