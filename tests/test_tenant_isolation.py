"""Walks the whole URL map as tenant B against tenant A's objects: every route with an id answers 404.

New routes are covered automatically: a route whose id argument is not in ``ID_ARGUMENTS`` fails this
test until it is added, so no route can skip the walk.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import (
    Campaign,
    Channel,
    Contact,
    ContactImport,
    Conversation,
    Invitation,
    Message,
    Notification,
    ShortLink,
    Suppression,
    Template,
    UnmatchedPayment,
    User,
    UserSession,
    WalletTransaction,
    WebhookDelivery,
)
from bulkapp.services.accounts.sessions import start_session
from bulkapp.services.accounts.team import invitation_for, invite_teammate
from bulkapp.services.notifications.events import record_event
from bulkapp.services.notifications.notify import notify

# Routes that are public or machine endpoints with their own authentication (tested elsewhere).
# Public token pages (the signed token is the authority, not a tenant id) and machine endpoints.
NOT_TENANT_ROUTES = (
    "static",
    "shortlinks.",
    "webhooks.",
    "auth.accept_invite",
    "auth.confirm_email",
    "auth.reset_password",
)


def _objects_of(tenant) -> dict[str, int]:
    """One object of every tenant-owned kind for ``tenant``, keyed by the URL argument that names it."""
    cid = tenant.id
    contact = Contact(client_id=cid, name="Private Person", contact="+254700000001", department="VIP", fields={})
    template = Template(client_id=cid, name="Secret", content="Hi {{name}}", channel="sms", variables=["name"])
    db.session.add_all([contact, template])
    db.session.flush()
    conversation = Conversation(client_id=cid, contact_id=contact.id, contact_identifier=contact.contact, channel="sms")
    campaign = Campaign(client_id=cid, name="Secret campaign", message="Hi", channel="sms", recipients=[])
    db.session.add_all([conversation, campaign])
    db.session.flush()
    message = Message(
        client_id=cid, conversation_id=conversation.id, campaign_id=campaign.id, recipient=contact.contact, body="Hi"
    )
    db.session.add(message)
    db.session.flush()
    link = ShortLink(client_id=cid, message_id=message.id, code="Ab3k", original_url="http://localhost/x/Ab3k")
    channel = db.session.scalar(sa.select(Channel).where(Channel.client_id == cid))
    tx = db.session.scalar(sa.select(WalletTransaction).where(WalletTransaction.client_id == cid))
    note = notify(cid, "low_balance", "low_balance", {"balance": "10", "threshold": "100"}, user_id=tenant.test_user.id)
    db.session.add(link)
    event = record_event(cid, "message.delivered", {"id": message.id})
    delivery = WebhookDelivery(client_id=cid, event_id=event.id, attempt=1, status="failed")
    db.session.add(delivery)
    upload = ContactImport(client_id=cid, filename="Secret list.csv", status="mapping", columns=["Phone"], mapping={})
    db.session.add(upload)
    suppression = Suppression(client_id=cid, contact="+254700000009", source="manual")
    db.session.add(suppression)
    # A paybill payment kept for the platform admins (admin-only pages: a tenant gets 404).
    payment = UnmatchedPayment(trans_id="SKLSECRET1", amount=Decimal("50"), raw_amount="50", bill_ref="X", reason="x")
    db.session.add(payment)
    invite_token, _taken = invite_teammate(cid, email="secret-teammate@a.example", name="Secret teammate")
    start_session(tenant.test_user, "127.0.0.1", "Secret browser")  # tenant A's sign-in record
    db.session.commit()
    return {
        "contact_id": contact.id,
        "template_id": template.id,
        "conversation_id": conversation.id,
        "campaign_id": campaign.id,
        "message_id": message.id,
        "channel_id": channel.id,
        "transaction_id": tx.id,
        "notification_id": note.id,
        "user_id": tenant.test_user.id,
        "client_id": tenant.id,
        "link_id": link.id,
        "event_id": event.id,
        "delivery_id": delivery.id,
        "import_id": upload.id,
        "suppression_id": suppression.id,
        "payment_id": payment.id,
        "invitation_id": invitation_for(invite_token).id,
        "session_id": db.session.scalar(sa.select(sa.func.max(UserSession.id))),
    }


def _tenant_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(NOT_TENANT_ROUTES) or not rule.arguments:
            continue
        yield rule


def test_every_route_with_an_id_answers_404_to_another_tenant(app, tenant, other_tenant, login):
    ids = _objects_of(tenant)
    client = login(other_tenant.test_user)
    checked = []
    for rule in _tenant_routes(app):
        missing = [arg for arg in rule.arguments if arg not in ids]
        assert not missing, f"{rule.rule}: add {missing} to the isolation walk"
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<int:{arg}>", str(ids[arg])).replace(f"<{arg}>", str(ids[arg]))
        # REST API routes authenticate by key, not cookie: tenant B's key must get a JSON 404.
        api = rule.endpoint.startswith("api.")
        headers = {"Authorization": f"Bearer {other_tenant.test_api_key}"} if api else None
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, headers=headers)
            assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
            assert not api or response.get_json()["error"]["code"] == "not_found"
            body = response.get_data(as_text=True)
            assert "Private Person" not in body and "Secret" not in body
            checked.append(f"{method} {url}")
    assert checked, "the walk found no route with an id"
    # Nothing of tenant A changed through any of those requests.
    db.session.expire_all()
    assert db.session.get(Notification, ids["notification_id"]).is_read is False
    assert db.session.get(Contact, ids["contact_id"]).name == "Private Person"
    assert db.session.get(Conversation, ids["conversation_id"]).status == "open"  # not closed or archived
    assert db.session.get(ContactImport, ids["import_id"]).status == "mapping"  # not discarded or started
    assert db.session.get(Suppression, ids["suppression_id"]) is not None  # not removed
    assert db.session.get(UserSession, ids["session_id"]).ended_at is None  # tenant A stays signed in
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 1  # no resend happened
    invitation = db.session.get(Invitation, ids["invitation_id"])
    assert invitation.revoked_at is None and invitation.accepted_at is None  # not revoked
    assert db.session.get(User, ids["user_id"]).is_active_user  # not removed


def test_the_walk_also_covers_the_owner(app, tenant, login):
    """Sanity check of the walk itself: the owner can open at least one of those routes."""
    ids = _objects_of(tenant)
    client = login(tenant.test_user)
    response = client.post(f"/notifications/{ids['notification_id']}/read")
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(Notification, ids["notification_id"]).is_read is True


@pytest.mark.parametrize("path", ["/admin/", "/admin/clients/1"])
def test_tenant_users_do_not_see_the_admin_area(path, tenant, login):
    client = login(tenant.test_user)
    assert client.get(path).status_code == 404


def test_admin_sees_every_tenant(admin_user, tenant, other_tenant, client):
    from tests.conftest import PASSWORD

    client.post("/login", data={"email": admin_user.email, "password": PASSWORD})
    page = client.get("/admin/").get_data(as_text=True)
    assert "Tenant A" in page and "Tenant B" in page
    detail = client.get(f"/admin/clients/{other_tenant.id}").get_data(as_text=True)
    assert other_tenant.account_number in detail and "owner@b.example" in detail
