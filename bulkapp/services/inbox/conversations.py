"""The shared inbox: conversation lists (filters, search, keyset pages), threads, read state, status, replies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import CHANNELS, CONVERSATION_STATUSES, Campaign, Client, Contact, Conversation, Message, Template
from bulkapp.providers.whatsapp_cloud import CUSTOMER_SERVICE_WINDOW, customer_service_window_open
from bulkapp.services.messaging import compose as messaging
from bulkapp.services.messaging import cursors

PAGE_SIZE = 25
THREAD_SIZE = 50
MAX_SEARCH = 100
BADGE_CAP = 100


@dataclass(frozen=True)
class Filters:
    """What the list shows: one status, optionally one channel, only unread ones, a search text."""

    status: str = "open"
    channel: str | None = None
    unread: bool = False
    q: str = ""

    @classmethod
    def parse(cls, args) -> Filters:
        """Filters from query arguments; anything unknown falls back to the default instead of failing."""
        status = args.get("status") if args.get("status") in CONVERSATION_STATUSES else "open"
        channel = args.get("channel") if args.get("channel") in CHANNELS else None
        unread = args.get("unread") in ("1", "on", "true")
        q = " ".join((args.get("q") or "").split())[:MAX_SEARCH]
        return cls(status, channel, unread, q)

    def as_args(self) -> dict[str, str]:
        args = {"status": self.status}
        if self.channel:
            args["channel"] = self.channel
        if self.unread:
            args["unread"] = "1"
        if self.q:
            args["q"] = self.q
        return args


@dataclass(frozen=True)
class ConversationPage:
    conversations: list[Conversation]
    next_cursor: str | None


@dataclass(frozen=True)
class Thread:
    """The newest messages of a conversation (oldest first), the campaigns they came from, and reply rules."""

    conversation: Conversation
    messages: list[Message]
    older_cursor: int | None
    campaigns: dict[int, str]
    rules: ReplyRules

    @property
    def last_id(self) -> int:
        return self.messages[-1].id if self.messages else 0


@dataclass(frozen=True)
class ReplyRules:
    """How a reply may go out: WhatsApp outside the 24-hour window needs an approved template."""

    channel: str
    window_open: bool
    last_inbound_at: datetime | None

    @property
    def needs_template(self) -> bool:
        return self.channel == "whatsapp" and not self.window_open

    @property
    def reason(self) -> str | None:
        if not self.needs_template:
            return None
        if self.last_inbound_at is None:
            return "This customer has not written to you on WhatsApp yet, so WhatsApp only allows an approved template."
        hours = int(CUSTOMER_SERVICE_WINDOW.total_seconds() // 3600)
        return (
            f"The customer's last WhatsApp message is more than {hours} hours old. Outside that window WhatsApp "
            "only allows an approved template, so choose one below."
        )


# ---------------------------------------------------------------------------------------------- lists


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search_ids(client_id: int, q: str) -> sa.Select:
    """Ids of the tenant's conversations whose contact name, number or any message text contains ``q``."""
    like = _like(q)
    by_name = (
        sa.select(Conversation.id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(Conversation.client_id == client_id, Contact.client_id == client_id, Contact.name.ilike(like, "\\"))
    )
    digits = re.sub(r"\D", "", q)
    parts = [by_name]
    if len(digits) >= 3:
        # 0712 345 678 and +254712345678 both find +254712345678.
        national = digits[1:] if digits.startswith("0") else digits
        parts.append(
            sa.select(Conversation.id).where(
                Conversation.client_id == client_id, Conversation.contact_identifier.like(_like(national), "\\")
            )
        )
    parts.append(
        sa.select(Message.conversation_id).where(
            Message.client_id == client_id, Message.conversation_id.is_not(None), Message.body.ilike(like, "\\")
        )
    )
    return sa.union(*parts)


def list_conversations(
    client_id: int, filters: Filters = Filters(), *, cursor: str | None = None, limit: int = PAGE_SIZE
) -> ConversationPage:
    """One page of the tenant's conversations, most recent activity first (keyset on ``(last_message_at,
    id)`` over the ``(client_id, status, last_message_at)`` index). Raises :class:`InvalidCursor`."""
    limit = max(1, min(int(limit), 100))
    query = (
        sa.select(Conversation)
        .options(sa.orm.selectinload(Conversation.contact))  # a second query by id: the page's plan stays simple
        .where(
            Conversation.client_id == client_id,
            Conversation.status == filters.status,
            Conversation.last_message_at.is_not(None),
        )
    )
    if filters.channel:
        query = query.where(Conversation.channel == filters.channel)
    if filters.unread:
        query = query.where(Conversation.unread_count > 0)
    if filters.q:
        query = query.where(Conversation.id.in_(_search_ids(client_id, filters.q)))
    if cursor:
        query = query.where(cursors.older_than(cursor, Conversation.last_message_at, Conversation.id))
    order = (Conversation.last_message_at.desc(), Conversation.id.desc())
    rows = db.session.scalars(query.order_by(*order).limit(limit + 1)).all()
    return ConversationPage(list(rows[:limit]), cursors.next_cursor(rows, limit, "last_message_at"))


def latest_activity(client_id: int) -> datetime | None:
    """When anything last happened in the tenant's inbox: the list's polling compares it with what it shows."""
    return db.session.scalar(
        sa.select(sa.func.max(Conversation.last_message_at)).where(Conversation.client_id == client_id)
    )


def unread_conversations(client_id: int, cap: int = BADGE_CAP) -> int:
    """How many of the tenant's conversations have unread messages, counted up to ``cap`` (the nav badge
    shows "99+" beyond), so the count costs the same for a tenant with a hundred thousand of them."""
    unread = (
        sa.select(Conversation.id)
        .where(Conversation.client_id == client_id, Conversation.unread_count > 0)
        .limit(cap)
        .subquery()
    )
    return db.session.scalar(sa.select(sa.func.count()).select_from(unread)) or 0


# --------------------------------------------------------------------------------------------- thread


def get_conversation(client_id: int, conversation_id: int) -> Conversation | None:
    return db.session.scalar(
        sa.select(Conversation)
        .options(sa.orm.joinedload(Conversation.contact))
        .where(Conversation.id == conversation_id, Conversation.client_id == client_id)
    )


def reply_rules(conversation: Conversation, now: datetime | None = None) -> ReplyRules:
    last_inbound = None
    if conversation.channel == "whatsapp":
        last_inbound = db.session.scalar(
            sa.select(Message.created_at)
            .where(
                Message.client_id == conversation.client_id,
                Message.conversation_id == conversation.id,
                Message.direction == "inbound",
            )
            .order_by(Message.id.desc())
            .limit(1)
        )
    return ReplyRules(conversation.channel, customer_service_window_open(last_inbound, now), last_inbound)


def get_thread(client_id: int, conversation: Conversation, *, before: int | None = None) -> Thread:
    """The newest :data:`THREAD_SIZE` messages of ``conversation`` (older ones page with ``before``, an id)."""
    query = sa.select(Message).where(Message.client_id == client_id, Message.conversation_id == conversation.id)
    if before:
        query = query.where(Message.id < before)
    rows = db.session.scalars(query.order_by(Message.id.desc()).limit(THREAD_SIZE + 1)).all()
    older = rows[THREAD_SIZE - 1].id if len(rows) > THREAD_SIZE else None
    messages = list(reversed(rows[:THREAD_SIZE]))
    campaign_ids = {m.campaign_id for m in messages if m.campaign_id}
    campaigns = {}
    if campaign_ids:
        campaigns = dict(
            db.session.execute(
                sa.select(Campaign.id, Campaign.name).where(
                    Campaign.client_id == client_id, Campaign.id.in_(campaign_ids)
                )
            ).all()
        )
    return Thread(conversation, messages, older, campaigns, reply_rules(conversation))


def newest_message_id(client_id: int, conversation_id: int) -> int:
    """The id of the conversation's newest message (0 if none): the thread's polling compares it."""
    return (
        db.session.scalar(
            sa.select(sa.func.max(Message.id)).where(
                Message.client_id == client_id, Message.conversation_id == conversation_id
            )
        )
        or 0
    )


def mark_read(client_id: int, conversation_id: int) -> bool:
    """Mark a conversation and its inbound messages read; True when it had unread messages. Idempotent."""
    changed = db.session.execute(
        sa.update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.client_id == client_id, Conversation.unread_count > 0)
        .values(unread_count=0)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed:
        db.session.execute(
            sa.update(Message)
            .where(
                Message.client_id == client_id,
                Message.conversation_id == conversation_id,
                Message.direction == "inbound",
                Message.is_read.is_(False),
            )
            .values(is_read=True)
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
    return bool(changed)


def set_status(client_id: int, conversation_id: int, status: str) -> Conversation | None:
    """Open, close or archive a conversation; None when it is not the tenant's. Raises ValueError for a
    status that does not exist. A new inbound message reopens a closed or archived conversation."""
    if status not in CONVERSATION_STATUSES:
        raise ValueError(f"{status!r} is not a conversation status")
    conversation = get_conversation(client_id, conversation_id)
    if conversation is None:
        return None
    conversation.status = status
    db.session.flush()
    return conversation


# -------------------------------------------------------------------------------------------- replies


def reply_templates(client_id: int, channel: str, rules: ReplyRules) -> list[Template]:
    """Templates a reply on ``channel`` may use (only approved WhatsApp templates when one is required)."""
    query = sa.select(Template).where(Template.client_id == client_id, Template.channel == channel)
    if rules.needs_template:
        query = query.where(Template.whatsapp_template_id.is_not(None), Template.whatsapp_template_id != "")
    return list(db.session.scalars(query.order_by(Template.name)).all())


def preview_reply(client_id: int, conversation: Conversation, body: str, template_id: int | None):
    """The live cost quote of a reply (``messaging.Preview``). An empty composer (every opened conversation)
    has nothing to price: only the balance is read."""
    if not body.strip() and template_id is None:
        return messaging.Preview(None, db.session.get(Client, client_id).balance)
    return messaging.preview_message(
        client_id,
        to=conversation.contact_identifier,
        body=body,
        channel=conversation.channel,
        template_id=template_id,
    )


def send_reply(
    client_id: int,
    conversation: Conversation,
    *,
    body: str | None,
    template_id: int | None,
    user_id: int | None,
    idempotency_key: str | None,
) -> Message:
    """Reply in ``conversation`` on its channel through :func:`messaging.send_message` (priced, charged once
    per ``idempotency_key``, queued). WhatsApp outside the 24-hour window raises SendError
    ``template_required`` unless an approved template is chosen (its text replaces the body). Flushes."""
    rules = reply_rules(conversation)
    if rules.needs_template:
        template = None
        if template_id is not None:
            template = db.session.scalar(
                sa.select(Template).where(Template.client_id == client_id, Template.id == template_id)
            )
        if template is None or not template.whatsapp_template_id:
            raise messaging.SendError("template_required", rules.reason, "template_id")
        body = None  # the approved template's own text goes out, never a free-form body
    return messaging.send_message(
        client_id,
        to=conversation.contact_identifier,
        body=body,
        channel=conversation.channel,
        template_id=template_id,
        user_id=user_id,
        idempotency_key=idempotency_key,
    )
