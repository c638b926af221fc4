"""Delivery reports: move an outbound message forward (never back), count it once, tell the tenant."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from bulkapp.columns import UTCDateTime, utcnow
from bulkapp.extensions import db
from bulkapp.models import Campaign, Channel, Client, Message
from bulkapp.parsing import parse_id
from bulkapp.providers.base import DeliveryReport, DeliveryStatus
from bulkapp.services.billing import wallet
from bulkapp.services.compliance import optouts
from bulkapp.services.notifications.events import record_event
from bulkapp.services.notifications.notify import notify

log = logging.getLogger(__name__)

# The statuses each reported status may replace. delivered and failed are final; a report that would move a
# message backwards (a late "sent" after "delivered") or repeat its current status changes nothing.
REPLACES: dict[DeliveryStatus, tuple[str, ...]] = {
    DeliveryStatus.SENT: ("pending", "sending", "unknown"),
    DeliveryStatus.DELIVERED: ("pending", "sending", "unknown", "sent"),
    DeliveryStatus.FAILED: ("pending", "sending", "unknown", "sent"),
}
DEFAULT_FAILURE = "The message could not be delivered."
REFUND_SETTING = "refund_failed_delivery"


def refund_reference(message_id: int) -> str:
    """The one wallet reference a message's refund may use, whoever refunds it."""
    return f"refund:message:{message_id}"


def apply_delivery_report(provider: str, report: DeliveryReport, *, channel_id: int | None = None) -> Message | None:
    """Apply a vendor's delivery report to the outbound message it names, at most once.

    The message is found by ``(provider, report.provider_message_id)``, within the tenant of ``channel_id``
    when given. When the vendor echoes our own id (``report.reference``) and the send never learned the
    vendor's id (an ``unknown`` outcome), the message is found by that id and adopts the vendor's id.

    One conditional UPDATE moves the status forward only (pending/sending/unknown -> sent -> delivered or
    failed); only the call that made the transition counts it on the campaign (``delivered_count`` /
    ``failed_count`` + 1 in SQL), records ``message.sent`` / ``message.delivered`` / ``message.failed``,
    notifies a failure (``message_failed``: each failed single message, and a campaign's first failure) and,
    when an admin set ``settings["refund_failed_delivery"]`` for the tenant, refunds the message's cost once
    (reference ``refund:message:<id>``); a failure code meaning "opted out" (:func:`optouts.is_provider_opt_out`)
    suppresses the recipient. Duplicates and out-of-order reports return the message unchanged.
    Unknown ids return None. Flushes; the caller commits.
    """
    client_id = None
    if channel_id is not None:
        channel = db.session.get(Channel, channel_id)  # the webhook's own channel: no query while it is loaded
        if channel is None:
            log.warning("Delivery report for unknown channel %s ignored", channel_id)
            return None
        client_id = channel.client_id
    message = _find_message(provider, report, client_id)
    if message is None:
        log.info("%s delivery report for unknown message id %r ignored", provider, report.provider_message_id)
        return None
    if report.status not in REPLACES or not _advance(message, report):
        return message
    if report.status is DeliveryStatus.SENT:
        record_event(message.client_id, "message.sent", _event_data(message, report))
        return message
    campaign = _count_on_campaign(message, report.status)
    record_event(message.client_id, f"message.{report.status.value}", _event_data(message, report))
    if report.status is DeliveryStatus.FAILED:
        _notify_failure(message, campaign)
        _refund_if_enabled(message)
        recipient = message.recipient or report.recipient
        optouts.record_provider_opt_out(message.client_id, recipient, provider, report.error_code, message.channel)
    return message


def _find_message(provider: str, report: DeliveryReport, client_id: int | None) -> Message | None:
    query = sa.select(Message).where(Message.provider == provider, Message.direction == "outbound")
    if client_id is not None:
        query = query.where(Message.client_id == client_id)
    message = db.session.scalar(query.where(Message.provider_message_id == report.provider_message_id))
    reference_id = parse_id(report.reference)  # our message id, when the vendor echoes it back
    if message is None and reference_id is not None:
        by_reference = query.where(Message.id == reference_id, Message.provider_message_id.is_(None))
        message = db.session.scalar(by_reference)
    return message


def _advance(message: Message, report: DeliveryReport) -> bool:
    """The conditional state transition; True when this call made it (the row matched the allowed statuses)."""
    at = report.occurred_at or utcnow()
    values: dict[str, Any] = {
        "status": report.status.value,
        "meta": {**(message.meta or {}), "delivery": _delivery_meta(report)},
    }
    if report.status is DeliveryStatus.DELIVERED:
        values["delivered_at"] = at
    elif report.status is DeliveryStatus.FAILED:
        values["failed_at"] = at
        values["error_message"] = report.error_reason or DEFAULT_FAILURE
    values["sent_at"] = sa.func.coalesce(Message.sent_at, sa.bindparam("reported_at", at, type_=UTCDateTime()))
    adopt = message.provider_message_id is None
    if adopt:
        values["provider_message_id"] = report.provider_message_id
    statement = (
        sa.update(Message)
        .where(Message.id == message.id, Message.status.in_(REPLACES[report.status]))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if adopt:
        statement = statement.where(Message.provider_message_id.is_(None))
    changed = db.session.execute(statement).rowcount == 1
    db.session.refresh(message)
    return changed


def _delivery_meta(report: DeliveryReport) -> dict[str, Any]:
    return {
        "vendor_status": report.vendor_status,
        "error_code": report.error_code,
        "occurred_at": report.occurred_at.isoformat() if report.occurred_at else None,
        "received_at": utcnow().isoformat(),
    }


def _count_on_campaign(message: Message, status: DeliveryStatus) -> tuple[int, str, int] | None:
    """Add one to the campaign's delivered/failed counter in SQL; (campaign id, name, new count) or None."""
    if message.campaign_id is None:
        return None
    column = Campaign.delivered_count if status is DeliveryStatus.DELIVERED else Campaign.failed_count
    row = db.session.execute(
        sa.update(Campaign)
        .where(Campaign.id == message.campaign_id)
        .values({column: column + 1})
        .returning(Campaign.id, Campaign.name, column)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    return tuple(row) if row is not None else None


def message_event_data(message: Any, status: str, occurred_at: datetime | None, **extra: Any) -> dict[str, Any]:
    """The ``data`` of every ``message.*`` event (sent, delivered, failed), whoever records it: delivery reports
    (a :class:`Message` row) or the send pipeline (its claimed copy of one); ``extra`` adds or overrides keys."""
    return {
        "message_id": message.id,
        "status": status,
        "channel": message.channel,
        "recipient": message.recipient,
        "provider": message.provider,
        "provider_message_id": message.provider_message_id,
        "campaign_id": message.campaign_id,
        "segments": message.segments,
        "cost": f"{message.cost:.2f}",
        "occurred_at": occurred_at.isoformat() if occurred_at else None,
        **extra,
    }


def _event_data(message: Message, report: DeliveryReport) -> dict[str, Any]:
    return message_event_data(
        message,
        message.status,
        message.delivered_at or message.failed_at or message.sent_at,
        vendor_status=report.vendor_status,
        error_code=report.error_code,
        error_reason=message.error_message if message.status == "failed" else None,
    )


def _notify_failure(message: Message, campaign: tuple[int, str, int] | None) -> None:
    """One notification per failed single message; for a campaign only its first failure, so that a bad batch
    does not bury the bell under thousands of alerts (the campaign page shows the running count)."""
    reason = message.error_message or DEFAULT_FAILURE
    if campaign is None:
        notify(
            message.client_id,
            "message_failed",
            "message_not_delivered",
            {"recipient": message.recipient},
            message=reason,
            data={"message_id": message.id},
        )
        return
    campaign_id, name, failed = campaign
    if failed != 1:
        return
    notify(
        message.client_id,
        "message_failed",
        "campaign_failing",
        {"name": name, "recipient": message.recipient, "reason": reason},
        data={"message_id": message.id, "campaign_id": campaign_id},
    )


def _refund_if_enabled(message: Message) -> None:
    """Vendors charge for messages they accepted even when the handset never got them, so a failed delivery
    is refunded only for tenants an admin opted in (``settings["refund_failed_delivery"]``)."""
    settings = db.session.scalar(sa.select(Client.settings).where(Client.id == message.client_id)) or {}
    cost = message.cost or Decimal(0)
    if not settings.get(REFUND_SETTING) or cost <= 0:
        return
    wallet.refund(
        message.client_id,
        cost,
        reference=refund_reference(message.id),
        description=wallet.REFUND_NOT_DELIVERED % {"recipient": message.recipient},
        meta={"message_id": message.id, "campaign_id": message.campaign_id},
    )
