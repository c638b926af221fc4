"""Campaign services: launch in bulk, hold and settle, pause / resume / cancel, retry failed, the live quote."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Client, Contact, Event, Message, Notification, ShortLink, WalletTransaction
from bulkapp.services.billing import pricing, wallet
from bulkapp.services.campaigns import drafts as campaigns
from bulkapp.services.campaigns import launch as campaign_launch
from bulkapp.services.campaigns import progress as figures
from bulkapp.services.campaigns.launch import CampaignError
from bulkapp.services.campaigns.recipients import clean_selection
from bulkapp.services.compliance import optouts
from tests.conftest import ledger_balance

NOON = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 12:00 in Nairobi


def numbers(count: int, start: int = 0) -> list[str]:
    """Valid numbers the sandbox accepts and delivers (none ends in 01 or 02)."""
    return [f"0711{start + n:04d}55" for n in range(count)]


def make(tenant, *, body="Hello {{name}}", selection=None, kind="promotional", name="Spring offer", channel="sms"):
    data = campaigns.DraftInput(
        name=name,
        channel=channel,
        kind=kind,
        sender_id=None,
        message=body,
        template_id=None,
        selection=selection or clean_selection(numbers="\n".join(numbers(3))),
    )
    campaign = campaigns.save_draft(tenant.id, data, actor_id=tenant.test_user.id)
    db.session.commit()
    return campaign


def fund(tenant, amount="1000.00"):
    wallet.credit(tenant.id, Decimal(amount), reference=f"test-topup-{tenant.id}-{amount}")
    db.session.commit()


def launch(tenant, campaign, now=NOON):
    result = campaign_launch.launch_campaign(tenant.id, campaign.id, now=now)
    db.session.commit()
    return result


def send_all(tenant, campaign, ranges):
    from bulkapp.jobs.campaigns import send_campaign_chunk

    for first, last in ranges:
        send_campaign_chunk(tenant.id, campaign.id, first, last)


def fresh(obj):
    db.session.expire_all()
    return db.session.get(type(obj), obj.id)


def ledger_rows(tenant, type_):
    return db.session.scalars(
        sa.select(WalletTransaction).where(WalletTransaction.client_id == tenant.id, WalletTransaction.type == type_)
    ).all()


def statuses(campaign):
    return dict(
        db.session.execute(
            sa.select(Message.status, sa.func.count())
            .where(Message.campaign_id == campaign.id)
            .group_by(Message.status)
        ).all()
    )


def test_launch_creates_rows_in_bulk_holds_the_quote_and_settles_exactly(tenant):
    fund(tenant)
    db.session.add(Contact(client_id=tenant.id, name="Amina", contact="+254711000055", fields={}))
    db.session.commit()
    # 10 numbers: one rejected by the sandbox (ends 01), one that fails delivery after acceptance (ends 02).
    pasted = numbers(8) + ["0700000201", "0700000302"]
    campaign = make(tenant, selection=clean_selection(numbers="\n".join(pasted)))
    quote = campaigns.quote_campaign(
        tenant.id,
        campaigns.DraftInput("x", "sms", "promotional", None, campaign.message, None, campaign.recipients),
        now=NOON,
    )

    result = launch(tenant, campaign)
    assert result.status == "sending" and result.recipients == 10
    assert result.cost == quote.cost  # the live quote is exactly what is reserved
    hold = ledger_rows(tenant, "hold")
    assert len(hold) == 1 and hold[0].amount == -result.cost
    rows = db.session.scalars(sa.select(Message).where(Message.campaign_id == campaign.id).order_by(Message.id)).all()
    assert len(rows) == 10 and all(m.status == "pending" and m.campaign_run == 1 for m in rows)
    amina = next(m for m in rows if m.recipient == "+254711000055")
    assert amina.body.startswith("Hello Amina\nSTOP*456*9*5#\nReply: http://localhost/x/")
    codes = {m.body[-4:] for m in rows}
    assert len(codes) == 10
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ShortLink).where(ShortLink.code.in_(codes))) == 10

    send_all(tenant, campaign, result.ranges)  # inline: dispatch, sandbox reports, completion
    campaign = fresh(campaign)
    assert campaign.status == "sent" and campaign.settled_run == 1 and campaign.completed_at is not None
    assert statuses(campaign) == {"delivered": 8, "failed": 2}
    assert (campaign.sent_count, campaign.delivered_count) == (9, 8)
    assert campaign.failed_count == 2  # one refused at send, one failed delivery
    per_message = rows[0].cost
    spent = per_message * 9  # the refused one costs nothing; the accepted-then-failed one is charged
    release = ledger_rows(tenant, "release")
    assert len(release) == 1 and release[0].amount == result.cost - spent
    assert campaign.total_cost == spent
    assert fresh(tenant).balance == Decimal("1100.00") - spent == ledger_balance(tenant.id)
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.type == "campaign.completed")) == 1
    )
    note = db.session.scalar(sa.select(Notification).where(Notification.type == "campaign_completed"))
    assert note is not None and note.data["campaign_id"] == campaign.id
    # Settling again (a second job, the clock) changes nothing.
    assert campaign_launch.finish_if_done(tenant.id, campaign.id) is False
    assert len(ledger_rows(tenant, "release")) == 1


def test_refund_failed_delivery_setting_refunds_once_without_double_release(tenant):
    fund(tenant)
    client = db.session.get(Client, tenant.id)
    client.settings = {"refund_failed_delivery": True}
    db.session.commit()
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="0700000302\n0700000303"))
    result = launch(tenant, campaign)
    send_all(tenant, campaign, result.ranges)
    per_message = result.cost / 2
    assert len(ledger_rows(tenant, "refund")) == 1
    # Net effect: only the delivered message is paid for.
    assert fresh(tenant).balance == Decimal("1100.00") - per_message == ledger_balance(tenant.id)


def test_footer_is_counted_in_segments_and_transactional_has_none(tenant):
    fund(tenant)
    body = "A" * 120  # one segment alone; footer + reply link push it to two
    promo = make(tenant, body=body, selection=clean_selection(numbers="0700000100"))
    trans = make(tenant, body=body, kind="transactional", selection=clean_selection(numbers="0700000100"))
    promo_quote = campaigns.quote_campaign(
        tenant.id, campaigns.DraftInput("p", "sms", "promotional", None, body, None, promo.recipients), now=NOON
    )
    trans_quote = campaigns.quote_campaign(
        tenant.id, campaigns.DraftInput("t", "sms", "transactional", None, body, None, trans.recipients), now=NOON
    )
    assert promo_quote.footer == optouts.DEFAULT_FOOTER and trans_quote.footer is None
    link = len(pricing.reply_link_suffix("http://localhost"))
    assert trans_quote.quote.characters == 120 + link and trans_quote.quote.segments == 1
    assert promo_quote.quote.characters == 120 + 1 + len(optouts.DEFAULT_FOOTER) + link
    assert promo_quote.quote.segments == 2 and promo_quote.cost == 2 * trans_quote.cost
    launch(tenant, promo)
    message = db.session.scalar(sa.select(Message).where(Message.campaign_id == promo.id))
    assert message.segments == 2 and optouts.DEFAULT_FOOTER in message.body


def test_invalid_duplicates_and_opted_out_are_skipped_and_counted(tenant):
    fund(tenant)
    optouts.opt_out(tenant.id, "+254700000101", source="manual")
    db.session.add(Contact(client_id=tenant.id, name="Baraka", contact="+254700000100", department="Sales", fields={}))
    db.session.commit()
    pasted = "0700000100\n+254 700 000 100\n0700000101\nhello\n12345\n0700000102"
    selection = clean_selection(departments=["Sales"], numbers=pasted)
    campaign = make(tenant, selection=selection)
    quote = campaigns.quote_campaign(
        tenant.id, campaigns.DraftInput("x", "sms", "promotional", None, "Hi", None, selection), now=NOON
    )
    assert (quote.tally.valid, quote.tally.invalid, quote.tally.duplicates, quote.tally.opted_out) == (2, 2, 2, 1)
    assert {bad["to"] for bad in quote.tally.invalid_samples} == {"hello", "12345"}
    assert all(bad["reason"] for bad in quote.tally.invalid_samples)
    result = launch(tenant, campaign)
    assert result.recipients == 2
    stats = fresh(campaign).stats
    assert (stats["valid"], stats["invalid"], stats["duplicates"], stats["opted_out"]) == (2, 2, 2, 1)
    recipients = set(db.session.scalars(sa.select(Message.recipient).where(Message.campaign_id == campaign.id)))
    assert recipients == {"+254700000100", "+254700000102"}


def test_duplicates_across_chunks_are_removed_by_the_database(tenant, monkeypatch):
    from bulkapp.services.campaigns import recipients as campaign_recipients

    monkeypatch.setattr(campaign_recipients, "CHUNK", 3)
    fund(tenant)
    pasted = numbers(5) + numbers(5)  # the second half repeats the first, in other chunks
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(pasted)))
    result = launch(tenant, campaign)
    assert result.recipients == 5
    assert fresh(campaign).stats["duplicates"] == 5
    assert ledger_rows(tenant, "hold")[0].amount == -result.cost


def test_insufficient_balance_refuses_the_launch_and_writes_nothing(tenant):
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(numbers(200))))
    with pytest.raises(CampaignError) as error:
        campaign_launch.launch_campaign(tenant.id, campaign.id, now=NOON)
    assert error.value.code == "insufficient_balance"
    db.session.rollback()
    assert fresh(campaign).status == "draft" and fresh(campaign).run == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
    assert ledger_rows(tenant, "hold") == []


def test_double_launch_launches_once(tenant):
    fund(tenant)
    campaign = make(tenant, body="Hi")
    launch(tenant, campaign)
    with pytest.raises(CampaignError) as error:
        campaign_launch.launch_campaign(tenant.id, campaign.id, now=NOON)
    assert error.value.code == "not_launchable"
    assert len(ledger_rows(tenant, "hold")) == 1


def test_foreign_campaign_is_not_found(tenant, other_tenant):
    campaign = make(tenant)
    for action in (campaign_launch.launch_campaign, campaign_launch.cancel_campaign, campaign_launch.retry_failed):
        with pytest.raises(CampaignError) as error:
            action(other_tenant.id, campaign.id)
        assert error.value.code == "not_found"
    with pytest.raises(CampaignError):
        figures.campaign_progress(other_tenant.id, campaign.id)


def test_pause_resume_mid_send(tenant, monkeypatch):
    monkeypatch.setattr(campaign_launch, "DISPATCH_CHUNK", 4)
    monkeypatch.setattr(campaign_launch, "SEND_SLICE", 2)
    fund(tenant)
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(numbers(12))))
    result = launch(tenant, campaign)
    assert len(result.ranges) == 3
    send_all(tenant, campaign, result.ranges[:1])
    assert campaign_launch.pause_campaign(tenant.id, campaign.id, now=NOON) is True
    db.session.commit()
    send_all(tenant, campaign, result.ranges[1:])  # the queued chunk jobs run while paused: nothing goes out
    assert statuses(fresh(campaign)) == {"delivered": 4, "pending": 8}
    assert fresh(campaign).status == "paused" and ledger_rows(tenant, "release") == []
    resumed = campaign_launch.resume_campaign(tenant.id, campaign.id, now=NOON)
    db.session.commit()
    assert resumed.status == "sending" and len(resumed.ranges) == 2
    send_all(tenant, campaign, resumed.ranges)
    campaign = fresh(campaign)
    assert campaign.status == "sent" and statuses(campaign) == {"delivered": 12}
    assert ledger_rows(tenant, "release")[0].amount == 0
    assert fresh(tenant).balance == ledger_balance(tenant.id) == Decimal("1100.00") - result.cost


def test_cancel_mid_send_releases_the_unused_hold(tenant, monkeypatch):
    monkeypatch.setattr(campaign_launch, "DISPATCH_CHUNK", 5)
    fund(tenant)
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(numbers(10))))
    result = launch(tenant, campaign)
    send_all(tenant, campaign, result.ranges[:1])
    assert campaign_launch.cancel_campaign(tenant.id, campaign.id, now=NOON) is True
    db.session.commit()
    send_all(tenant, campaign, result.ranges[1:])
    campaign = fresh(campaign)
    assert campaign.status == "cancelled" and campaign.settled_run == 1
    assert statuses(campaign) == {"delivered": 5, "failed": 5}
    per_message = result.cost / 10
    assert ledger_rows(tenant, "release")[0].amount == per_message * 5
    assert fresh(tenant).balance == ledger_balance(tenant.id) == Decimal("1100.00") - per_message * 5
    assert campaign_launch.cancel_campaign(tenant.id, campaign.id, now=NOON) is False  # twice: nothing more


def test_retry_failed_is_a_new_run_with_its_own_hold(tenant, monkeypatch):
    fund(tenant)
    pasted = numbers(3) + ["0700000201", "0700000302"]
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(pasted)))
    send_all(tenant, campaign, launch(tenant, campaign).ranges)
    assert figures.failed_count_of_run(fresh(campaign)) == 2
    retry = campaign_launch.retry_failed(tenant.id, campaign.id, now=NOON)
    db.session.commit()
    assert retry.status == "sending" and retry.recipients == 2
    holds = ledger_rows(tenant, "hold")
    assert len(holds) == 2 and holds[1].reference == f"campaign:{campaign.id}:run:2"
    send_all(tenant, campaign, retry.ranges)
    campaign = fresh(campaign)
    assert campaign.run == 2 and campaign.settled_run == 2 and campaign.status == "sent"
    run2 = set(
        db.session.scalars(
            sa.select(Message.recipient).where(Message.campaign_id == campaign.id, Message.campaign_run == 2)
        )
    )
    assert run2 == {"+254700000201", "+254700000302"}
    assert len(ledger_rows(tenant, "release")) == 2
    assert fresh(tenant).balance == ledger_balance(tenant.id)
    assert fresh(tenant).balance == Decimal("1100.00") - campaign.total_cost


def test_retry_needs_a_finished_campaign_with_failures(tenant):
    fund(tenant)
    campaign = make(tenant, body="Hi")
    with pytest.raises(CampaignError):
        campaign_launch.retry_failed(tenant.id, campaign.id, now=NOON)
    send_all(tenant, campaign, launch(tenant, campaign).ranges)
    with pytest.raises(CampaignError) as error:
        campaign_launch.retry_failed(tenant.id, campaign.id, now=NOON)
    assert error.value.code == "nothing_to_retry"


def test_progress_and_recipient_page_and_export(tenant):
    fund(tenant)
    campaign = make(tenant, body="Hi", selection=clean_selection(numbers="\n".join(numbers(3) + ["0700000201"])))
    result = launch(tenant, campaign)
    progress = figures.campaign_progress(tenant.id, campaign.id)
    assert (progress.total, progress.queued, progress.running) == (4, 4, True)
    send_all(tenant, campaign, result.ranges)
    progress = figures.campaign_progress(tenant.id, campaign.id)
    assert (progress.queued, progress.delivered, progress.failed, progress.running) == (0, 3, 1, False)
    assert progress.percent_done == 100 and progress.cost_so_far == result.cost / 4 * 3
    failed = campaigns.recipient_page(tenant.id, campaign.id, status="failed")
    assert [m.recipient for m in failed.items] == ["+254700000201"]
    assert campaigns.plain_reason(failed.items[0])
    first = campaigns.recipient_page(tenant.id, campaign.id, limit=2)
    second = campaigns.recipient_page(tenant.id, campaign.id, after=int(first.next_cursor), limit=2)
    assert len({m.id for m in first.items + second.items}) == 4 and second.next_cursor is None
    rows = list(campaigns.export_rows(tenant.id, campaign.id))
    assert rows[0][1] == "recipient" and len(rows) == 5


def test_list_is_keyset_paginated_and_filtered(tenant, other_tenant):
    for n in range(5):
        make(tenant, name=f"Offer {n}")
    make(other_tenant, name="Offer secret")
    page = campaigns.list_campaigns(tenant.id, limit=3)
    assert [c.name for c in page.items] == ["Offer 4", "Offer 3", "Offer 2"]
    rest = campaigns.list_campaigns(tenant.id, cursor=page.next_cursor, limit=3)
    assert [c.name for c in rest.items] == ["Offer 1", "Offer 0"] and rest.next_cursor is None
    assert [c.name for c in campaigns.list_campaigns(tenant.id, search="3").items] == ["Offer 3"]
    assert campaigns.list_campaigns(tenant.id, status="sent").items == []
    with pytest.raises(campaigns.InvalidCursor):
        campaigns.list_campaigns(tenant.id, cursor="!!not-a-cursor")


def test_draft_validation(tenant):
    bad = [
        ("", "sms", "promotional", None, "name"),
        ("x", "fax", "promotional", None, "channel"),
        ("x", "sms", "spam", None, "kind"),
        ("x", "sms", "promotional", "WAY-TOO-LONG-SENDER", "sender_id"),
    ]
    for name, channel, kind, sender, field_name in bad:
        data = campaigns.DraftInput(name, channel, kind, sender, "Hi", None, clean_selection())
        with pytest.raises(CampaignError) as error:
            campaigns.save_draft(tenant.id, data)
        assert error.value.field == field_name
    data = campaigns.DraftInput("x", "sms", "promotional", None, "Hi", 999999, clean_selection())
    with pytest.raises(CampaignError) as error:
        campaigns.save_draft(tenant.id, data)
    assert error.value.code == "not_found"


def test_whatsapp_campaign_carries_the_approved_template_with_each_recipients_values(tenant):
    from bulkapp.models import Template

    fund(tenant)
    template = Template(
        client_id=tenant.id,
        name="Order ready",
        content="Hi {{name}}, your order is ready.",
        channel="whatsapp",
        variables=["name"],
        whatsapp_template_id="order_ready",
    )
    db.session.add(template)
    db.session.add(Contact(client_id=tenant.id, name="Amina", contact="+254711000055", fields={}))
    db.session.commit()
    data = campaigns.DraftInput(
        "WA", "whatsapp", "transactional", None, "", template.id, clean_selection(numbers="0711000055")
    )
    campaign = campaigns.save_draft(tenant.id, data)
    db.session.commit()
    launch(tenant, campaign)
    message = db.session.scalar(sa.select(Message).where(Message.campaign_id == campaign.id))
    assert message.body == "Hi Amina, your order is ready."  # no reply link or footer on WhatsApp
    assert message.meta["whatsapp_template"] == {"name": "order_ready", "language": "en", "params": ["Amina"]}


def test_every_column_of_the_bulk_rows_round_trips_exactly(tenant):
    """The bulk insert (unnest arrays on PostgreSQL, multi-row VALUES on SQLite) stores each recipient's own
    text, price, units and link, and the chunk's shared columns, exactly."""
    fund(tenant)
    db.session.add(Contact(client_id=tenant.id, name="Amina", contact="+254711000055", fields={}))
    db.session.commit()
    long_text = "Habari {{name}}! " + "✓" * 80  # UCS-2: the longer name needs one more segment
    campaign = make(tenant, body=long_text, selection=clean_selection(numbers="0711000055\n0711000066"))
    result = launch(tenant, campaign)
    rows = db.session.scalars(sa.select(Message).where(Message.campaign_id == campaign.id).order_by(Message.id)).all()
    assert [m.recipient for m in rows] == ["+254711000055", "+254711000066"]
    amina, other = rows
    assert amina.body.startswith("Habari Amina! ✓") and other.body.startswith("Habari! ✓")
    assert amina.segments > other.segments > 1  # each row keeps its own price
    assert sum(m.cost for m in rows) == result.cost and amina.cost > other.cost > 0
    for message in rows:
        text = message.body.rsplit("\nReply:", 1)[0]
        quote = pricing.quote_message(fresh(tenant), "sms", text, 1, append_reply_link=True)
        assert isinstance(message.cost, Decimal) and message.cost == quote.cost
        assert message.meta == {"units": message.segments}
    assert {(m.status, m.direction, m.channel, m.campaign_run, m.attempts, m.is_read) for m in rows} == {
        ("pending", "outbound", "sms", 1, 0, False)
    }
    assert all(m.created_at == m.updated_at == NOON for m in rows)
    for message in rows:
        link = db.session.scalar(sa.select(ShortLink).where(ShortLink.message_id == message.id))
        assert message.body.endswith(f"/x/{link.code}") and link.original_url.endswith(f"/x/{link.code}")
        assert link.client_id == tenant.id and link.clicks == 0 and link.expires_at > NOON


def test_a_code_taken_between_the_check_and_the_insert_gets_a_new_link(tenant, monkeypatch):
    """Another sender takes one of the chunk's codes after the free-code check: that message's link insert is
    skipped by ON CONFLICT, and it gets a fresh code whose link its body names."""
    from bulkapp.services.campaigns import message_rows as campaign_messages

    fund(tenant)
    other = Message(client_id=tenant.id, recipient="+254700000999", body="x", status="sent", meta={})
    db.session.add(other)
    db.session.flush()
    db.session.add(ShortLink(client_id=tenant.id, message_id=other.id, code="Tkn1", original_url="u"))
    db.session.commit()
    monkeypatch.setattr(campaign_messages, "_random_codes", lambda count, size: ["Tkn1", "Fre2", "Fre3"][:count])
    monkeypatch.setattr(campaign_messages, "_taken_codes", lambda codes: set())  # the race: checked as free
    campaign = make(tenant, body="Hi")
    launch(tenant, campaign)
    rows = db.session.scalars(sa.select(Message).where(Message.campaign_id == campaign.id).order_by(Message.id)).all()
    links = {link.message_id: link.code for link in db.session.scalars(sa.select(ShortLink))}
    assert len(rows) == 3 and links[other.id] == "Tkn1"
    codes = {links[m.id] for m in rows}
    assert len(codes) == 3 and {"Fre2", "Fre3"} < codes and "Tkn1" not in codes
    assert all(m.body.endswith(f"/x/{links[m.id]}") for m in rows)
