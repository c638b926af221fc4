"""Delivery reports: forward-only status moves, exact campaign counters, one event/notification/refund each."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Campaign, Channel, Client, Event, Message, Notification, WalletTransaction
from bulkapp.providers.base import DeliveryReport, DeliveryStatus
from bulkapp.services.messaging.delivery import apply_delivery_report, refund_reference
from tests.conftest import ledger_balance

DONE_AT = datetime(2026, 4, 8, 6, 31, tzinfo=UTC)


def make_campaign(client_id: int, name: str = "April promo") -> Campaign:
    campaign = Campaign(client_id=client_id, name=name, message="Hello", status="sending", total_recipients=10)
    db.session.add(campaign)
    db.session.commit()
    return campaign


def make_message(
    client_id: int,
    provider_message_id: str | None = "OM-1",
    *,
    provider: str = "onfon",
    status: str = "sent",
    campaign_id: int | None = None,
    cost: str = "0.80",
    recipient: str = "+254712345678",
    channel: str = "sms",
) -> Message:
    message = Message(
        client_id=client_id,
        channel=channel,
        direction="outbound",
        provider=provider,
        sender="TENANTA",
        recipient=recipient,
        body="Hello from Tenant A",
        status=status,
        provider_message_id=provider_message_id,
        cost=Decimal(cost),
        campaign_id=campaign_id,
        sent_at=utcnow() if status == "sent" else None,
    )
    db.session.add(message)
    db.session.commit()
    return message


def make_channel(client_id: int, provider: str = "onfon", token: str | None = None, **settings) -> Channel:
    channel = Channel(
        client_id=client_id,
        name=settings.pop("name", "sms"),
        provider=provider,
        credentials=settings.pop("credentials", {}),
        config=settings.pop("config", {}),
        webhook_token=token,
    )
    db.session.add(channel)
    db.session.commit()
    return channel


def report(
    provider_message_id: str = "OM-1",
    status: DeliveryStatus = DeliveryStatus.DELIVERED,
    vendor_status: str | None = None,
    **extra,
) -> DeliveryReport:
    words = {"delivered": "DELIVRD", "failed": "UNDELIV", "sent": "ACCEPTD", "unknown": "UNKNOWN"}
    return DeliveryReport(provider_message_id, status, vendor_status or words[status.value], **extra)


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def fresh(obj):
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


def effects(client_id: int) -> tuple:
    """Everything a report may add for a tenant: events by type, notifications, ledger rows."""
    events = tuple(db.session.scalars(sa.select(Event.type).where(Event.client_id == client_id).order_by(Event.id)))
    return (
        events,
        count(Notification, Notification.client_id == client_id),
        count(WalletTransaction, WalletTransaction.client_id == client_id),
    )


# ------------------------------------------------------------------------------------------- transitions


def test_delivered_report_moves_a_sent_message_and_counts_it_once(tenant):
    campaign = make_campaign(tenant.id)
    message = make_message(tenant.id, campaign_id=campaign.id)

    applied = apply_delivery_report("onfon", report(occurred_at=DONE_AT))
    db.session.commit()

    assert applied.id == message.id
    message = fresh(message)
    assert (message.status, message.delivered_at, message.failed_at) == ("delivered", DONE_AT, None)
    assert message.meta["delivery"]["vendor_status"] == "DELIVRD"
    assert fresh(campaign).delivered_count == 1
    event = db.session.scalar(sa.select(Event).where(Event.client_id == tenant.id))
    assert event.type == "message.delivered"
    assert event.data["message_id"] == message.id and event.data["campaign_id"] == campaign.id
    assert event.data["occurred_at"] == DONE_AT.isoformat()
    assert count(Notification, Notification.client_id == tenant.id) == 0  # success is not a notification


def test_repeated_reports_change_and_count_nothing_twice(tenant):
    campaign = make_campaign(tenant.id)
    make_message(tenant.id, campaign_id=campaign.id)
    apply_delivery_report("onfon", report(occurred_at=DONE_AT))
    db.session.commit()
    before = effects(tenant.id)

    for _ in range(3):
        again = apply_delivery_report("onfon", report(occurred_at=datetime(2026, 4, 9, tzinfo=UTC)))
        db.session.commit()
        assert again.status == "delivered"

    assert effects(tenant.id) == before
    assert fresh(campaign).delivered_count == 1
    assert fresh(again).delivered_at == DONE_AT  # the first report's time stays


def test_out_of_order_sent_after_delivered_does_not_move_the_message_back(tenant):
    message = make_message(tenant.id)
    apply_delivery_report("onfon", report(status=DeliveryStatus.DELIVERED))
    apply_delivery_report("onfon", report(status=DeliveryStatus.SENT))
    db.session.commit()

    assert fresh(message).status == "delivered"
    assert effects(tenant.id)[0] == ("message.delivered",)


def test_delivered_and_failed_are_final(tenant):
    campaign = make_campaign(tenant.id)
    delivered = make_message(tenant.id, "OM-D", campaign_id=campaign.id)
    failed = make_message(tenant.id, "OM-F", campaign_id=campaign.id)
    apply_delivery_report("onfon", report("OM-D", DeliveryStatus.DELIVERED))
    apply_delivery_report("onfon", report("OM-F", DeliveryStatus.FAILED))
    db.session.commit()

    apply_delivery_report("onfon", report("OM-D", DeliveryStatus.FAILED))
    apply_delivery_report("onfon", report("OM-F", DeliveryStatus.DELIVERED))
    db.session.commit()

    assert (fresh(delivered).status, fresh(failed).status) == ("delivered", "failed")
    campaign = fresh(campaign)
    assert (campaign.delivered_count, campaign.failed_count) == (1, 1)
    assert effects(tenant.id)[0] == ("message.delivered", "message.failed")


def test_a_report_the_vendor_itself_cannot_classify_changes_nothing(tenant):
    message = make_message(tenant.id)
    before = effects(tenant.id)
    applied = apply_delivery_report("onfon", report(status=DeliveryStatus.UNKNOWN))
    db.session.commit()
    assert applied.id == message.id
    assert fresh(message).status == "sent"
    assert effects(tenant.id) == before == ((), 0, 1)  # the opening balance is the only ledger row


def test_a_message_whose_send_outcome_was_unknown_is_confirmed_by_a_sent_report(tenant):
    message = make_message(tenant.id, status="unknown")
    apply_delivery_report("onfon", report(status=DeliveryStatus.SENT, occurred_at=DONE_AT))
    db.session.commit()

    message = fresh(message)
    assert (message.status, message.sent_at) == ("sent", DONE_AT)
    assert effects(tenant.id)[0] == ("message.sent",)

    apply_delivery_report("onfon", report(status=DeliveryStatus.DELIVERED))
    db.session.commit()
    assert fresh(message).status == "delivered"
    assert effects(tenant.id)[0] == ("message.sent", "message.delivered")


def test_the_vendor_echo_of_our_id_finds_a_message_that_never_learned_the_vendor_id(tenant):
    message = make_message(tenant.id, None, provider="whatsapp_cloud", status="unknown", channel="whatsapp")
    wamid = "wamid.HBgMMjU0NzEyMzQ1Njc4FQIAERgSQ0E"

    applied = apply_delivery_report(
        "whatsapp_cloud", report(wamid, DeliveryStatus.DELIVERED, "delivered", reference=str(message.id))
    )
    db.session.commit()

    assert applied.id == message.id
    message = fresh(message)
    assert (message.status, message.provider_message_id) == ("delivered", wamid)
    # From now on the vendor id finds it; a later "read" is a repeat of delivered and changes nothing.
    apply_delivery_report("whatsapp_cloud", report(wamid, DeliveryStatus.DELIVERED, "read"))
    db.session.commit()
    assert effects(tenant.id)[0] == ("message.delivered",)


def test_an_echoed_id_never_takes_over_a_message_that_has_another_vendor_id(tenant):
    message = make_message(tenant.id, "wamid.OTHER", provider="whatsapp_cloud")
    assert apply_delivery_report("whatsapp_cloud", report("wamid.NEW", reference=str(message.id))) is None
    assert apply_delivery_report("whatsapp_cloud", report("wamid.NEW", reference="not-a-number")) is None
    for reference in ("²", "999999999999999999", "99999999999999999999", "9" * 5000, "-1"):  # no id can be these
        assert apply_delivery_report("whatsapp_cloud", report("wamid.NEW", reference=reference)) is None
    db.session.commit()
    assert fresh(message).provider_message_id == "wamid.OTHER"


# ------------------------------------------------------------------------------------ failures and refunds


def test_failed_report_records_the_reason_an_event_and_one_notification(tenant):
    message = make_message(tenant.id)
    reason = "The handset stayed unreachable until the message expired."
    failure = report(status=DeliveryStatus.FAILED, vendor_status="EXPIRED", error_code="004", error_reason=reason)

    apply_delivery_report("onfon", failure)
    apply_delivery_report("onfon", failure)
    db.session.commit()

    message = fresh(message)
    assert (message.status, message.error_message) == ("failed", reason)
    assert message.failed_at is not None and message.delivered_at is None
    assert message.meta["delivery"]["error_code"] == "004"
    note = db.session.scalar(sa.select(Notification).where(Notification.client_id == tenant.id))
    assert note.type == "message_failed" and reason in note.message and "+254712345678" in note.title
    params = {"recipient": "+254712345678"}
    assert note.data == {"message_id": message.id, "text": "message_not_delivered", "params": params}
    assert effects(tenant.id)[:2] == (("message.failed",), 1)
    event = db.session.scalar(sa.select(Event).where(Event.client_id == tenant.id))
    assert (event.data["error_code"], event.data["error_reason"]) == ("004", reason)


def test_a_failing_campaign_notifies_once_not_per_message(tenant):
    campaign = make_campaign(tenant.id)
    for n in range(5):
        make_message(tenant.id, f"OM-{n}", campaign_id=campaign.id)
        apply_delivery_report("onfon", report(f"OM-{n}", DeliveryStatus.FAILED))
    db.session.commit()

    assert fresh(campaign).failed_count == 5
    notes = db.session.scalars(sa.select(Notification).where(Notification.client_id == tenant.id)).all()
    assert [(n.type, n.data["campaign_id"]) for n in notes] == [("message_failed", campaign.id)]
    assert "April promo" in notes[0].title
    assert count(Event, Event.type == "message.failed") == 5


def test_a_failed_delivery_is_not_refunded_by_default(tenant):
    make_message(tenant.id)
    apply_delivery_report("onfon", report(status=DeliveryStatus.FAILED))
    db.session.commit()
    assert fresh(tenant).balance == Decimal("100.00")
    assert count(WalletTransaction, WalletTransaction.type == "refund") == 0


def test_tenants_opted_in_by_an_admin_get_the_cost_back_once(tenant):
    client = db.session.get(Client, tenant.id)
    client.settings = {"refund_failed_delivery": True}
    db.session.commit()
    message = make_message(tenant.id, cost="1.6000")

    for _ in range(3):
        apply_delivery_report("onfon", report(status=DeliveryStatus.FAILED))
        db.session.commit()

    refunds = db.session.scalars(sa.select(WalletTransaction).where(WalletTransaction.type == "refund")).all()
    assert [(r.reference, r.amount) for r in refunds] == [(refund_reference(message.id), Decimal("1.6000"))]
    assert fresh(tenant).balance == Decimal("101.60") == ledger_balance(tenant.id)


def test_free_messages_have_nothing_to_refund(tenant):
    client = db.session.get(Client, tenant.id)
    client.settings = {"refund_failed_delivery": True}
    db.session.commit()
    make_message(tenant.id, cost="0")
    apply_delivery_report("onfon", report(status=DeliveryStatus.FAILED))
    db.session.commit()
    assert count(WalletTransaction, WalletTransaction.type == "refund") == 0


# ------------------------------------------------------------------------------------- lookup and tenancy


def test_unknown_ids_and_other_providers_return_none_and_change_nothing(tenant):
    message = make_message(tenant.id)
    before = effects(tenant.id)
    assert apply_delivery_report("onfon", report("NOT-OURS")) is None
    assert apply_delivery_report("mobitech", report("OM-1")) is None  # same id, different vendor
    db.session.commit()
    assert fresh(message).status == "sent"
    assert effects(tenant.id) == before


def test_a_channel_only_reaches_its_own_tenants_messages(tenant, other_tenant):
    theirs = make_message(other_tenant.id, "OM-B")
    ours = make_channel(tenant.id, token="tok-a")

    assert apply_delivery_report("onfon", report("OM-B"), channel_id=ours.id) is None
    db.session.commit()
    assert fresh(theirs).status == "sent"

    mine = make_message(tenant.id, "OM-A")
    assert apply_delivery_report("onfon", report("OM-A"), channel_id=ours.id).id == mine.id


def test_a_vendor_echo_cannot_reach_another_tenants_message(tenant, other_tenant):
    theirs = make_message(other_tenant.id, None, provider="ultramsg", status="unknown")
    ours = make_channel(tenant.id, "ultramsg", token="tok-u")
    found = apply_delivery_report("ultramsg", report("991", reference=str(theirs.id)), channel_id=ours.id)
    db.session.commit()
    assert found is None
    assert fresh(theirs).status == "unknown"


def test_an_unknown_channel_is_ignored(tenant):
    make_message(tenant.id)
    assert apply_delivery_report("onfon", report(), channel_id=999_999) is None


def test_inbound_messages_are_never_touched_by_reports(tenant):
    message = make_message(tenant.id, "MO-1", status="received")
    db.session.execute(sa.update(Message).where(Message.id == message.id).values(direction="inbound"))
    db.session.commit()
    assert apply_delivery_report("onfon", report("MO-1")) is None
    assert fresh(message).status == "received"


# -------------------------------------------------------------------------------------------- concurrency


def test_concurrent_reports_count_each_message_exactly_once(app, tenant):
    """Eight threads deliver the same 40 reports (each message: a sent, a final status and repeats, in
    different orders): every counter, event and notification is exact."""
    client = db.session.get(Client, tenant.id)
    client.settings = {"refund_failed_delivery": True}
    db.session.commit()
    campaign = make_campaign(tenant.id)
    total, failing = 40, {n for n in range(40) if n % 4 == 0}
    for n in range(total):
        make_message(tenant.id, f"OM-{n}", campaign_id=campaign.id)
    final = {n: DeliveryStatus.FAILED if n in failing else DeliveryStatus.DELIVERED for n in range(total)}
    db.session.rollback()  # the main session must not hold SQLite's lock while the threads write

    threads, barrier, errors = 8, threading.Barrier(8), []

    def work(k: int) -> None:
        try:
            with app.app_context():
                barrier.wait()
                order = range(total) if k % 2 else reversed(range(total))
                for n in order:
                    reports = [report(f"OM-{n}", DeliveryStatus.SENT), report(f"OM-{n}", final[n])]
                    for item in reports if k % 3 else reversed(reports):
                        apply_delivery_report("onfon", item)
                        db.session.commit()
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert errors == []

    campaign = fresh(campaign)
    assert (campaign.delivered_count, campaign.failed_count) == (total - len(failing), len(failing))
    assert count(Event, Event.type == "message.delivered") == total - len(failing)
    assert count(Event, Event.type == "message.failed") == len(failing)
    assert count(Event, Event.type == "message.sent") == 0  # every message was already sent
    assert count(Notification, Notification.type == "message_failed") == 1
    assert count(WalletTransaction, WalletTransaction.type == "refund") == len(failing)
    assert fresh(tenant).balance == Decimal("100.00") + Decimal("0.80") * len(failing) == ledger_balance(tenant.id)
