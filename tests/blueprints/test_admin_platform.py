"""Platform admin: platform totals per day, a client's channels, campaigns and users read-only, and
suspension stopping the client's sending and API."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Campaign, Channel, Client
from bulkapp.services.insights.platform import platform_totals
from bulkapp.services.messaging.compose import SendError, send_message


@pytest.fixture
def admin(admin_user, login):
    return login(admin_user)


def _send(tenant, n: int) -> Decimal:
    """Send ``n`` messages; returns what the tenant was charged net of refunds (the sandbox fails some numbers)."""
    for i in range(n):
        send_message(tenant.id, to=f"07123456{i:02d}", body="Hello")
    db.session.commit()
    db.session.expire_all()
    return Decimal("100.00") - db.session.get(Client, tenant.id).balance


def test_platform_totals_count_every_tenant(tenant, other_tenant):
    spent = _send(tenant, 2) + _send(other_tenant, 3)
    totals = platform_totals()
    assert totals.messages == 5 and totals.days[-1].messages == 5
    assert totals.revenue == spent == totals.days[-1].revenue > 0
    assert totals.active_clients == 2 and totals.suspended_clients == 0
    assert len(totals.days) == 14 and all(d.messages == 0 for d in totals.days[:-1])


def test_the_admin_page_shows_platform_figures(admin, tenant, other_tenant):
    spent = _send(tenant, 2) + _send(other_tenant, 1)
    page = admin.get("/admin/").get_data(as_text=True)
    assert 'id="admin-platform"' in page and "Revenue per day" in page
    assert f"KSh {spent:,.2f}" in page
    fragment = admin.get("/admin/?q=Tenant", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "admin-platform" not in fragment and "Tenant A" in fragment


def test_a_clients_channels_campaigns_and_users_read_only(admin, tenant):
    channel = db.session.scalar(sa.select(Channel).where(Channel.client_id == tenant.id))
    channel.credentials = {"api_key": "super-secret-credential"}
    db.session.add(Campaign(client_id=tenant.id, name="Easter promo", message="Hi", channel="sms", recipients=[]))
    db.session.commit()
    page = admin.get(f"/admin/clients/{tenant.id}").get_data(as_text=True)
    assert 'id="admin-client-channels"' in page and "sandbox" in page
    assert "Easter promo" in page and "owner@a.example" in page
    assert "super-secret-credential" not in page


def test_tenant_users_get_404_on_admin(login, tenant):
    browser = login(tenant.test_user)
    for path in ("/admin/", f"/admin/clients/{tenant.id}"):
        assert browser.get(path).status_code == 404


def test_suspending_a_client_stops_its_sending_and_api(admin, tenant, client):
    response = admin.post(
        f"/admin/clients/{tenant.id}/edit",
        data={
            "name": "Tenant A",
            "sender_id": "TENANTA",
            "price_per_unit": "0.80",
            "tier": "free",
            "status": "suspended",
        },
    )
    assert response.status_code in (200, 302)
    db.session.expire_all()
    assert db.session.get(Client, tenant.id).status is False
    api = client.get("/api/v1/balance", headers={"Authorization": f"Bearer {tenant.test_api_key}"})
    assert api.status_code == 403 and api.get_json()["error"]["code"] == "account_suspended"
    with pytest.raises(SendError) as caught:
        send_message(tenant.id, to="0712345678", body="Hi")
    assert caught.value.code == "account_suspended"
    db.session.rollback()
    assert platform_totals().suspended_clients == 1


def test_an_unknown_client_id_is_404_even_past_the_integer_range(admin):
    assert admin.get("/admin/clients/999999").status_code == 404
    assert admin.get("/admin/clients/2147483648").status_code == 404
