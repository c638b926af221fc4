"""Campaigns: drafts, the composer's live quote, the list and per-recipient results.

Launching, sending, pausing and settling live in ``launch``; the progress figures in ``progress``; the
recipient selection in ``recipients``; the promotional sending window in ``compliance.quiet_hours``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.i18n import N_, status_label, stored_sentences
from bulkapp.models import Campaign, Client, Message, Template
from bulkapp.parsing import parse_id
from bulkapp.services.billing import pricing, wallet
from bulkapp.services.campaigns.launch import CampaignError, cancel_campaign, get_campaign, require_balance
from bulkapp.services.campaigns.message_rows import TextBuilder
from bulkapp.services.campaigns.recipients import Tally, candidates, is_empty, resolve
from bulkapp.services.channels import routing as channels
from bulkapp.services.compliance import quiet_hours
from bulkapp.services.messaging import compose as messaging
from bulkapp.spreadsheet import safe_cell

KINDS = ("promotional", "transactional")
EDITABLE = ("draft", "scheduled")
MAX_NAME = 200
MAX_SENDER = 11
PREVIEW_RECIPIENTS = 3


@dataclass
class DraftInput:
    name: str
    channel: str
    kind: str
    sender_id: str | None
    message: str
    template_id: int | None
    selection: dict[str, Any]


def _validate(client_id: int, data: DraftInput) -> None:
    if not data.name.strip():
        raise CampaignError("invalid_name", _l("Give the campaign a name."), "name")
    if len(data.name) > MAX_NAME:
        raise CampaignError("invalid_name", _l("A name is at most %(limit)s characters.", limit=MAX_NAME), "name")
    if data.channel not in channels.usable_kinds(client_id):
        raise CampaignError("channel_unavailable", _l("Choose one of your active channels."), "channel")
    if data.kind not in KINDS:
        raise CampaignError("invalid_kind", _l("Choose promotional or transactional."), "kind")
    if data.sender_id and (len(data.sender_id) > MAX_SENDER or not data.sender_id.replace(" ", "").isalnum()):
        sentence = _l("A sender id is 1 to %(limit)s letters or digits.", limit=MAX_SENDER)
        raise CampaignError("invalid_sender", sentence, "sender_id")
    if (
        data.template_id is not None
        and db.session.scalar(
            sa.select(Template.id).where(Template.client_id == client_id, Template.id == data.template_id)
        )
        is None
    ):
        raise CampaignError("not_found", _l("That template does not exist."), "template_id")
    if len(data.message) > messaging.MAX_CHARACTERS[data.channel]:
        raise CampaignError("message_too_long", _l("The message is too long."), "message")


class AlreadySubmitted(CampaignError):
    """The composer's form was submitted before and that campaign is no longer editable (a double submit)."""

    def __init__(self, campaign_id: int) -> None:
        super().__init__("already_submitted", "This form was already sent.")
        self.campaign_id = campaign_id


def save_draft(
    client_id: int,
    data: DraftInput,
    *,
    campaign_id: int | None = None,
    actor_id: int | None = None,
    form_key: str | None = None,
) -> Campaign:
    """Create a draft, or update one that is still a draft or scheduled. Raises :class:`CampaignError`.

    A new campaign's ``form_key`` (the composer's one-time key) makes a repeated submit update the campaign the
    first one created, or raise :class:`AlreadySubmitted` when that campaign has started meanwhile."""
    _validate(client_id, data)
    if campaign_id is None and form_key:
        campaign_id = _by_form_key(client_id, form_key)
        if campaign_id is None:
            try:
                with db.session.begin_nested():
                    campaign = Campaign(
                        client_id=client_id,
                        name=data.name.strip(),
                        created_by=actor_id,
                        status="draft",
                        stats={},
                        form_key=form_key,
                    )
                    db.session.add(campaign)
                    db.session.flush()
            except IntegrityError:  # the same form, submitted twice at once
                campaign_id = _by_form_key(client_id, form_key)
            else:
                campaign_id = campaign.id
        campaign = get_campaign(client_id, campaign_id)
        if campaign.status not in EDITABLE:
            raise AlreadySubmitted(campaign.id)
    elif campaign_id is None:
        campaign = Campaign(client_id=client_id, created_by=actor_id, status="draft", stats={})
        db.session.add(campaign)
    else:
        campaign = get_campaign(client_id, campaign_id)
        if campaign.status not in EDITABLE:
            sentence = _l(
                "This campaign is %(status)s; it can no longer be edited.", status=status_label(campaign.status)
            )
            raise CampaignError("not_editable", sentence)
    campaign.name = data.name.strip()
    campaign.channel = data.channel
    campaign.kind = data.kind
    campaign.sender_id = (data.sender_id or "").strip() or None
    campaign.message = data.message.replace("\r\n", "\n")
    campaign.template_id = data.template_id
    campaign.recipients = data.selection
    db.session.flush()
    return campaign


def _by_form_key(client_id: int, form_key: str) -> int | None:
    return db.session.scalar(
        sa.select(Campaign.id).where(Campaign.client_id == client_id, Campaign.form_key == form_key)
    )


def schedule_campaign(client_id: int, campaign_id: int, when: datetime, *, now: datetime | None = None) -> Campaign:
    """draft -> scheduled at ``when`` (UTC); the periodic clock launches it within a minute of that time.
    Refused (``insufficient_balance``) when the balance cannot pay it today; checked again at its start."""
    now = now or utcnow()
    campaign = get_campaign(client_id, campaign_id)
    if campaign.status not in EDITABLE:
        sentence = _l("This campaign is %(status)s; it cannot be scheduled.", status=status_label(campaign.status))
        raise CampaignError("not_editable", sentence)
    if when <= now:
        raise CampaignError("invalid_schedule", _l("Choose a time in the future."), "scheduled_at")
    if is_empty(campaign.recipients) and not campaign.retry_of_run:
        raise CampaignError("no_recipients", _l("Choose who gets this campaign."), "numbers")
    require_balance(db.session.get(Client, client_id), campaign)
    campaign.status = "scheduled"
    campaign.scheduled_at = when
    db.session.flush()
    return campaign


def unschedule_campaign(client_id: int, campaign_id: int) -> Campaign:
    campaign = get_campaign(client_id, campaign_id)
    if campaign.status == "scheduled":
        campaign.status = "draft"
        campaign.scheduled_at = None
        db.session.flush()
    return campaign


@dataclass
class Cancelled:
    """What cancelling did to the money: ``held`` was reserved for the unfinished run (0: nothing was held);
    ``released`` is what came back to the balance (None while messages already with the provider finish)."""

    changed: bool
    held: Decimal = Decimal("0")
    released: Decimal | None = None


def cancel(client_id: int, campaign_id: int, *, now: datetime | None = None) -> Cancelled:
    """Cancel the campaign (see ``campaign_launch.cancel_campaign``) and say what happened to its hold."""
    campaign = get_campaign(client_id, campaign_id)
    reference = campaign.hold_reference if campaign.run and campaign.settled_run < campaign.run else None
    held = campaign.estimated_cost or Decimal("0") if reference else Decimal("0")
    if not cancel_campaign(client_id, campaign_id, now=now):
        return Cancelled(False)
    if reference is None:
        return Cancelled(True)
    release = wallet.find_transaction(wallet.settlement_reference(reference))
    return Cancelled(True, held, None if release is None else release.amount)


# ------------------------------------------------------------------------------------------ live quote


@dataclass
class CampaignQuote:
    """The composer's panel: the message, the recipients and what it all costs."""

    tally: Tally
    balance: Decimal
    quote: pricing.Quote | None = None
    cost: Decimal = Decimal("0")
    units: int = 0
    previews: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    footer: str | None = None
    window: str | None = None
    window_open: bool = True
    opens_at: datetime | None = None
    missing: tuple[str, ...] = ()

    @property
    def balance_after(self) -> Decimal:
        return self.balance - self.cost

    @property
    def affordable(self) -> bool:
        return self.cost <= self.balance


def quote_campaign(client_id: int, data: DraftInput, *, now: datetime | None = None) -> CampaignQuote:
    """Price a campaign exactly as a launch would (per-recipient texts, footer, reply link), without writing.
    The recipients are streamed in chunks; only the set of numbers seen is kept to count duplicates."""
    now = now or utcnow()
    client = db.session.get(Client, client_id)
    result = CampaignQuote(Tally(), client.balance)
    channel = data.channel if data.channel in pricing.CHANNELS else "sms"
    if data.kind == "promotional":
        hours = quiet_hours.window(client.settings)
        result.window = hours.label()
        result.window_open = quiet_hours.is_open(client.settings, now)
        result.opens_at = None if result.window_open else quiet_hours.next_opening(client.settings, now)
    content = data.message
    if not content.strip() and data.template_id is not None:
        template = db.session.scalar(
            sa.select(Template).where(Template.client_id == client_id, Template.id == data.template_id)
        )
        content = template.content if template is not None else ""
    if not content.strip():
        result.error = str(_l("Write a message or choose a template to see what it costs."))
        return result
    builder = TextBuilder(client, channel, data.kind, content)
    result.footer = builder.suffix.strip() or None
    try:
        result.quote = builder.quote(builder.text({}))
    except (pricing.EmptyBody, ValueError) as exc:
        result.error = str(exc)
        return result
    from bulkapp.services.messaging.templates import render as render_text

    result.missing = render_text(builder.content, {}).missing
    seen: set[str] = set()
    for chunk in resolve(client_id, channel, candidates(client_id, data.selection), result.tally, seen=seen):
        for recipient in chunk:
            text = builder.text(recipient.values)
            quote = builder.quote(text)
            result.cost += quote.cost
            result.units += quote.total_units
            if len(result.previews) < PREVIEW_RECIPIENTS:
                result.previews.append((recipient.address, text))
    return result


# ------------------------------------------------------------------------------------------ list


class InvalidCursor(ValueError):
    pass


def _encode(value: int) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        value = parse_id(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        value = None
    if value is None:
        raise InvalidCursor(cursor)
    return value


@dataclass
class Page:
    items: list[Any]
    next_cursor: str | None


def list_campaigns(
    client_id: int,
    *,
    search: str = "",
    status: str = "",
    channel: str = "",
    cursor: str | None = None,
    limit: int = 25,
) -> Page:
    """The tenant's campaigns, newest first, with keyset pagination on id."""
    query = sa.select(Campaign).where(Campaign.client_id == client_id)
    if search.strip():
        query = query.where(Campaign.name.ilike(f"%{search.strip()[:100]}%"))
    if status:
        query = query.where(Campaign.status == status)
    if channel:
        query = query.where(Campaign.channel == channel)
    if cursor:
        query = query.where(Campaign.id < _decode(cursor))
    rows = db.session.scalars(query.order_by(Campaign.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _encode(rows[-1].id) if more and rows else None)


STATUS_FILTERS = {
    "queued": ("pending", "sending"),
    "sent": ("sent",),
    "delivered": ("delivered",),
    "failed": ("failed",),
    "unknown": ("unknown",),
}


def is_charged(message: Message) -> bool:
    """Whether this message costs money (the same rule as the settlement's ``charged_filter``)."""
    if message.status in ("sent", "delivered", "unknown"):
        return True
    return message.status == "failed" and (message.sent_at is not None or message.provider_message_id is not None)


REASON_PENDING, REASON_SENDING, REASON_SENT, REASON_DELIVERED, REASON_UNCLEAR, REASON_NOT_DELIVERED = stored_sentences(
    N_("Waiting to be sent."),
    N_("Being sent now."),
    N_("Sent; waiting for the delivery report."),
    N_("Delivered to the phone."),
    N_("The provider's answer was unclear; it was not sent again."),
    N_("Not delivered."),
)


def plain_reason(message: Message) -> str:
    """The per-recipient outcome in plain English words (a page shows it through ``stored_text``)."""
    if message.status in ("pending", "sending"):
        return REASON_PENDING if message.status == "pending" else REASON_SENDING
    if message.status == "sent":
        return REASON_SENT
    if message.status == "delivered":
        return REASON_DELIVERED
    if message.status == "unknown":
        return message.error_message or REASON_UNCLEAR
    return message.error_message or REASON_NOT_DELIVERED


def recipient_page(
    client_id: int, campaign_id: int, *, status: str = "", after: int | None = None, limit: int = 50
) -> Page:
    """The campaign's messages (all runs), oldest first, keyset-paginated by id, optionally by status."""
    get_campaign(client_id, campaign_id)
    query = sa.select(Message).where(Message.client_id == client_id, Message.campaign_id == campaign_id)
    if status in STATUS_FILTERS:
        query = query.where(Message.status.in_(STATUS_FILTERS[status]))
    if after:
        query = query.where(Message.id > after)
    rows = db.session.scalars(query.order_by(Message.id).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, str(rows[-1].id) if more and rows else None)


def export_rows(client_id: int, campaign_id: int, chunk: int = 1000) -> Iterator[list[str]]:
    """CSV rows of every recipient's result, header first, read by keyset in chunks."""
    get_campaign(client_id, campaign_id)
    yield ["run", "recipient", "status", "segments", "cost", "sent_at", "delivered_at", "failed_at", "reason"]
    last = 0
    while True:
        rows = db.session.execute(
            sa.select(
                Message.id,
                Message.campaign_run,
                Message.recipient,
                Message.status,
                Message.segments,
                Message.cost,
                Message.sent_at,
                Message.delivered_at,
                Message.failed_at,
                Message.error_message,
            )
            .where(Message.client_id == client_id, Message.campaign_id == campaign_id, Message.id > last)
            .order_by(Message.id)
            .limit(chunk)
        ).all()
        if not rows:
            return
        for row in rows:
            yield [
                str(row.campaign_run or ""),
                row.recipient,
                row.status,
                str(row.segments),
                f"{row.cost:.2f}",
                _iso(row.sent_at),
                _iso(row.delivered_at),
                _iso(row.failed_at),
                safe_cell(row.error_message),
            ]
        last = rows[-1].id


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""
