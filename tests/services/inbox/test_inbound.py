"""Incoming messages: dedupe, contacts and conversations, counters, notification and event; the reply form."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Contact, Conversation, Event, Message, Notification, ShortLink
from bulkapp.providers.base import InboundMessage
from bulkapp.services.inbox.inbound import MAX_WEB_REPLY, InvalidReply, record_inbound, record_web_reply
from tests.services.messaging.test_delivery import make_message

SENT_AT = datetime(2026, 4, 8, 6, 0, tzinfo=UTC)


def mo(text: str = "Is the offer still on?", provider_message_id: str | None = "MO-1", **fields) -> InboundMessage:
    values = {
        "sender": "+254712345678",
        "to": "22384",
        "text": text,
        "provider_message_id": provider_message_id,
        "received_at": SENT_AT,
        "channel": "sms",
    }
    values.update(fields)
    return InboundMessage(**values)


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def state(client_id: int) -> tuple:
    """Every row inbound handling writes for a tenant, with the counters."""
    db.session.expire_all()
    conversations = db.session.execute(
        sa.select(Conversation.channel, Conversation.status, Conversation.unread_count)
        .where(Conversation.client_id == client_id)
        .order_by(Conversation.id)
    ).all()
    contacts = db.session.execute(
        sa.select(Contact.contact, Contact.total_messages).where(Contact.client_id == client_id).order_by(Contact.id)
    ).all()
    return (
        count(Message, Message.client_id == client_id),
        tuple(conversations),
        tuple(contacts),
        count(Notification, Notification.client_id == client_id),
        count(Event, Event.client_id == client_id),
    )


def test_a_first_message_creates_the_contact_conversation_message_notification_and_event(tenant):
    message = record_inbound(tenant.id, "sms", "onfon", mo())
    db.session.commit()

    assert (message.direction, message.status, message.is_read) == ("inbound", "received", False)
    assert (message.sender, message.recipient, message.body) == ("+254712345678", "22384", "Is the offer still on?")
    assert (message.provider, message.provider_message_id, message.channel) == ("onfon", "MO-1", "sms")
    assert message.meta["received_at"] == SENT_AT.isoformat()
    contact = db.session.scalar(sa.select(Contact).where(Contact.client_id == tenant.id))
    assert (contact.contact, contact.total_messages) == ("+254712345678", 1)
    assert contact.last_message_at is not None
    conversation = db.session.get(Conversation, message.conversation_id)
    assert (conversation.client_id, conversation.contact_id, conversation.channel) == (tenant.id, contact.id, "sms")
    assert (conversation.status, conversation.unread_count) == ("open", 1)
    assert (conversation.last_message_direction, conversation.last_message_preview) == (
        "inbound",
        "Is the offer still on?",
    )
    assert conversation.contact_identifier == "+254712345678"
    note = db.session.scalar(sa.select(Notification).where(Notification.client_id == tenant.id))
    assert (note.type, note.title) == ("inbound_message", "New message from +254712345678")
    assert note.data == {
        "message_id": message.id, "conversation_id": conversation.id, "contact_id": contact.id,
        "text": "new_message", "params": {"sender": "+254712345678"},
    }  # fmt: skip
    event = db.session.scalar(sa.select(Event).where(Event.client_id == tenant.id))
    assert event.type == "message.received"
    assert (event.data["from"], event.data["text"], event.data["conversation_id"]) == (
        "+254712345678",
        "Is the offer still on?",
        conversation.id,
    )


def test_a_resent_webhook_is_recorded_once(tenant):
    assert record_inbound(tenant.id, "sms", "onfon", mo()) is not None
    db.session.commit()
    before = state(tenant.id)

    assert record_inbound(tenant.id, "sms", "onfon", mo(text="changed on the way?")) is None
    db.session.commit()
    assert state(tenant.id) == before


def test_the_same_vendor_id_from_another_vendor_is_a_different_message(tenant):
    record_inbound(tenant.id, "sms", "onfon", mo())
    assert record_inbound(tenant.id, "sms", "twilio", mo()) is not None
    db.session.commit()
    assert state(tenant.id)[:3] == (2, (("sms", "open", 2),), (("+254712345678", 2),))


def test_messages_without_a_vendor_id_are_all_kept(tenant):
    record_inbound(tenant.id, "sms", "onfon", mo(provider_message_id=None))
    record_inbound(tenant.id, "sms", "onfon", mo(provider_message_id=None))
    db.session.commit()
    assert state(tenant.id)[0] == 2


def test_a_known_contact_keeps_its_name_and_a_closed_conversation_reopens(tenant):
    contact = Contact(client_id=tenant.id, name="Wanjiku", contact="+254712345678", total_messages=4)
    db.session.add(contact)
    db.session.flush()
    db.session.add(
        Conversation(
            client_id=tenant.id,
            contact_id=contact.id,
            contact_identifier=contact.contact,
            channel="whatsapp",
            status="archived",
            unread_count=0,
            last_message_preview="Thanks!",
            last_message_direction="outbound",
        )
    )
    db.session.commit()

    record_inbound(tenant.id, "whatsapp", "whatsapp_cloud", mo("Hi again", "wamid.1", sender_name="Shiku"))
    record_inbound(tenant.id, "whatsapp", "whatsapp_cloud", mo("Still there?", "wamid.2", sender_name="Shiku"))
    db.session.commit()

    assert state(tenant.id)[1:3] == ((("whatsapp", "open", 2),), (("+254712345678", 6),))
    conversation = db.session.scalar(sa.select(Conversation).where(Conversation.client_id == tenant.id))
    assert (conversation.last_message_preview, conversation.last_message_direction) == ("Still there?", "inbound")
    assert db.session.get(Contact, contact.id).name == "Wanjiku"
    titles = db.session.scalars(sa.select(Notification.title).where(Notification.client_id == tenant.id)).all()
    assert titles == ["New WhatsApp message from Wanjiku"] * 2


def test_a_profile_name_names_a_new_contact(tenant):
    record_inbound(tenant.id, "whatsapp", "whatsapp_cloud", mo("Hi", "wamid.1", sender_name="Jane"))
    db.session.commit()
    assert db.session.scalar(sa.select(Contact.name).where(Contact.client_id == tenant.id)) == "Jane"


def test_each_channel_has_its_own_conversation_and_each_tenant_its_own_contact(tenant, other_tenant):
    record_inbound(tenant.id, "sms", "onfon", mo(provider_message_id="MO-1"))
    record_inbound(tenant.id, "whatsapp", "ultramsg", mo(provider_message_id="W-1"))
    record_inbound(other_tenant.id, "sms", "twilio", mo(provider_message_id="SM-1"))
    db.session.commit()

    assert state(tenant.id)[1:3] == ((("sms", "open", 1), ("whatsapp", "open", 1)), (("+254712345678", 2),))
    assert state(other_tenant.id)[1:3] == ((("sms", "open", 1),), (("+254712345678", 1),))


def test_previews_are_short_and_media_without_caption_says_what_it_is(tenant):
    long = record_inbound(tenant.id, "sms", "onfon", mo("word " * 100, "MO-1"))
    db.session.commit()
    preview = db.session.get(Conversation, long.conversation_id).last_message_preview
    assert len(preview) == 160 and preview.endswith("…")
    assert long.body == "word " * 100  # the message itself is kept whole

    photo = record_inbound(tenant.id, "whatsapp", "whatsapp_cloud", mo("", "wamid.9", kind="image"))
    db.session.commit()
    assert db.session.get(Conversation, photo.conversation_id).last_message_preview == "[image]"


def test_the_same_webhook_delivered_concurrently_is_recorded_once(app, tenant):
    """Eight threads record the same message and eight new ones from one new sender at the same moment:
    one contact, one conversation, nine messages, nine notifications and events, unread 9."""
    client_id = tenant.id
    db.session.rollback()  # the main session must not hold SQLite's lock while the threads write
    barrier, errors = threading.Barrier(8), []

    def work(k: int) -> None:
        try:
            with app.app_context():
                barrier.wait()
                record_inbound(client_id, "sms", "onfon", mo("same", "MO-SAME"))
                db.session.commit()
                record_inbound(client_id, "sms", "onfon", mo(f"own {k}", f"MO-{k}"))
                db.session.commit()
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    assert state(client_id) == (9, (("sms", "open", 9),), (("+254712345678", 9),), 9, 9)


# ------------------------------------------------------------------------------------------ reply form


def make_link(client_id: int, message: Message | None, code: str = "aB3x") -> ShortLink:
    link = ShortLink(
        client_id=client_id, message_id=message.id if message else None, code=code, original_url="https://x"
    )
    db.session.add(link)
    db.session.commit()
    return link


def test_a_web_reply_lands_in_the_conversation_of_the_message_it_answers(tenant):
    first = record_inbound(tenant.id, "sms", "onfon", mo())  # the conversation exists already
    outbound = make_message(tenant.id, "OM-1")
    outbound.conversation_id = first.conversation_id
    db.session.commit()

    reply = record_web_reply(make_link(tenant.id, outbound), "  Yes please, two bags  ")
    db.session.commit()

    assert reply.conversation_id == first.conversation_id
    assert (reply.direction, reply.status, reply.provider, reply.body) == (
        "inbound",
        "received",
        "web",
        "Yes please, two bags",
    )
    assert (reply.sender, reply.recipient) == ("+254712345678", "TENANTA")
    assert reply.meta["in_reply_to"] == outbound.id and reply.meta["short_link"] == "aB3x"
    assert state(tenant.id) == (3, (("sms", "open", 2),), (("+254712345678", 2),), 2, 2)
    event = db.session.scalars(sa.select(Event).order_by(Event.id.desc())).first()
    assert (event.type, event.data["provider"], event.data["text"]) == (
        "message.received",
        "web",
        "Yes please, two bags",
    )


def test_a_web_reply_to_a_campaign_message_starts_the_conversation(tenant):
    outbound = make_message(tenant.id, "OM-7", recipient="+254722000111")
    reply = record_web_reply(make_link(tenant.id, outbound), "Stop sending me these")
    db.session.commit()
    conversation = db.session.get(Conversation, reply.conversation_id)
    assert (conversation.contact_identifier, conversation.channel, conversation.unread_count) == (
        "+254722000111",
        "sms",
        1,
    )


@pytest.mark.parametrize("text", ["", "   \n ", "x" * (MAX_WEB_REPLY + 1)])
def test_empty_or_oversize_web_replies_are_refused_and_store_nothing(tenant, text):
    link = make_link(tenant.id, make_message(tenant.id))
    before = state(tenant.id)
    with pytest.raises(InvalidReply):
        record_web_reply(link, text)
    db.session.commit()
    assert state(tenant.id) == before


def test_a_link_without_a_message_takes_no_reply(tenant):
    with pytest.raises(InvalidReply):
        record_web_reply(make_link(tenant.id, None), "hello")


def test_a_link_never_files_a_reply_under_another_tenants_message(tenant, other_tenant):
    theirs = make_message(other_tenant.id, "OM-B")
    forged = make_link(tenant.id, theirs)  # a link row pointing across tenants must not leak
    with pytest.raises(InvalidReply):
        record_web_reply(forged, "hello")
    db.session.commit()
    assert state(other_tenant.id)[0] == 1
