"""Incoming customer messages: vendor webhooks and the public reply form land in the tenant's inbox."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql, sqlite

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Client, Contact, Conversation, Message, ShortLink
from bulkapp.providers.base import InboundMessage
from bulkapp.services.compliance import optouts
from bulkapp.services.messaging import compose as messaging
from bulkapp.services.notifications.events import record_event
from bulkapp.services.notifications.notify import notify

log = logging.getLogger(__name__)

PREVIEW_CHARS = 160
MAX_WEB_REPLY = 1000  # characters a recipient may type into the public reply form
WEB_PROVIDER = "web"  # messages.provider of replies sent through the reply form


class InvalidReply(ValueError):
    """A reply-form submission that cannot be recorded; the message is a sentence for the recipient."""


def record_inbound(client_id: int, channel: str, provider: str, inbound: InboundMessage) -> Message | None:
    """Record a customer's message from a vendor webhook in the tenant's inbox, once.

    A repeat of ``(provider, inbound.provider_message_id)`` (vendors resend webhooks) returns None and changes
    nothing: the insert of the message is the guard (``ON CONFLICT DO NOTHING``), before anything else is
    touched. Otherwise the sender (E.164) becomes a contact if new, the conversation (tenant, contact,
    ``channel``) is found or created and reopened, its unread count, preview and time move on, the contact's
    counters follow, and an ``inbound_message`` notification and a ``message.received`` event are recorded.
    Media (an MMS's ``media_urls``) are kept as links in ``meta["media_urls"]``. Flushes; the caller commits.
    """
    meta: dict[str, Any] = {"received_at": inbound.received_at.isoformat(), "kind": inbound.kind}
    if inbound.sender_name:
        meta["sender_name"] = inbound.sender_name
    if inbound.media_urls:
        meta["media_urls"] = list(inbound.media_urls)  # shown as links in the thread, never fetched by us
    message = _insert_message(
        client_id,
        channel=channel,
        provider=provider,
        sender=inbound.sender,
        recipient=inbound.to or "",
        body=inbound.text,
        provider_message_id=inbound.provider_message_id,
        meta=meta,
    )
    if message is None:
        log.info("Repeated %s inbound message %r ignored", provider, inbound.provider_message_id)
        return None
    _file_in_conversation(message, inbound.sender_name, conversation_id=None)
    # Twilio answers STOP/START itself (and would refuse our confirmation with 21610), so it only gets recorded.
    apply_keyword(message, source="keyword", reply_channel=channel, confirm=provider != "twilio")
    return message


def record_web_reply(short_link: ShortLink, text: str, language: str | None = None) -> Message:
    """Record what a recipient typed into the public reply form of ``short_link`` (``/x/<code>``).
    ``language`` is the form page's language: an opt-out typed there is confirmed in it.

    The reply comes from the recipient of the message the link was sent in and lands in that message's
    conversation (or the contact's conversation on that channel), exactly like an incoming SMS: unread + 1,
    notification, ``message.received`` event. Raises :class:`InvalidReply` for an empty or too long text or a
    link that belongs to no message. Flushes; the caller commits.
    """
    body = (text or "").strip()
    if not body:
        raise InvalidReply("Write a message first.")
    if len(body) > MAX_WEB_REPLY:
        raise InvalidReply(_l("Keep the message under %(limit)s characters.", limit=MAX_WEB_REPLY))
    original = None
    if short_link.message_id is not None:
        original = db.session.scalar(
            sa.select(Message).where(Message.id == short_link.message_id, Message.client_id == short_link.client_id)
        )
    if original is None or not original.recipient:
        raise InvalidReply("This link no longer accepts replies.")
    message = _insert_message(
        short_link.client_id,
        channel=original.channel,
        provider=WEB_PROVIDER,
        sender=original.recipient,
        recipient=original.sender or "",
        body=body,
        provider_message_id=None,
        meta={"via": "reply_form", "short_link": short_link.code, "in_reply_to": original.id, "kind": "text"},
    )
    assert message is not None  # no provider id, so nothing to conflict with
    _file_in_conversation(message, None, conversation_id=original.conversation_id)
    apply_keyword(message, source="reply_form", reply_channel="sms", language=language)
    return message


def apply_keyword(
    message: Message, *, source: str, reply_channel: str, confirm: bool = True, language: str | None = None
) -> str | None:
    """Act on an inbound message that is an opt-out or opt-in keyword (see :func:`optouts.classify`).

    An opt-out suppresses the sender (``source`` ``keyword`` or ``reply_form``), an opt-in takes them off the
    list. When that changed the list (and ``confirm``), one confirmation goes out on ``reply_channel`` (in
    ``language`` when given, else in the keyword's language), without a
    reply link; its idempotency key is derived from the inbound message id, so it is sent once per inbound
    message whatever runs twice. A confirmation that cannot be sent (no channel, no balance) is logged and the
    opt-out stands. Returns the classification. Flushes; the caller commits.
    """
    client = db.session.get(Client, message.client_id)
    kind = optouts.classify(client, message.body)
    if kind is None or not message.sender:
        return kind
    if kind == "opt_out":
        keyword = optouts.normalise_keyword(message.body)[: optouts.MAX_KEYWORD]
        changed = optouts.opt_out(client.id, message.sender, source=source, keyword=keyword, channel=message.channel)
    else:
        changed = optouts.opt_in(client.id, message.sender)
    if not changed or not confirm:  # a second STOP (or START) changes nothing and is not confirmed again
        return kind
    try:
        messaging.send_message(
            client.id,
            to=message.sender,
            body=optouts.confirmation_text(client, kind, message.body, language),
            channel=reply_channel,
            append_reply_link=False,
            idempotency_key=f"{kind.replace('_', '-')}-confirmation:{message.id}",
            optout_confirmation=True,
        )
    except messaging.SendError as exc:
        log.warning("No %s confirmation to inbound message %s: %s", kind, message.id, exc.message)
    return kind


def _insert(model: type, values: dict[str, Any], unique: list[str]) -> Any:
    """INSERT ... ON CONFLICT (unique) DO NOTHING RETURNING id: the row's id, or None when it existed.
    Concurrent writers of the same key wait for each other (PostgreSQL) or are serialised (SQLite)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(**values).on_conflict_do_nothing(index_elements=unique).returning(model.id)
    return db.session.scalar(statement)


def _insert_message(client_id: int, **values: Any) -> Message | None:
    now = utcnow()
    new_id = _insert(
        Message,
        {
            "client_id": client_id,
            "direction": "inbound",
            "status": "received",
            "is_read": False,
            "segments": 1,
            "created_at": now,
            "updated_at": now,
            **values,
        },
        ["provider", "provider_message_id"],
    )
    return db.session.get(Message, new_id) if new_id is not None else None


def _file_in_conversation(message: Message, sender_name: str | None, conversation_id: int | None) -> None:
    """Contact, conversation, counters, notification and event for a newly inserted inbound message."""
    now = utcnow()
    contact = _contact(message.client_id, message.sender, sender_name, now)
    conversation = _conversation(message.client_id, contact, message.channel, conversation_id)
    message.conversation_id = conversation.id
    preview = _preview(message)
    db.session.execute(
        sa.update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(
            unread_count=Conversation.unread_count + 1,
            status="open",
            last_message_preview=preview,
            last_message_direction="inbound",
            last_message_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        sa.update(Contact)
        .where(Contact.id == contact.id)
        .values(total_messages=Contact.total_messages + 1, last_message_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    db.session.refresh(conversation)
    db.session.refresh(contact)
    who = contact.name or message.sender
    notify(
        message.client_id,
        "inbound_message",
        "new_whatsapp_message" if message.channel == "whatsapp" else "new_message",
        {"sender": who},
        message=preview,
        data={"message_id": message.id, "conversation_id": conversation.id, "contact_id": contact.id},
    )
    record_event(message.client_id, "message.received", _event_data(message, contact, now))


def _contact(client_id: int, number: str, name: str | None, now: datetime) -> Contact:
    values = {"client_id": client_id, "contact": number, "name": name, "created_at": now, "updated_at": now}
    _insert(Contact, {**values, "fields": {}, "total_messages": 0}, ["client_id", "contact"])
    contact = db.session.scalar(sa.select(Contact).where(Contact.client_id == client_id, Contact.contact == number))
    if name and not contact.name:
        contact.name = name  # a WhatsApp profile name fills a contact that had none, never replaces one
    return contact


def _conversation(client_id: int, contact: Contact, channel: str, conversation_id: int | None) -> Conversation:
    if conversation_id is not None:
        found = db.session.scalar(
            sa.select(Conversation).where(Conversation.id == conversation_id, Conversation.client_id == client_id)
        )
        if found is not None:
            return found
    now = utcnow()
    _insert(
        Conversation,
        {
            "client_id": client_id,
            "contact_id": contact.id,
            "contact_identifier": contact.contact,
            "channel": channel,
            "status": "open",
            "unread_count": 0,
            "created_at": now,
            "updated_at": now,
        },
        ["client_id", "contact_id", "channel"],
    )
    return db.session.scalar(
        sa.select(Conversation).where(
            Conversation.client_id == client_id,
            Conversation.contact_id == contact.id,
            Conversation.channel == channel,
        )
    )


def _preview(message: Message) -> str:
    text = " ".join(message.body.split())
    if not text:
        return f"[{message.meta.get('kind') or 'message'}]"
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _event_data(message: Message, contact: Contact, received_at: datetime) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "conversation_id": message.conversation_id,
        "contact_id": contact.id,
        "channel": message.channel,
        "from": message.sender,
        "to": message.recipient or None,
        "text": message.body,
        "kind": message.meta.get("kind", "text"),
        "media_urls": message.meta.get("media_urls", []),
        "provider": message.provider,
        "received_at": received_at.isoformat(),
    }
