"""Opt-outs: every keyword form, START/ANZA, one confirmation however often a webhook comes, refused sends,
the reply form, and numbers that providers report as opted out."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Client, Contact, Message, ShortLink, Suppression, User, WalletTransaction
from bulkapp.providers.base import DeliveryStatus, InboundMessage
from bulkapp.services.compliance import optouts
from bulkapp.services.inbox.inbound import apply_keyword, record_inbound, record_web_reply
from bulkapp.services.messaging import compose as messaging
from bulkapp.services.messaging import dispatch
from bulkapp.services.messaging.delivery import apply_delivery_report
from tests.jobs.test_dispatch import live  # noqa: F401 - the fixture
from tests.services.messaging.test_delivery import make_message, report

pytest_plugins = ["tests.simulators.onfon"]

CUSTOMER = "+254712345678"
NOW = datetime(2026, 4, 8, 6, 0, tzinfo=UTC)


def mo(text: str, provider_message_id: str = "MO-1", sender: str = CUSTOMER, **fields) -> InboundMessage:
    values = {"to": "22384", "received_at": NOW, "channel": "sms", **fields}
    return InboundMessage(sender=sender, text=text, provider_message_id=provider_message_id, **values)


def outbound(client_id: int) -> list[Message]:
    db.session.expire_all()
    query = sa.select(Message).where(Message.client_id == client_id, Message.direction == "outbound")
    return list(db.session.scalars(query.order_by(Message.id)))


def suppression(client_id: int, contact: str = CUSTOMER) -> Suppression | None:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(Suppression).where(Suppression.client_id == client_id, Suppression.contact == contact)
    )


def opted_out_at(client_id: int, contact: str = CUSTOMER):
    db.session.expire_all()
    return db.session.scalar(
        sa.select(Contact.opted_out_at).where(Contact.client_id == client_id, Contact.contact == contact)
    )


def receive(client_id: int, text: str, provider_message_id: str = "MO-1", provider: str = "onfon", **fields):
    message = record_inbound(client_id, fields.get("channel", "sms"), provider, mo(text, provider_message_id, **fields))
    db.session.commit()
    return message


# ----------------------------------------------------------------------------------------- keywords


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("STOP", "STOP"),
        ("stop", "STOP"),
        (" Stop! ", "STOP"),
        ("STOP ALL", "STOP ALL"),
        ("stop   all.", "STOP ALL"),
        ("UNSUBSCRIBE", "UNSUBSCRIBE"),
        ("Unsubscribe", "UNSUBSCRIBE"),
        ("ONDOKA", "ONDOKA"),
        ("ondoka", "ONDOKA"),
        ("TOKA", "TOKA"),
        ("\tToka!!\n", "TOKA"),
    ],
)
def test_every_keyword_form_opts_out_and_sends_one_confirmation(tenant, text, keyword):
    inbound = receive(tenant.id, text)

    row = suppression(tenant.id)
    assert (row.source, row.keyword, row.channel) == ("keyword", keyword, "sms")
    assert opted_out_at(tenant.id) is not None
    (confirmation,) = outbound(tenant.id)
    assert confirmation.recipient == CUSTOMER and confirmation.channel == "sms"
    assert confirmation.body == (
        "Hutapokea tena jumbe kutoka kwa Tenant A. Jibu ANZA kujiunga tena."  # a Swahili keyword: a Swahili answer
        if keyword in ("ONDOKA", "TOKA")
        else "You will not receive more messages from Tenant A. Reply START to subscribe again."
    )
    assert "/x/" not in confirmation.body  # no reply link on a confirmation
    assert confirmation.idempotency_key == f"opt-out-confirmation:{inbound.id}"
    assert confirmation.status != "failed"
    assert inbound.body == text  # the inbound message itself is kept as written, in the inbox


@pytest.mark.parametrize(
    "text", ["Please stop sending these", "STOPP", "stop it", "START STOP", "?!", "Ondoka sasa hivi", "TOKA STOP"]
)
def test_other_texts_are_ordinary_replies(tenant, text):
    receive(tenant.id, text)
    assert suppression(tenant.id) is None and opted_out_at(tenant.id) is None
    assert outbound(tenant.id) == []


@pytest.mark.parametrize("word", ["START", "start", " Anza. ", "ANZA"])
def test_start_or_anza_subscribes_again_with_one_confirmation(tenant, word):
    receive(tenant.id, "STOP", "MO-1")
    start = receive(tenant.id, word, "MO-2")

    assert suppression(tenant.id) is None and opted_out_at(tenant.id) is None
    first, second = outbound(tenant.id)
    assert second.body == (
        "Umejiunga tena na jumbe za Tenant A. Jibu TOKA kuzisimamisha."
        if "anza" in word.lower()
        else "You are subscribed again to messages from Tenant A. Reply STOP to stop them."
    )
    assert second.idempotency_key == f"opt-in-confirmation:{start.id}"
    # Subscribed again: an ordinary message goes out once more.
    messaging.send_message(tenant.id, to="0712345678", body="Offer")
    db.session.commit()
    assert len(outbound(tenant.id)) == 3


def test_start_from_someone_who_never_opted_out_changes_nothing_and_sends_nothing(tenant):
    receive(tenant.id, "START")
    assert suppression(tenant.id) is None and outbound(tenant.id) == []


def test_a_second_stop_is_not_confirmed_again(tenant):
    receive(tenant.id, "STOP", "MO-1")
    receive(tenant.id, "stop", "MO-2")
    assert len(outbound(tenant.id)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 1


def test_tenant_edited_keyword_lists_replace_the_defaults(tenant, other_tenant):
    client = db.session.get(Client, tenant.id)
    optouts.set_keywords(client, ["acha!", " Sitaki  tena "], ["rudi"])
    db.session.commit()

    receive(tenant.id, "STOP", "MO-1")  # no longer a keyword for this tenant
    assert suppression(tenant.id) is None
    receive(tenant.id, "sitaki tena", "MO-2")
    assert suppression(tenant.id).keyword == "SITAKI TENA"
    (confirmation,) = outbound(tenant.id)
    assert confirmation.body.endswith("Reply RUDI to subscribe again.")
    receive(tenant.id, "Rudi", "MO-3")
    assert suppression(tenant.id) is None
    assert outbound(tenant.id)[-1].body.endswith("Reply ACHA to stop them.")
    # The other tenant keeps the defaults.
    receive(other_tenant.id, "STOP", "MO-B")
    assert suppression(other_tenant.id) is not None and suppression(tenant.id) is None


def test_a_tenant_keyword_is_confirmed_in_the_account_owners_language(tenant):
    """A keyword the tenant added has no known language: the confirmation follows the owner's profile."""
    client = db.session.get(Client, tenant.id)
    optouts.set_keywords(client, ["acha", "STOP"], ["rudi", "START"])
    db.session.get(User, tenant.test_user.id).language = "sw"
    db.session.commit()
    receive(tenant.id, "acha", "MO-1")
    assert outbound(tenant.id)[-1].body == "Hutapokea tena jumbe kutoka kwa Tenant A. Jibu START kujiunga tena."
    receive(tenant.id, "START", "MO-2")  # an English keyword: an English answer, whatever the owner speaks
    assert (
        outbound(tenant.id)[-1].body == "You are subscribed again to messages from Tenant A. Reply STOP to stop them."
    )


@pytest.mark.parametrize(
    ("out", "back", "error"),
    [
        ([], ["START"], "at least one opt-out"),
        (["  ", "!"], ["START"], "at least one opt-out"),
        (["STOP"], [], "at least one opt-in"),
        (["STOP", "START"], ["start"], "both opt out and opt in"),
        (["X" * 41], ["START"], "at most 40 characters"),
        ([f"W{i}" for i in range(21)], ["START"], "at most 20 keywords"),
    ],
)
def test_unusable_keyword_lists_are_refused_and_change_nothing(tenant, out, back, error):
    client = db.session.get(Client, tenant.id)
    with pytest.raises(ValueError, match=error):
        optouts.set_keywords(client, out, back)
    assert optouts.keywords(client) == (list(optouts.OPT_OUT_KEYWORDS), list(optouts.OPT_IN_KEYWORDS))


def test_footer_defaults_is_editable_and_bounded(tenant):
    client = db.session.get(Client, tenant.id)
    assert optouts.footer(client) == "STOP*456*9*5#"
    optouts.set_footer(client, "  Reply  STOP to 22384 ")
    assert optouts.footer(client) == "Reply STOP to 22384"
    with pytest.raises(ValueError, match="under 41 characters"):
        optouts.set_footer(client, "x" * 41)
    assert optouts.footer(client) == "Reply STOP to 22384"
    optouts.set_footer(client, "")
    assert optouts.footer(client) == "STOP*456*9*5#" and "optout_footer" not in client.settings


# ------------------------------------------------------------------------------- once and only once


def test_a_replayed_inbound_webhook_sends_the_confirmation_once(tenant):
    assert receive(tenant.id, "STOP", "MO-9") is not None
    for _ in range(3):
        assert receive(tenant.id, "STOP", "MO-9") is None  # the vendor resends the same message
    assert len(outbound(tenant.id)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 1


def test_handling_the_same_inbound_message_again_reuses_its_confirmation(tenant):
    """Even when the list changed in between (so the handler runs fully again), the idempotency key derived from
    the inbound message id means its confirmation exists once and is charged once."""
    inbound = receive(tenant.id, "STOP")
    optouts.opt_in(tenant.id, CUSTOMER)
    assert apply_keyword(db.session.get(Message, inbound.id), source="keyword", reply_channel="sms") == "opt_out"
    db.session.commit()
    assert len(outbound(tenant.id)) == 1 and suppression(tenant.id) is not None
    charges = db.session.scalars(
        sa.select(WalletTransaction.reference).where(WalletTransaction.reference.like("message:%"))
    ).all()
    assert charges == [f"message:{outbound(tenant.id)[0].id}"]


def test_the_opt_out_stands_when_the_confirmation_cannot_be_paid(tenant):
    client = db.session.get(Client, tenant.id)
    client.balance = Decimal("0")
    db.session.commit()
    assert receive(tenant.id, "STOP") is not None
    assert suppression(tenant.id) is not None and outbound(tenant.id) == []


def test_twilio_inbound_stop_is_recorded_but_twilio_confirms_it_itself(tenant):
    receive(tenant.id, "STOP", "SM1", provider="twilio")
    assert suppression(tenant.id).source == "keyword" and outbound(tenant.id) == []


def test_whatsapp_stop_is_confirmed_on_whatsapp(tenant):
    receive(tenant.id, "Ondoka", "wamid.1", provider="whatsapp_cloud", channel="whatsapp")
    (confirmation,) = outbound(tenant.id)
    assert confirmation.channel == "whatsapp" and suppression(tenant.id).channel == "whatsapp"


# ------------------------------------------------------------------------------------- the reply form


def sent_with_link(client_id: int, to: str = CUSTOMER) -> ShortLink:
    message = messaging.send_message(client_id, to=to, body="Big sale on Saturday")
    db.session.commit()
    return db.session.scalar(sa.select(ShortLink).where(ShortLink.message_id == message.id))


def test_stop_on_the_reply_form_opts_out_and_confirms_by_sms(tenant):
    link = sent_with_link(tenant.id)
    reply = record_web_reply(link, "  stop!! ")
    db.session.commit()

    row = suppression(tenant.id)
    assert (row.source, row.keyword) == ("reply_form", "STOP")
    original, confirmation = outbound(tenant.id)
    assert confirmation.channel == "sms" and confirmation.recipient == CUSTOMER
    assert confirmation.idempotency_key == f"opt-out-confirmation:{reply.id}"
    # And the campaign/single-send path now refuses the number.
    with pytest.raises(messaging.SendError) as refused:
        messaging.send_message(tenant.id, to=CUSTOMER, body="Another offer")
    assert refused.value.code == "recipient_opted_out"


def test_an_ordinary_reply_on_the_form_does_not_opt_out(tenant):
    link = sent_with_link(tenant.id)
    record_web_reply(link, "Stop by the shop at 5?")
    db.session.commit()
    assert suppression(tenant.id) is None and len(outbound(tenant.id)) == 1


# ----------------------------------------------------------------------------------- refused sends


@pytest.mark.parametrize("to", ["0712345678", "+254 712 345 678", "254712345678", "712345678"])
def test_a_single_send_to_an_opted_out_number_is_refused_and_writes_nothing(tenant, to):
    optouts.opt_out(tenant.id, CUSTOMER, source="manual")
    db.session.commit()
    before = db.session.scalar(sa.select(sa.func.count()).select_from(WalletTransaction))

    with pytest.raises(messaging.SendError) as refused:
        messaging.send_message(tenant.id, to=to, body="Hello")
    assert (refused.value.code, refused.value.status, refused.value.field) == ("recipient_opted_out", 422, "to")
    assert "opted out" in refused.value.message
    db.session.rollback()
    assert outbound(tenant.id) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WalletTransaction)) == before
    assert db.session.get(Client, tenant.id).balance == Decimal("100.00")


def test_an_inbox_reply_to_an_opted_out_customer_is_refused(tenant):
    receive(tenant.id, "Do you have size 42?", "MO-1")
    receive(tenant.id, "STOP", "MO-2")
    conversation_contact = db.session.scalar(sa.select(Contact.contact).where(Contact.client_id == tenant.id))
    with pytest.raises(messaging.SendError) as refused:
        messaging.send_message(tenant.id, to=conversation_contact, body="Yes we do!", channel="sms")
    assert refused.value.code == "recipient_opted_out"
    with pytest.raises(messaging.SendError) as on_whatsapp:
        messaging.send_message(tenant.id, to=conversation_contact, body="Yes we do!", channel="whatsapp")
    assert on_whatsapp.value.code == "recipient_opted_out"


def test_the_live_quote_says_the_number_opted_out(tenant):
    optouts.opt_out(tenant.id, CUSTOMER, source="manual")
    preview = messaging.preview_message(tenant.id, to="0712345678", body="Hello")
    assert preview.quote is None and "opted out" in preview.error


def test_suppression_belongs_to_one_tenant(tenant, other_tenant):
    optouts.opt_out(tenant.id, CUSTOMER, source="manual")
    db.session.commit()
    message = messaging.send_message(other_tenant.id, to=CUSTOMER, body="Hello from B")
    assert message.recipient == CUSTOMER
    assert optouts.suppressed_among(tenant.id, [CUSTOMER, "+254700000000"]) == {CUSTOMER}
    assert optouts.suppressed_among(other_tenant.id, [CUSTOMER]) == set()


def test_suppressed_among_handles_campaign_sized_lists(tenant):
    numbers = [f"+2547{i:08d}" for i in range(2000)]
    for number in numbers[::7]:
        optouts.opt_out(tenant.id, number, source="manual")
    assert optouts.suppressed_among(tenant.id, iter(numbers), chunk=300) == set(numbers[::7])


def test_an_unknown_source_is_a_programming_error(tenant):
    with pytest.raises(ValueError, match="unknown opt-out source"):
        optouts.opt_out(tenant.id, CUSTOMER, source="guess")


# ---------------------------------------------------------------------------- provider-reported opt-outs


@pytest.mark.parametrize(
    ("provider", "code", "expected"),
    [
        ("twilio", "21610", True),
        ("twilio", "21211", False),
        ("onfon", "406", True),
        ("mobitech", "4006", True),
        ("africastalking", "406", True),
        ("africastalking", "UserInBlackList", True),
        ("onfon", "userinblacklist", True),
        ("whatsapp_cloud", "131050", True),
        ("whatsapp_cloud", "131047", False),
        ("twilio", "406", False),
        ("sandbox", "sandbox_failed", False),
        ("onfon", None, False),
        (None, "", False),
    ],
)
def test_provider_codes_that_mean_opted_out(provider, code, expected):
    assert optouts.is_provider_opt_out(provider, code) is expected


def test_a_send_the_provider_refuses_as_opted_out_suppresses_the_number(live, onfon_sim):  # noqa: F811
    opted, invalid = "+254712345688", "+254712345699"  # simulator magic: 88 opted out, 99 invalid
    ids = [messaging.send_message(live.id, to=n, body="Offer", append_reply_link=False).id for n in (opted, invalid)]
    db.session.commit()
    dispatch.dispatch_messages(live.id, ids)
    db.session.commit()

    row = suppression(live.id, opted)
    assert (row.source, row.keyword, row.channel) == ("provider", "onfon 406", "sms")
    assert suppression(live.id, invalid) is None
    assert {m.status for m in outbound(live.id)} == {"failed"}
    with pytest.raises(messaging.SendError) as refused:
        messaging.send_message(live.id, to=opted, body="Again")
    assert refused.value.code == "recipient_opted_out"


def test_a_delivery_report_saying_opted_out_suppresses_the_number(tenant):
    blocked = make_message(tenant.id, "SM-1", provider="twilio", recipient="+254712345611")
    unreachable = make_message(tenant.id, "SM-2", provider="twilio", recipient="+254712345622")
    apply_delivery_report("twilio", report("SM-1", DeliveryStatus.FAILED, error_code="21610"))
    apply_delivery_report("twilio", report("SM-1", DeliveryStatus.FAILED, error_code="21610"))  # a resend
    apply_delivery_report("twilio", report("SM-2", DeliveryStatus.FAILED, error_code="30003"))
    db.session.commit()

    assert suppression(tenant.id, blocked.recipient).source == "provider"
    assert suppression(tenant.id, unreachable.recipient) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 1


def test_an_africas_talking_style_failure_reason_suppresses_the_number(tenant):
    message = make_message(tenant.id, "ATXid_1", provider="africastalking", recipient="+254712345633")
    apply_delivery_report("africastalking", report("ATXid_1", DeliveryStatus.FAILED, error_code="UserInBlackList"))
    db.session.commit()
    assert suppression(tenant.id, message.recipient).keyword == "africastalking UserInBlackList"
