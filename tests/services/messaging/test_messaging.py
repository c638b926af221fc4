"""send_message: validation, templates, pricing == charging, all-or-nothing writes, idempotency, routing, listing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import (
    Channel,
    Client,
    Contact,
    Conversation,
    Event,
    Message,
    ShortLink,
    Template,
    WalletTransaction,
)
from bulkapp.services.billing import pricing
from bulkapp.services.channels import routing as channels
from bulkapp.services.messaging import compose as messaging
from bulkapp.services.messaging import message_list, shortlinks
from bulkapp.services.messaging.compose import SendError, send_message
from bulkapp.services.messaging.cursors import InvalidCursor
from tests.conftest import ledger_balance

pytest_plugins = ["tests.simulators.onfon"]


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def snapshot(tenant_id: int) -> tuple:
    """Everything a failed send must leave untouched."""
    db.session.expire_all()
    balance = db.session.get(Client, tenant_id).balance
    return (
        count(Message),
        count(Contact),
        count(Conversation),
        count(ShortLink),
        count(WalletTransaction),
        count(Event),
        balance,
    )


def go_live_with_onfon(tenant, sim, **config) -> Channel:
    tenant = db.session.get(Client, tenant.id)
    tenant.is_test_mode = False
    channel = Channel(
        client_id=tenant.id,
        name="sms",
        provider="onfon",
        credentials=sim.credentials,
        config=sim.config(**config),
        active=True,
        webhook_token=f"onfon-{tenant.id}",
    )
    db.session.add(channel)
    db.session.commit()
    return channel


# ---------------------------------------------------------------------------------- the happy path


def test_sandbox_sms_is_charged_once_linked_and_delivered(tenant):
    message = send_message(
        tenant.id, to="0712 345 678", body="Karibu! Your order is ready.", user_id=tenant.test_user.id
    )
    db.session.commit()
    db.session.expire_all()
    message = db.session.get(Message, message.id)

    link = db.session.scalar(sa.select(ShortLink).where(ShortLink.message_id == message.id))
    assert len(link.code) == 4 and link.client_id == tenant.id
    assert message.body == f"Karibu! Your order is ready.\nReply: http://localhost/x/{link.code}"
    assert link.original_url == f"http://localhost/x/{link.code}"
    assert timedelta(days=89) < link.expires_at - utcnow() <= timedelta(days=90)

    # Jobs run inline in tests: dispatched to the sandbox, then its delivery reports applied.
    assert message.recipient == "+254712345678" and message.direction == "outbound"
    assert message.status == "delivered" and message.provider == "sandbox"
    assert message.provider_message_id.startswith("sbx-") and message.sent_at and message.delivered_at
    assert message.sender == "TENANT A" and message.meta["sent_by"] == tenant.test_user.id

    quote = pricing.quote_message(db.session.get(Client, tenant.id), "sms", "Karibu! Your order is ready.", 1)
    assert (message.segments, message.cost) == (quote.segments, quote.cost) == (1, Decimal("0.80"))
    charge = db.session.scalar(
        sa.select(WalletTransaction).where(WalletTransaction.reference == f"message:{message.id}")
    )
    assert charge.amount == Decimal("-0.80") and charge.type == "deduction"
    assert db.session.get(Client, tenant.id).balance == Decimal("99.20") == ledger_balance(tenant.id)

    contact = db.session.scalar(sa.select(Contact).where(Contact.contact == "+254712345678"))
    assert contact.client_id == tenant.id and contact.total_messages == 1 and contact.last_message_at
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.contact_id == contact.id and conversation.channel == "sms"
    assert conversation.last_message_preview == "Karibu! Your order is ready."
    assert conversation.last_message_direction == "outbound" and conversation.last_message_at
    types = db.session.scalars(sa.select(Event.type).where(Event.client_id == tenant.id)).all()
    assert types.count("message.sent") == 1 and types.count("message.delivered") == 1


def test_what_is_quoted_is_what_is_charged_for_a_long_unicode_message(tenant):
    body = "Habari 😊 " + "bei nafuu sana leo " * 12  # UCS-2, several segments with the link
    client = db.session.get(Client, tenant.id)
    quote = pricing.quote_message(client, "sms", body.strip(), 1)
    preview = messaging.preview_message(tenant.id, to="0712345678", body=body, channel="sms")
    message = send_message(tenant.id, to="0712345678", body=body)
    db.session.commit()
    db.session.expire_all()
    message = db.session.get(Message, message.id)
    assert preview.quote == quote and quote.encoding == "UCS-2" and quote.segments > 3
    assert message.segments == quote.segments == pricing.count_segments(message.body)
    assert message.cost == quote.cost == quote.segments * Decimal("0.80")
    assert db.session.get(Client, tenant.id).balance == Decimal("100.00") - quote.cost == ledger_balance(tenant.id)


def test_contact_and_conversation_are_reused(tenant):
    first = send_message(tenant.id, to="0712345678", body="One")
    second = send_message(tenant.id, to="+254 712 345 678", body="Two")
    db.session.commit()
    assert count(Contact) == 1 and count(Conversation) == 1
    assert first.conversation_id == second.conversation_id
    assert db.session.scalar(sa.select(Contact.total_messages)) == 2


def test_windows_line_endings_are_not_paid_for(tenant):
    message = send_message(tenant.id, to="0712345678", body="Line one\r\nLine two\r\n", append_reply_link=False)
    db.session.commit()
    assert message.body == "Line one\nLine two"


def test_reply_link_can_be_left_out(tenant):
    message = send_message(tenant.id, to="0712345678", body="No link please", append_reply_link=False)
    db.session.commit()
    assert message.body == "No link please" and count(ShortLink) == 0


def test_whatsapp_and_email_go_to_the_sandbox_without_a_link(tenant):
    whatsapp = send_message(tenant.id, to="0712345678", body="Hello on WhatsApp", channel="whatsapp")
    email = send_message(tenant.id, to="Jane.Doe@Example.COM", body="Hello by email", channel="email")
    db.session.commit()
    db.session.expire_all()
    whatsapp, email = db.session.get(Message, whatsapp.id), db.session.get(Message, email.id)
    assert whatsapp.body == "Hello on WhatsApp" and whatsapp.status == "delivered" and whatsapp.cost == Decimal("0.80")
    assert email.recipient == "Jane.Doe@example.com" and email.subject == "Message from Tenant A"
    assert email.status == "delivered" and email.sender is None and count(ShortLink) == 0


# ------------------------------------------------------------------------------------ templates


def test_template_variables_come_from_variables_then_the_contact(tenant):
    db.session.add(Contact(client_id=tenant.id, name="Wanjiru", contact="+254712345678", fields={"town": "Nakuru"}))
    template = Template(client_id=tenant.id, name="Ready", content="Hi {{ name }}, order {{order}} in {{town}}.")
    db.session.add(template)
    db.session.commit()
    message = send_message(
        tenant.id, to="0712345678", template_id=template.id, variables={"order": 42}, append_reply_link=False
    )
    db.session.commit()
    assert message.body == "Hi Wanjiru, order 42 in Nakuru." and message.template_id == template.id
    assert count(Contact) == 1


def test_a_typed_body_wins_over_the_template_text(tenant):
    template = Template(client_id=tenant.id, name="T", content="Template text")
    db.session.add(template)
    db.session.commit()
    message = send_message(tenant.id, to="0712345678", body="Typed", template_id=template.id, append_reply_link=False)
    assert message.body == "Typed" and message.template_id == template.id


def test_a_missing_variable_is_refused_and_nothing_is_written(tenant):
    template = Template(client_id=tenant.id, name="Ready", content="Hi {{name}}, your order is ready.")
    db.session.add(template)
    db.session.commit()
    before = snapshot(tenant.id)
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0712345678", template_id=template.id)
    assert error.value.code == "missing_variables" and "{{name}}" in error.value.message
    db.session.rollback()
    assert snapshot(tenant.id) == before


def test_another_tenants_template_is_not_found(tenant, other_tenant):
    foreign = Template(client_id=other_tenant.id, name="Theirs", content="Secret text")
    db.session.add(foreign)
    db.session.commit()
    before = snapshot(tenant.id)
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0712345678", template_id=foreign.id)
    assert (error.value.code, error.value.status) == ("not_found", 404)
    db.session.rollback()
    assert snapshot(tenant.id) == before


@pytest.mark.parametrize("variables", [["a"], {"name": {"nested": 1}}, "name=1"])
def test_malformed_variables_are_refused(tenant, variables):
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0712345678", body="Hi {{name}}", variables=variables)
    assert error.value.code == "invalid_variables"


# ----------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("channel", "to"),
    [
        ("sms", ""),
        ("sms", "12345"),
        ("sms", "020 123 4567"),
        ("sms", "not a number"),
        ("whatsapp", "0712"),
        ("email", "no-at-sign"),
        ("email", "a@b"),
    ],
)
def test_invalid_recipients_are_refused(tenant, channel, to):
    before = snapshot(tenant.id)
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to=to, body="Hello", channel=channel)
    assert (error.value.code, error.value.field, error.value.status) == ("invalid_recipient", "to", 422)
    db.session.rollback()
    assert snapshot(tenant.id) == before


@pytest.mark.parametrize("body", ["", "   ", "\r\n\t", None])
def test_an_empty_body_is_refused(tenant, body):
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0712345678", body=body)
    assert error.value.code == "empty_body"


def test_unknown_channel_is_refused(tenant):
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0712345678", body="Hi", channel="pigeon")
    assert error.value.code == "invalid_channel"


def test_sms_length_limit_counts_the_reply_link(tenant):
    link = len(pricing.reply_link_suffix("http://localhost"))
    fits = "a" * (1600 - link)
    assert send_message(tenant.id, to="0712345678", body=fits).segments == 11
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0712345678", body=fits + "a")
    assert error.value.code == "message_too_long" and "1,600" in error.value.message
    assert send_message(tenant.id, to="0712345678", body="a" * 1600, append_reply_link=False).segments == 11


def test_whatsapp_length_limit(tenant):
    assert send_message(tenant.id, to="0712345678", body="a" * 4096, channel="whatsapp").segments == 1
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0712345678", body="a" * 4097, channel="whatsapp")
    assert error.value.code == "message_too_long"


def test_email_subject_limit(tenant):
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="a@example.com", body="Hi", channel="email", subject="s" * 256)
    assert error.value.code == "invalid_subject"


def test_a_suspended_tenant_cannot_send(tenant):
    db.session.get(Client, tenant.id).status = False
    db.session.commit()
    before = snapshot(tenant.id)
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0712345678", body="Hello")
    assert (error.value.code, error.value.status) == ("account_suspended", 403)
    assert "suspended" in error.value.message
    db.session.rollback()
    assert snapshot(tenant.id) == before


def test_insufficient_balance_writes_nothing(tenant):
    from bulkapp.services.billing import wallet

    wallet.debit(tenant.id, "99.50", reference="spend-most")
    db.session.commit()
    before = snapshot(tenant.id)
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0712345678", body="x" * 200)  # 2 segments: KSh 1.60 > 0.50
    assert (error.value.code, error.value.status) == ("insufficient_balance", 402)
    assert "KSh 1.60" in error.value.message and "KSh 0.50" in error.value.message
    db.session.rollback()
    assert snapshot(tenant.id) == before
    assert db.session.get(Client, tenant.id).balance == Decimal("0.50") == ledger_balance(tenant.id)


def test_insufficient_balance_found_by_the_charge_itself_rolls_everything_back(tenant):
    """The balance check before the SAVEPOINT passed, but the conditional debit refuses (a concurrent
    spend): the contact, conversation, message and link created inside it are all rolled back."""
    rows = (Message, Contact, Conversation, ShortLink, WalletTransaction, Event)
    before = [count(model) for model in rows]
    client = db.session.get(Client, tenant.id)  # loaded with the 100.00 balance
    db.session.execute(
        sa.update(Client)
        .where(Client.id == tenant.id)
        .values(balance=Decimal("0.10"))
        .execution_options(synchronize_session=False)
    )
    assert client.balance == Decimal("100.00")  # stale on purpose: the pre-check passes
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0799000111", body="Hello")
    assert error.value.code == "insufficient_balance" and "KSh 0.10" in error.value.message
    assert [count(model) for model in rows] == before
    db.session.rollback()


# ---------------------------------------------------------------------------------- idempotency


def test_the_same_idempotency_key_returns_the_same_message_and_charges_once(tenant):
    first = send_message(tenant.id, to="0712345678", body="Pay day!", idempotency_key="order-77")
    db.session.commit()
    again = send_message(tenant.id, to="0712345678", body="Pay day!", idempotency_key="order-77")
    db.session.commit()
    assert again.id == first.id and count(Message) == 1
    charges = db.session.scalars(
        sa.select(WalletTransaction).where(
            WalletTransaction.type == "deduction", WalletTransaction.client_id == tenant.id
        )
    ).all()
    assert len(charges) == 1
    assert db.session.get(Client, tenant.id).balance == Decimal("99.20") == ledger_balance(tenant.id)


def test_an_idempotency_key_reused_for_another_message_conflicts(tenant):
    send_message(tenant.id, to="0712345678", body="Pay day!", idempotency_key="k1")
    db.session.commit()
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0712345678", body="Different text", idempotency_key="k1")
    assert (error.value.code, error.value.status) == ("idempotency_conflict", 409)
    assert count(Message) == 1


def test_idempotency_keys_are_per_tenant(tenant, other_tenant):
    mine = send_message(tenant.id, to="0712345678", body="Same", idempotency_key="shared")
    theirs = send_message(other_tenant.id, to="0712345678", body="Same", idempotency_key="shared")
    db.session.commit()
    assert mine.id != theirs.id and mine.client_id == tenant.id and theirs.client_id == other_tenant.id


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
def test_bad_idempotency_keys_are_refused(tenant, key):
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0712345678", body="Hi", idempotency_key=key)
    assert error.value.code == "invalid_idempotency_key"


# -------------------------------------------------------------------------------------- routing


def test_test_mode_always_uses_the_sandbox(tenant, onfon_sim):
    go_live_with_onfon(tenant, onfon_sim)
    db.session.get(Client, tenant.id).is_test_mode = True
    db.session.commit()
    route = channels.resolve_channel(tenant.id, "sms")
    assert route.is_sandbox and route.sender == "TENANT A"
    sandbox = db.session.scalar(sa.select(Channel).where(Channel.provider == "sandbox"))
    assert route.channel_id == sandbox.id
    assert channels.usable_kinds(tenant.id) == ["sms", "whatsapp", "email"]
    email = channels.resolve_channel(tenant.id, "email")
    assert email.is_sandbox and email.sender is None


def test_live_tenants_use_their_active_channel_and_never_the_sandbox(tenant, onfon_sim):
    channel = go_live_with_onfon(tenant, onfon_sim, transactional_sender_id="BULKAPP")
    route = channels.resolve_channel(tenant.id, "sms")
    assert (route.provider_name, route.channel_id, route.sender) == ("onfon", channel.id, "BULKAPP")
    assert route.credentials == onfon_sim.credentials
    assert route.promotional_sender == "ACME"  # the channel's default sender_id
    assert channels.usable_kinds(tenant.id) == ["sms"]
    with pytest.raises(channels.ChannelUnavailable):
        channels.resolve_channel(tenant.id, "whatsapp")
    channel.active = False
    db.session.commit()
    assert channels.usable_kinds(tenant.id) == []
    before = snapshot(tenant.id)
    with pytest.raises(SendError) as error:
        send_message(tenant.id, to="0712345678", body="Hello")
    assert error.value.code == "channel_unavailable" and "Settings" in error.value.message
    db.session.rollback()
    assert snapshot(tenant.id) == before


def test_live_send_through_onfon_stores_the_vendor_id(tenant, onfon_sim):
    go_live_with_onfon(tenant, onfon_sim)
    message = send_message(tenant.id, to="0712345600", body="Live hello")
    db.session.commit()
    db.session.expire_all()
    message = db.session.get(Message, message.id)
    (submission,) = onfon_sim.submissions
    assert message.status == "sent" and message.provider == "onfon"
    assert message.provider_message_id == submission.provider_message_id
    assert submission.recipient == "254712345600" and submission.text == message.body and submission.sender == "ACME"


# ---------------------------------------------------------------------------------- short links


def test_a_taken_code_is_retried_inside_a_savepoint(tenant, monkeypatch):
    taken = send_message(tenant.id, to="0712345678", body="First")
    db.session.commit()
    taken_code = db.session.scalar(sa.select(ShortLink.code).where(ShortLink.message_id == taken.id))
    codes = iter([taken_code, taken_code, "Zz99"])
    monkeypatch.setattr(shortlinks, "new_code", lambda *_: next(codes))
    message = send_message(tenant.id, to="0722000111", body="Second")
    db.session.commit()
    assert message.body.endswith("/x/Zz99") and count(ShortLink) == 2 and count(Message) == 2
    assert db.session.get(Client, tenant.id).balance == Decimal("98.40") == ledger_balance(tenant.id)


def test_codes_are_case_sensitive(tenant, monkeypatch):
    codes = iter(["aBcD", "AbCd"])
    monkeypatch.setattr(shortlinks, "new_code", lambda *_: next(codes))
    first = send_message(tenant.id, to="0712345678", body="First")
    second = send_message(tenant.id, to="0722000111", body="Second")
    db.session.commit()
    assert first.body.endswith("/x/aBcD") and second.body.endswith("/x/AbCd") and count(ShortLink) == 2


def test_a_full_code_space_is_an_error_not_a_loop(tenant, monkeypatch):
    first = send_message(tenant.id, to="0712345678", body="First")
    db.session.commit()
    code = db.session.scalar(sa.select(ShortLink.code).where(ShortLink.message_id == first.id))
    monkeypatch.setattr(shortlinks, "new_code", lambda *_: code)
    with pytest.raises(shortlinks.CodeSpaceExhausted):
        send_message(tenant.id, to="0722000111", body="Second")
    db.session.rollback()
    assert count(Message) == 1


def test_link_lifetime_is_configurable(tenant, work_app, monkeypatch):
    monkeypatch.setitem(work_app.config, "SHORT_LINK_TTL_DAYS", 7)
    message = send_message(tenant.id, to="0712345678", body="Short-lived")
    db.session.commit()
    link = db.session.scalar(sa.select(ShortLink).where(ShortLink.message_id == message.id))
    assert timedelta(days=6) < link.expires_at - utcnow() <= timedelta(days=7)


def test_new_codes_are_four_base62_characters():
    codes = {shortlinks.new_code() for _ in range(500)}
    assert all(len(c) == 4 and set(c) <= set(shortlinks.ALPHABET) for c in codes)
    assert len(codes) > 490
    assert any(c != c.lower() for c in codes) and any(c != c.upper() for c in codes)


# --------------------------------------------------------------------------------- live preview


def test_preview_tolerates_what_the_send_refuses(tenant):
    db.session.add(Template(client_id=tenant.id, name="T", content="Hi {{name}}!"))
    db.session.commit()
    template_id = db.session.scalar(sa.select(Template.id))
    preview = messaging.preview_message(tenant.id, to="07", body="", channel="sms", template_id=template_id)
    assert preview.quote is not None and preview.missing == ("name",) and preview.error is None
    empty = messaging.preview_message(tenant.id, to="", body="   ", channel="sms")
    assert empty.quote is None and empty.error is None
    too_long = messaging.preview_message(tenant.id, to="", body="a" * 2000, channel="sms")
    assert too_long.quote is None and "1,600" in too_long.error
    poor = messaging.preview_message(tenant.id, to="", body="x" * 2000, channel="whatsapp")
    assert poor.quote.cost == Decimal("0.80") and poor.balance_after == Decimal("99.20") and poor.affordable


# -------------------------------------------------------------------------------------- listing


def test_keyset_pages_are_newest_first_without_gaps_or_repeats(tenant, other_tenant):
    ids = [send_message(tenant.id, to="0712345678", body=f"Message {i}", append_reply_link=False).id for i in range(30)]
    send_message(other_tenant.id, to="0712345678", body="Not yours")
    db.session.commit()
    first = message_list.list_messages(tenant.id, limit=25)
    second = message_list.list_messages(tenant.id, limit=25, cursor=first.next_cursor)
    assert [m.id for m in first.messages] == ids[::-1][:25]
    assert [m.id for m in second.messages] == ids[::-1][25:] and second.next_cursor is None
    assert message_list.list_messages(tenant.id, limit=1000).messages.__len__() == 30  # limit clamps to 100
    assert message_list.list_messages(tenant.id, status="delivered", direction="outbound").messages
    assert message_list.list_messages(tenant.id, status="failed").messages == []


def test_messages_with_the_same_timestamp_are_paged_by_id(tenant):
    ids = [send_message(tenant.id, to="0712345678", body=f"M{i}", append_reply_link=False).id for i in range(5)]
    db.session.commit()
    same = utcnow().replace(microsecond=123456)
    db.session.execute(sa.update(Message).values(created_at=same))
    db.session.commit()
    seen, cursor = [], None
    while True:
        page = message_list.list_messages(tenant.id, limit=2, cursor=cursor)
        seen += [m.id for m in page.messages]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ids[::-1]


@pytest.mark.parametrize("cursor", ["garbage", "1_", "_1", "1-2", "1_2_3", "9" * 30 + "_1", "9" * 18 + "_1"])
def test_foreign_cursors_are_refused(tenant, cursor):
    with pytest.raises(InvalidCursor):
        message_list.list_messages(tenant.id, cursor=cursor)


def test_awaiting_covers_pending_sending_and_recently_sent(tenant):
    message = Message(client_id=tenant.id, recipient="+254712345678", body="x", status="pending", direction="outbound")
    assert message_list.is_awaiting(message)
    message.status, message.sent_at = "sent", utcnow()
    assert message_list.is_awaiting(message)
    message.sent_at = utcnow() - timedelta(minutes=11)
    assert not message_list.is_awaiting(message)
    for status in ("delivered", "failed", "unknown"):
        message.status = status
        assert not message_list.is_awaiting(message)
