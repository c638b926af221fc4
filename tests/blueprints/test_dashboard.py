"""The dashboard shows the tenant's real numbers, today counted in the user's timezone."""

import re
from datetime import timedelta

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Contact, Conversation, Message
from bulkapp.services.insights.dashboard import dashboard_stats, start_of_today


def _message(tenant_id, status, created_at=None, direction="outbound"):
    return Message(
        client_id=tenant_id, recipient="+254712345678", body="x", status=status, direction=direction,
        created_at=created_at or utcnow(),
    )  # fmt: skip


def test_dashboard_numbers(tenant, other_tenant, login):
    contact = Contact(client_id=tenant.id, name="A", contact="+254712345678", fields={})
    db.session.add(contact)
    db.session.flush()
    db.session.add(Conversation(client_id=tenant.id, contact_id=contact.id, contact_identifier=contact.contact,
                                unread_count=2))  # fmt: skip
    yesterday = start_of_today("Africa/Nairobi") - timedelta(minutes=1)
    db.session.add_all(
        [_message(tenant.id, "delivered"), _message(tenant.id, "delivered"), _message(tenant.id, "failed"),
         _message(tenant.id, "sent", created_at=yesterday), _message(tenant.id, "received", direction="inbound"),
         _message(other_tenant.id, "delivered")]
    )  # fmt: skip
    db.session.commit()
    stats = dashboard_stats(tenant.id, "Africa/Nairobi")
    assert stats.today_by_status == {"delivered": 2, "failed": 1}
    assert (stats.contacts, stats.open_conversations, stats.unread_conversations) == (1, 1, 1)
    assert stats.units_available == 125  # KSh 100 at 0.80
    page = login(tenant.test_user).get("/dashboard").get_data(as_text=True)
    assert "KSh 100.00" in page and "125 SMS units" in page and tenant.account_number in page


def test_an_empty_dashboard_says_how_to_start_a_campaign(login, user):
    page = login(user).get("/dashboard").get_data(as_text=True)
    assert re.search(r'No campaigns yet\. <a href="/campaigns/new">Create your first one</a>', page)


def test_today_starts_at_midnight_in_the_users_timezone():
    nairobi = start_of_today("Africa/Nairobi")
    assert nairobi.utcoffset() == timedelta(hours=3) and (nairobi.hour, nairobi.minute) == (0, 0)


def test_navigation_shows_only_built_areas(login, user):
    page = login(user).get("/dashboard").get_data(as_text=True)
    assert 'href="/dashboard"' in page
    assert ">Admin<" not in page


def test_daily_series_buckets_by_local_day_and_counts_spend(tenant):
    from decimal import Decimal

    from bulkapp.services.billing import wallet
    from bulkapp.services.insights.dashboard import daily_series

    midnight = start_of_today("Africa/Nairobi")
    db.session.add_all(
        [_message(tenant.id, "delivered", midnight + timedelta(minutes=5)),  # today, 00:05 EAT = 21:05 UTC
         _message(tenant.id, "failed", midnight - timedelta(minutes=5)),  # yesterday 23:55 EAT
         _message(tenant.id, "delivered", midnight - timedelta(days=10))]  # outside a 7-day range
    )  # fmt: skip
    wallet.debit(tenant.id, "2.40", reference="message:x")
    wallet.refund(tenant.id, "0.80", reference="refund:message:x")
    db.session.commit()
    series = daily_series(tenant.id, 7, "Africa/Nairobi")
    assert len(series) == 7 and series[-1].day == midnight.date()
    assert series[-1].by_status == {"delivered": 1} and series[-2].by_status == {"failed": 1}
    assert series[-1].spend == Decimal("1.6000")
    assert sum(p.total for p in series) == 2


def test_range_switch_returns_the_chart_fragment(tenant, login):
    db.session.add(_message(tenant.id, "delivered"))
    db.session.commit()
    client = login(tenant.test_user)
    fragment = client.get("/dashboard/charts?range=7", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="dashboard-charts"') and "Last 7 days" in body
    assert 'class="bar bar-delivered"' in body and re.search(r'aria-pressed="true"[^>]*>7 days', body)
    assert "Last 30 days" in client.get("/dashboard/charts?range=12").get_data(as_text=True)  # unknown -> 30
    page = client.get("/dashboard?range=90").get_data(as_text=True)
    assert "Last 90 days" in page and 'id="recent-campaigns"' in page


def test_nice_axis_maximum():
    from bulkapp.services.insights.charts import nice_max

    assert [nice_max(v) for v in (0, 0.3, 1, 7, 12, 180, 1001)] == [1.0, 0.5, 1, 10, 20, 200, 2000]


def test_a_count_axis_never_labels_a_half_step_as_a_whole_number():
    from datetime import date

    from bulkapp.services.insights.charts import stacked_bars

    days = [date(2026, 11, 24), date(2026, 11, 25)]
    empty = stacked_bars(days, [{}, {}], ("sent",))
    assert [text for _, text in empty.y_ticks] == ["0", "1"]  # not 0, 0, 1
    busy = stacked_bars(days, [{"sent": 7}, {"sent": 3}], ("sent",))
    assert [text for _, text in busy.y_ticks] == ["0", "5", "10"]
    money = stacked_bars(days, [{}, {}], ("spend",), label=lambda value: f"{value:,.2f}")
    assert [text for _, text in money.y_ticks] == ["0.00", "0.50", "1.00"]
