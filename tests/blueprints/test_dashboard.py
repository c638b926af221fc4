"""The dashboard shows the tenant's real numbers, today counted in the user's timezone."""

from datetime import timedelta

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Contact, Conversation, Message
from bulkapp.services.dashboard import dashboard_stats, start_of_today


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


def test_today_starts_at_midnight_in_the_users_timezone():
    nairobi = start_of_today("Africa/Nairobi")
    assert nairobi.utcoffset() == timedelta(hours=3) and (nairobi.hour, nairobi.minute) == (0, 0)


def test_navigation_shows_only_built_areas(login, user):
    page = login(user).get("/dashboard").get_data(as_text=True)
    assert 'href="/dashboard"' in page
    assert ">Admin<" not in page
