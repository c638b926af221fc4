"""JSON shapes of the API: money as strings with 2 decimals, times as ISO-8601 UTC."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from bulkapp.models import Campaign, Contact, Message

CENTS = Decimal("0.01")


def money(value: Decimal | int | None) -> str:
    return str(Decimal(value or 0).quantize(CENTS, rounding=ROUND_HALF_UP))


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "status": message.status,
        "to": message.recipient,
        "from": message.sender,
        "channel": message.channel,
        "direction": message.direction,
        "segments": message.segments,
        "cost": money(message.cost),
        "body": message.body,
        "subject": message.subject,
        "campaign_id": message.campaign_id,
        "provider": message.provider,
        "provider_message_id": message.provider_message_id,
        "error_message": message.error_message,
        "created_at": iso(message.created_at),
        "sent_at": iso(message.sent_at),
        "delivered_at": iso(message.delivered_at),
        "failed_at": iso(message.failed_at),
    }


def contact_json(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "name": contact.name,
        "contact": contact.contact,
        "department": contact.department,
        "fields": {str(k): str(v) for k, v in (contact.fields or {}).items()},
        "opted_out": contact.opted_out_at is not None,
        "total_messages": contact.total_messages or 0,
        "last_message_at": iso(contact.last_message_at),
        "created_at": iso(contact.created_at),
    }


def campaign_json(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "channel": campaign.channel,
        "kind": campaign.kind,
        "status": campaign.status,
        "total_recipients": campaign.total_recipients or 0,
        "sent_count": campaign.sent_count or 0,
        "delivered_count": campaign.delivered_count or 0,
        "failed_count": campaign.failed_count or 0,
        "total_cost": money(campaign.total_cost),
        "scheduled_at": iso(campaign.scheduled_at),
        "sent_at": iso(campaign.sent_at),
        "created_at": iso(campaign.created_at),
        "recipients": {k: v for k, v in (campaign.stats or {}).items() if k != "run"},
    }
