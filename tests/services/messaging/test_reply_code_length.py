"""Reply-link codes grow with the number of live links (a guess hits one less than once in 10,000 tries), and the
length that is issued is the length that was priced: single sends, campaign quotes, holds and charges."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Campaign, Message, ShortLink, WalletTransaction
from bulkapp.services.billing import pricing
from bulkapp.services.campaigns import drafts as campaigns
from bulkapp.services.campaigns import launch as campaign_launch
from bulkapp.services.campaigns.recipients import clean_selection
from bulkapp.services.messaging import shortlinks
from bulkapp.services.messaging.compose import preview_message, send_message
from tests.services.campaigns.test_campaigns import NOON, fund, numbers

LINK = len(pricing.reply_link_suffix("http://localhost"))  # 4-character code on the tests' BASE_URL
FOUR_CHARACTER_LIMIT = 1477  # the most live links at which 4 characters still keep a guess below 1 in 10,000


@pytest.fixture(autouse=True)
def count_every_time(app, work_app, monkeypatch):
    """Both apps count live links on every call, and forget the count afterwards (other tests expect 4)."""
    for application in (app, work_app):
        monkeypatch.setitem(application.config, "SHORTLINK_COUNT_SECONDS", 0)
    yield
    for application in (app, work_app):
        application.extensions.pop(shortlinks._COUNT, None)


def add_links(tenant, count: int, *, start: int = 0, expired: bool = False) -> None:
    """``count`` reply links (Core bulk insert), live for a day or expired an hour ago."""
    now = utcnow()
    expires = now - timedelta(hours=1) if expired else now + timedelta(days=1)
    rows = [
        {
            "client_id": tenant.id,
            "code": f"z{start + n:05d}",
            "original_url": "x",
            "clicks": 0,
            "expires_at": expires,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(count)
    ]
    db.session.execute(sa.insert(ShortLink), rows)
    db.session.commit()


def test_the_length_is_the_shortest_that_keeps_a_guess_below_one_in_ten_thousand():
    assert pricing.reply_code_length(0) == 4
    assert pricing.reply_code_length(FOUR_CHARACTER_LIMIT) == 4  # 1477 / 62**4 = 0.99996e-4
    assert pricing.reply_code_length(FOUR_CHARACTER_LIMIT + 1) == 5
    assert pricing.reply_code_length(91_613) == 5 and pricing.reply_code_length(91_614) == 6
    assert pricing.reply_code_length(5_680_023) == 6 and pricing.reply_code_length(5_680_024) == 7
    for live in (0, 1477, 1478, 91_614, 10**9):
        length = pricing.reply_code_length(live)
        assert live / 62**length < 1e-4
        assert length == 4 or live / 62 ** (length - 1) >= 1e-4  # and none shorter would do


def test_codes_grow_at_the_threshold_and_expired_links_do_not_count(tenant):
    add_links(tenant, FOUR_CHARACTER_LIMIT - 1)
    add_links(tenant, 5000, start=10_000, expired=True)
    assert shortlinks.live_link_count() == FOUR_CHARACTER_LIMIT - 1 and shortlinks.current_code_length() == 4
    first = send_message(tenant.id, to="0712345678", body="Karibu", channel="sms")
    db.session.commit()
    assert shortlinks.live_link_count() == FOUR_CHARACTER_LIMIT and shortlinks.current_code_length() == 4
    add_links(tenant, 1, start=20_000)  # one more live link: 4 characters no longer keep a guess below 1e-4
    second = send_message(tenant.id, to="0712345679", body="Karibu", channel="sms")
    db.session.commit()
    codes = {
        message_id: code
        for message_id, code in db.session.execute(
            sa.select(ShortLink.message_id, ShortLink.code).where(ShortLink.message_id.in_((first.id, second.id)))
        )
    }
    assert len(codes[first.id]) == 4 and len(codes[second.id]) == 5
    assert second.body.endswith(f"/x/{codes[second.id]}")
    # Old 4-character links keep working next to the longer ones.
    assert shortlinks.current_code_length() == 5
    assert db.session.scalar(sa.select(ShortLink.id).where(ShortLink.code == codes[first.id])) is not None


def test_a_single_send_is_charged_for_the_length_it_was_quoted_with(tenant):
    add_links(tenant, FOUR_CHARACTER_LIMIT + 1)  # links are 5 characters now
    body = "a" * (160 - LINK)  # one segment with a 4-character code; two with a 5-character one
    quote = preview_message(tenant.id, to="0712345678", body=body, channel="sms")
    assert quote.quote.reply_code_length == 5 and quote.quote.segments == 2
    message = send_message(tenant.id, to="0712345678", body=body, channel="sms")
    db.session.commit()
    assert message.segments == 2 and message.cost == quote.quote.cost == Decimal("1.6000")
    code = message.body.rsplit("/x/", 1)[1]
    assert len(code) == 5 and pricing.count_segments(message.body) == 2


def draft(tenant, body: str, count: int = 3):
    return campaigns.DraftInput(
        name="Offer",
        channel="sms",
        kind="transactional",
        sender_id=None,
        message=body,
        template_id=None,
        selection=clean_selection(numbers="\n".join(numbers(count))),
    )


def test_a_campaign_launched_after_the_length_grew_holds_and_charges_the_new_length(tenant):
    """The quote uses today's length. If links grow before the launch, the launch's hold uses the new length,
    and the quote shown again matches the hold exactly: what is held is what each message costs."""
    fund(tenant)
    body = "b" * (160 - LINK)
    data = draft(tenant, body)
    before = campaigns.quote_campaign(tenant.id, data, now=NOON)
    assert before.units == 3 and before.cost == Decimal("2.4000")
    campaign = campaigns.save_draft(tenant.id, data, actor_id=tenant.test_user.id)
    db.session.commit()
    add_links(tenant, FOUR_CHARACTER_LIMIT + 1)  # the code space grows between the quote and the launch
    again = campaigns.quote_campaign(tenant.id, data, now=NOON)
    assert again.units == 6 and again.cost == Decimal("4.8000")
    result = campaign_launch.launch_campaign(tenant.id, campaign.id, now=NOON)
    db.session.commit()
    assert result.cost == again.cost
    hold = db.session.scalar(
        sa.select(WalletTransaction.amount).where(
            WalletTransaction.client_id == tenant.id, WalletTransaction.reference == f"campaign:{campaign.id}:run:1"
        )
    )
    assert abs(hold) == again.cost
    rows = db.session.execute(
        sa.select(Message.body, Message.segments, Message.cost).where(Message.campaign_id == campaign.id)
    ).all()
    assert len(rows) == 3
    for text, segments, cost in rows:
        code = text.rsplit("/x/", 1)[1]
        assert len(code) == 5 and segments == 2 == pricing.count_segments(text) and cost == Decimal("1.6000")
    assert db.session.get(Campaign, campaign.id).estimated_cost == again.cost


def test_a_campaign_quoted_and_launched_at_one_length_costs_what_was_quoted(tenant):
    fund(tenant)
    data = draft(tenant, "c" * (160 - LINK), count=5)
    quote = campaigns.quote_campaign(tenant.id, data, now=NOON)
    campaign = campaigns.save_draft(tenant.id, data, actor_id=tenant.test_user.id)
    db.session.commit()
    result = campaign_launch.launch_campaign(tenant.id, campaign.id, now=NOON)
    db.session.commit()
    assert result.cost == quote.cost == Decimal("4.0000")
    codes = db.session.scalars(
        sa.select(ShortLink.code)
        .join(Message, Message.id == ShortLink.message_id)
        .where(Message.campaign_id == campaign.id)
    ).all()
    assert len(codes) == 5 and {len(code) for code in codes} == {4}
