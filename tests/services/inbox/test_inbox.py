"""The inbox service: filters, search, keyset pages, threads, read state, status changes and replies."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Campaign, Contact, Conversation, Message, Template
from bulkapp.providers.base import InboundMessage
from bulkapp.services.inbox import conversations as inbox
from bulkapp.services.inbox.inbound import record_inbound
from bulkapp.services.messaging import compose as messaging
from bulkapp.services.messaging.compose import SendError
from bulkapp.services.messaging.cursors import InvalidCursor
from tests.conftest import ledger_balance


def receive(client_id: int, sender: str, text: str, channel: str = "sms", name: str | None = None, mid=None):
    """A customer's message through the real inbound path; returns its conversation."""
    db.session.commit()  # start from a fresh snapshot (browser tests write while the live server does)
    inbound = InboundMessage(
        sender=sender,
        to="22384",
        text=text,
        provider_message_id=mid or f"MO-{sender}-{text}",
        received_at=utcnow(),
        channel=channel,
        sender_name=name,
    )
    message = record_inbound(client_id, channel, "sandbox", inbound)
    db.session.commit()
    return db.session.get(Conversation, message.conversation_id)


def at(conversation: Conversation, minutes_ago: int) -> None:
    conversation.last_message_at = utcnow() - timedelta(minutes=minutes_ago)
    db.session.commit()


def ids(page: inbox.ConversationPage) -> list[int]:
    return [c.id for c in page.conversations]


def test_list_is_newest_first_and_filters_by_status_channel_and_unread(tenant, other_tenant):
    a = receive(tenant.id, "+254712000001", "Hello", name="Achieng")
    b = receive(tenant.id, "+254712000002", "Habari", channel="whatsapp")
    c = receive(tenant.id, "+254712000003", "Closed one")
    foreign = receive(other_tenant.id, "+254712000009", "Not yours")
    at(a, 30)
    at(b, 10)
    at(c, 5)
    inbox.set_status(tenant.id, c.id, "closed")
    inbox.mark_read(tenant.id, a.id)
    db.session.commit()

    assert ids(inbox.list_conversations(tenant.id)) == [b.id, a.id]
    assert ids(inbox.list_conversations(tenant.id, inbox.Filters(status="closed"))) == [c.id]
    assert ids(inbox.list_conversations(tenant.id, inbox.Filters(channel="whatsapp"))) == [b.id]
    assert ids(inbox.list_conversations(tenant.id, inbox.Filters(unread=True))) == [b.id]
    assert ids(inbox.list_conversations(tenant.id, inbox.Filters(status="archived"))) == []
    assert foreign.id not in ids(inbox.list_conversations(tenant.id))
    assert inbox.unread_conversations(tenant.id) == 2  # b and the closed c
    assert inbox.unread_conversations(other_tenant.id) == 1


def test_filters_parse_ignores_unknown_values():
    filters = inbox.Filters.parse({"status": "deleted", "channel": "fax", "unread": "1", "q": "  a   b " + "x" * 300})
    assert filters.status == "open" and filters.channel is None and filters.unread is True
    assert filters.q.startswith("a b") and len(filters.q) == inbox.MAX_SEARCH
    assert inbox.Filters.parse({}).as_args() == {"status": "open"}


def test_search_by_name_number_and_message_text_stays_in_the_tenant(tenant, other_tenant):
    named = receive(tenant.id, "+254712000001", "Hello", name="Wanjiru Kamau")
    by_text = receive(tenant.id, "+254733444555", "Is the 50% discount on maize flour still on?")
    receive(tenant.id, "+254712000003", "Something else")
    receive(other_tenant.id, "+254799000000", "maize flour for Wanjiru", name="Wanjiru Other")

    def search(q):
        return ids(inbox.list_conversations(tenant.id, inbox.Filters(q=q)))

    assert search("wanjiru") == [named.id]
    assert search("MAIZE") == [by_text.id]
    assert search("0733 444 555") == [by_text.id]  # national format finds the E.164 number
    assert search("+254733444555") == [by_text.id]
    assert search("50%") == [by_text.id]  # % is literal, not a wildcard
    assert search("100%") == []
    assert search("_") == []
    assert search("nobody") == []


def test_keyset_pages_cover_everything_once_even_with_equal_times(tenant):
    when = utcnow()
    made = []
    for i in range(7):
        conversation = receive(tenant.id, f"+2547120000{i:02d}", f"msg {i}")
        conversation.last_message_at = when if i < 4 else when - timedelta(minutes=i)
        made.append(conversation.id)
    db.session.commit()
    seen, cursor = [], None
    while True:
        page = inbox.list_conversations(tenant.id, cursor=cursor, limit=3)
        seen += ids(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen)) == 7
    with pytest.raises(InvalidCursor):
        inbox.list_conversations(tenant.id, cursor="drop table")


def test_thread_both_directions_with_campaign_and_paging(tenant, other_tenant):
    conversation = receive(tenant.id, "+254712000001", "first")
    campaign = Campaign(client_id=tenant.id, name="June promo", message="Hi", channel="sms", recipients=[])
    db.session.add(campaign)
    db.session.flush()
    db.session.add(
        Message(
            client_id=tenant.id,
            conversation_id=conversation.id,
            campaign_id=campaign.id,
            direction="outbound",
            status="delivered",
            recipient=conversation.contact_identifier,
            body="Promo!",
        )
    )
    db.session.commit()
    thread = inbox.get_thread(tenant.id, conversation)
    assert [m.body for m in thread.messages] == ["first", "Promo!"]
    assert thread.campaigns == {campaign.id: "June promo"}
    assert thread.older_cursor is None and thread.last_id == thread.messages[-1].id
    # Another tenant asking for this conversation's messages gets none.
    assert inbox.get_thread(other_tenant.id, conversation).messages == []
    assert inbox.get_conversation(other_tenant.id, conversation.id) is None

    for i in range(inbox.THREAD_SIZE + 5):
        db.session.add(Message(client_id=tenant.id, conversation_id=conversation.id, recipient="x", body=f"n{i}"))
    db.session.commit()
    page = inbox.get_thread(tenant.id, conversation)
    assert len(page.messages) == inbox.THREAD_SIZE and page.messages[-1].body == f"n{inbox.THREAD_SIZE + 4}"
    older = inbox.get_thread(tenant.id, conversation, before=page.older_cursor)
    assert older.messages[-1].id < page.messages[0].id and older.messages[0].body == "first"
    assert inbox.newest_message_id(tenant.id, conversation.id) == page.last_id


def test_mark_read_is_idempotent_and_scoped(tenant, other_tenant):
    conversation = receive(tenant.id, "+254712000001", "one")
    receive(tenant.id, "+254712000001", "two")
    db.session.refresh(conversation)
    assert conversation.unread_count == 2
    assert inbox.mark_read(other_tenant.id, conversation.id) is False  # not theirs: nothing changes
    db.session.commit()
    db.session.refresh(conversation)
    assert conversation.unread_count == 2
    assert inbox.mark_read(tenant.id, conversation.id) is True
    assert inbox.mark_read(tenant.id, conversation.id) is False
    db.session.commit()
    db.session.refresh(conversation)
    assert conversation.unread_count == 0
    unread = sa.select(sa.func.count()).select_from(Message).where(Message.is_read.is_(False))
    assert db.session.scalar(unread) == 0


def test_status_changes_and_an_inbound_message_reopens(tenant, other_tenant):
    conversation = receive(tenant.id, "+254712000001", "one")
    assert inbox.set_status(other_tenant.id, conversation.id, "archived") is None
    with pytest.raises(ValueError):
        inbox.set_status(tenant.id, conversation.id, "deleted")
    inbox.set_status(tenant.id, conversation.id, "archived")
    db.session.commit()
    assert ids(inbox.list_conversations(tenant.id, inbox.Filters(status="archived"))) == [conversation.id]
    receive(tenant.id, "+254712000001", "are you there?")
    db.session.refresh(conversation)
    assert conversation.status == "open"


def test_reply_is_charged_once_per_idempotency_key(tenant):
    conversation = receive(tenant.id, "+254712345678", "Price of maize?")  # (the sandbox refuses ...01)
    before = ledger_balance(tenant.id)
    first = inbox.send_reply(
        tenant.id, conversation, body="KSh 120 a kilo.", template_id=None, user_id=None, idempotency_key="k1"
    )
    db.session.commit()
    again = inbox.send_reply(
        tenant.id, conversation, body="KSh 120 a kilo.", template_id=None, user_id=None, idempotency_key="k1"
    )
    db.session.commit()
    assert first.id == again.id
    assert first.conversation_id == conversation.id and first.channel == "sms" and first.direction == "outbound"
    assert ledger_balance(tenant.id) == before - first.cost and first.cost > 0
    db.session.refresh(conversation)
    assert conversation.last_message_direction == "outbound"


def test_whatsapp_reply_outside_the_window_needs_an_approved_template(tenant, other_tenant):
    conversation = receive(tenant.id, "+254712345678", "Habari", channel="whatsapp")
    assert inbox.reply_rules(conversation).window_open is True
    later = utcnow() + timedelta(hours=25)
    rules = inbox.reply_rules(conversation, now=later)
    assert rules.needs_template and "24 hours" in rules.reason

    # Move the customer's message back 25 hours: the window is closed now.
    db.session.execute(
        sa.update(Message)
        .where(Message.conversation_id == conversation.id)
        .values(created_at=utcnow() - timedelta(hours=25))
    )
    db.session.commit()
    plain = Template(client_id=tenant.id, name="Plain", content="Hi", channel="whatsapp")
    approved = Template(
        client_id=tenant.id,
        name="Order ready",
        content="Your order is ready.",
        channel="whatsapp",
        whatsapp_template_id="order_ready",
    )
    foreign = Template(
        client_id=other_tenant.id, name="Theirs", content="x", channel="whatsapp", whatsapp_template_id="theirs"
    )
    db.session.add_all([plain, approved, foreign])
    db.session.commit()
    rules = inbox.reply_rules(conversation)
    assert [t.name for t in inbox.reply_templates(tenant.id, "whatsapp", rules)] == ["Order ready"]
    for template_id in (None, plain.id, foreign.id):
        with pytest.raises(SendError) as error:
            inbox.send_reply(
                tenant.id, conversation, body="free text", template_id=template_id, user_id=None, idempotency_key=None
            )
        assert error.value.code == "template_required" and "template" in error.value.message
        db.session.rollback()
    message = inbox.send_reply(
        tenant.id, conversation, body="free text", template_id=approved.id, user_id=None, idempotency_key=None
    )
    db.session.commit()
    assert message.body == "Your order is ready." and message.meta["whatsapp_template"]["name"] == "order_ready"


def test_whatsapp_never_written_by_the_customer_says_so(tenant):
    contact = Contact(client_id=tenant.id, contact="+254712000001", fields={})
    db.session.add(contact)
    db.session.flush()
    conversation = Conversation(
        client_id=tenant.id, contact_id=contact.id, contact_identifier=contact.contact, channel="whatsapp"
    )
    db.session.add(conversation)
    db.session.commit()
    rules = inbox.reply_rules(conversation)
    assert rules.needs_template and "not written to you" in rules.reason
    assert inbox.reply_rules(receive(tenant.id, "+254712000002", "sms")).needs_template is False


def test_the_unread_count_stops_at_the_badge_cap(tenant):
    for i in range(4):
        receive(tenant.id, f"+2547123456{i:02d}", "hi")
    assert inbox.unread_conversations(tenant.id) == 4
    assert inbox.unread_conversations(tenant.id, cap=3) == 3


@pytest.mark.parametrize("channel", ["sms", "whatsapp", "email"])
def test_an_empty_reply_previews_like_the_full_pricing_without_running_it(tenant, channel):
    to = {"sms": "+254712345678", "whatsapp": "+254712345678", "email": "mama@example.com"}[channel]
    conversation = db.session.get(Conversation, receive(tenant.id, to, "Habari", channel=channel).id)
    full = messaging.preview_message(tenant.id, to=to, body="  ", channel=channel, template_id=None)
    assert inbox.preview_reply(tenant.id, conversation, "  ", None) == full
    assert full.quote is None and full.error is None and full.balance == tenant.balance
