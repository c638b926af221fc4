"""The audit log through the pages: each wired action leaves one row (actor, tenant, address, details, never a
secret); owners read their tenant's log at /settings/audit (filters, pages, CSV), platform admins everyone's."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import AuditEvent, Channel
from bulkapp.services.accounts import audit as audit_log
from tests.blueprints.test_admin_unmatched import assign, keep
from tests.conftest import PASSWORD
from tests.simulators.onfon import OnfonSimulator

HX = {"HX-Request": "true"}


def events(action: str | None = None) -> list[AuditEvent]:
    db.session.expire_all()
    query = sa.select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    rows = list(db.session.scalars(query))
    db.session.rollback()
    return rows


def only(action: str) -> AuditEvent:
    rows = events(action)
    assert len(rows) == 1, [(r.action, r.actor_label) for r in events()]
    return rows[0]


# -- each wired action leaves a row ---------------------------------------------------------------------------


def test_sign_in_failed_sign_in_and_sign_out(client, user, tenant):
    wrong = client.post("/login", data={"email": " OWNER@A.example ", "password": "not-the-password"})
    assert wrong.status_code == 422
    failed = only("auth.sign_in_failed")
    assert (failed.client_id, failed.actor_user_id, failed.actor_label) == (tenant.id, None, "owner@a.example")
    assert failed.details == {"email": "owner@a.example"} and failed.ip == "127.0.0.1"
    assert "not-the-password" not in str(failed.details) + failed.actor_label
    client.post("/login", data={"email": "ghost@nowhere.example", "password": "x" * 10})
    ghost = [r for r in events("auth.sign_in_failed") if r.actor_label == "ghost@nowhere.example"]
    assert len(ghost) == 1 and ghost[0].client_id is None  # a platform event: no tenant to show it to

    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    signed_in = only("auth.sign_in")
    assert (signed_in.client_id, signed_in.actor_user_id, signed_in.ip) == (tenant.id, user.id, "127.0.0.1")
    client.post("/logout")
    assert only("auth.sign_out").actor_user_id == user.id


def test_password_change_is_recorded_without_the_passwords(login, user, tenant):
    client = login(user)
    new = "a-brand-new-password"
    response = client.post(
        "/settings/profile/password", data={"current_password": PASSWORD, "new_password": new, "confirm": new}
    )
    assert response.status_code == 302
    row = only("password.changed")
    assert (row.client_id, row.actor_user_id, row.target_type, row.target_id) == (
        tenant.id,
        user.id,
        "users",
        str(user.id),
    )
    assert new not in str(row.details) and PASSWORD not in str(row.details)
    # a refused change records nothing
    client.post("/settings/profile/password", data={"current_password": "wrong", "new_password": new, "confirm": new})
    assert len(events("password.changed")) == 1


def test_api_key_rotate_revoke_create_keep_only_the_prefix(login, user, tenant):
    client = login(user)
    prefix = tenant.api_key_prefix
    rotated = client.post("/settings/api/rotate", data={"prefix": prefix}, headers=HX).get_data(as_text=True)
    row = only("api_key.rotated")
    assert row.details["old_prefix"] == prefix and len(row.details["prefix"]) == 12
    assert row.details["prefix"] in rotated
    db.session.expire_all()
    assert row.details["prefix"] == db.session.get(type(tenant), tenant.id).api_key_prefix  # the stored one
    new_prefix = row.details["prefix"]
    client.post("/settings/api/revoke", data={"prefix": new_prefix}, headers=HX)
    assert only("api_key.revoked").details == {"old_prefix": new_prefix}
    body = client.post("/settings/api/create", headers=HX).get_data(as_text=True)
    created = only("api_key.created")
    assert created.client_id == tenant.id and created.details["prefix"] in body
    for event in events():
        assert tenant.test_api_key not in str(event.details)
    # a refused rotate (a stale prefix) records nothing
    client.post("/settings/api/rotate", data={"prefix": prefix}, headers=HX)
    assert len(events("api_key.rotated")) == 1


@pytest.fixture
def onfon():
    with OnfonSimulator(api_key="api-key-NEVER-LOGGED-1", access_key="access-NEVER-LOGGED-2") as sim:
        yield sim


def test_channel_add_edit_switch_delete(login, user, tenant, onfon):
    client = login(user)
    form = {
        "provider": "onfon",
        "access_key": onfon.access_key,
        "api_key": onfon.api_key,
        "client_id": onfon.client_id,
        "sender_id": "ACME",
        "base_url": f"{onfon.url}/v1/sms",
        "active": "y",
    }
    assert client.post("/settings/channels", data=form, headers=HX).status_code == 204
    channel = db.session.scalar(sa.select(Channel).where(Channel.provider == "onfon"))
    created = only("channel.created")
    assert (created.target_type, created.target_id, created.details["provider"]) == (
        "channels",
        str(channel.id),
        "onfon",
    )
    edit = {**form, "access_key": "", "api_key": "", "sender_id": "NEWSENDER"}
    edit.pop("provider")
    assert client.post(f"/settings/channels/{channel.id}", data=edit, headers=HX).status_code == 204
    updated = only("channel.updated")
    assert updated.details["before"]["config"]["sender_id"] == "ACME"
    assert updated.details["after"]["config"]["sender_id"] == "NEWSENDER"
    assert updated.details["after"]["credentials_changed"] is False
    client.post(f"/settings/channels/{channel.id}/disable", headers=HX)
    client.post(f"/settings/channels/{channel.id}/enable", headers=HX)
    assert only("channel.disabled").target_id == only("channel.enabled").target_id == str(channel.id)
    channel_id, name = channel.id, channel.name
    db.session.rollback()
    client.post(f"/settings/channels/{channel_id}/delete", headers=HX)
    assert only("channel.deleted").details == {"provider": "onfon", "name": name}
    text = " ".join(str(e.details) for e in events())
    assert onfon.api_key not in text and onfon.access_key not in text


def test_webhook_changes_keep_the_url_without_its_query(login, user, tenant):
    client = login(user)
    data = {"url": "https://8.8.8.8/in?token=s3cret", "events": ["message.delivered"], "active": "y"}
    response = client.post("/settings/webhooks", data=data, headers=HX)
    assert response.status_code == 200, response.get_data(as_text=True)
    row = only("webhook.updated")
    assert row.details["before"] == {"url": "", "events": [], "active": False}
    assert row.details["after"] == {"url": "https://8.8.8.8/in", "events": ["message.delivered"], "active": True}
    client.post("/settings/webhooks/secret/rotate", headers=HX)
    assert only("webhook.secret_rotated").details == {}
    assert "whsec_" not in " ".join(str(e.details) for e in events())


def test_optout_keyword_change_keeps_before_and_after(login, user, tenant):
    client = login(user)
    data = {"optout_keywords": "stop, acha", "optin_keywords": "start", "optout_footer": "STOP 22384"}
    assert client.post("/settings/opt-outs/keywords", data=data, headers=HX).status_code == 200
    row = only("optout_keywords.updated")
    assert row.details["after"] == {
        "optout_keywords": ["ACHA", "STOP"],
        "optin_keywords": ["START"],
        "footer": "STOP 22384",
    }
    assert "STOP" in row.details["before"]["optout_keywords"]


def test_contacts_and_ledger_exports(login, user, tenant):
    client = login(user)
    assert client.get("/contacts/export.csv?q=juma").status_code == 200
    assert only("contacts.exported").details == {"filters": {"q": "juma"}}
    assert client.get("/wallet/history.csv").status_code == 200
    assert only("ledger.exported").client_id == tenant.id


def test_admin_wallet_adjustment_and_payment_assignment(client, login, admin_user, tenant):
    admin = login(admin_user)
    data = {"direction": "credit", "amount": "25.50", "reason": "Goodwill", "reference": "adjust:" + "b" * 32}
    assert admin.post(f"/admin/clients/{tenant.id}/adjust", data=data).status_code in (200, 302)
    admin.post(f"/admin/clients/{tenant.id}/adjust", data=data)  # the double submit is not a second adjustment
    row = only("wallet.adjusted")
    assert (row.client_id, row.actor_user_id, row.actor_label) == (tenant.id, admin_user.id, admin_user.email)
    assert row.details == {"amount": "25.5000", "balance_after": "125.5000", "reason": "Goodwill"}

    payment_id = keep(client)
    assert assign(admin, payment_id, tenant.account_number, headers=HX).status_code == 200
    assign(admin, payment_id, tenant.account_number, headers=HX)  # already assigned: refused, not recorded
    row = only("payment.assigned")
    assert (row.client_id, row.actor_user_id, row.target_type, row.target_id) == (
        tenant.id,
        admin_user.id,
        "unmatched_payments",
        str(payment_id),
    )
    assert row.details == {"amount": "250.0000", "account": tenant.account_number}


def test_invitation_accepted(login, user, tenant, client):
    from bulkapp.services.accounts import team

    token, _taken = team.invite_teammate(tenant.id, email="juma@a.example", name="Juma")
    db.session.commit()
    response = client.post(f"/invite/{token}", data={"name": "Juma K", "password": "juma-password"})
    assert response.status_code == 302
    row = only("invitation.accepted")
    assert (row.client_id, row.actor_label, row.details) == (tenant.id, "juma@a.example", {"email": "juma@a.example"})


# -- reading ---------------------------------------------------------------------------------------------------


def _seed(tenant, other_tenant):
    audit_log.record("contacts.exported", client_id=tenant.id, actor="alice@a.example", ip="10.0.0.1")
    audit_log.record("channel.updated", client_id=tenant.id, actor="bob@a.example", details={"after": {"x": 1}})
    audit_log.record("ledger.exported", client_id=other_tenant.id, actor="secret-b@b.example")
    audit_log.record("auth.sign_in_failed", client_id=None, actor="ghost@nowhere.example")
    db.session.commit()


def test_owner_reads_only_their_tenant(login, user, tenant, other_tenant):
    _seed(tenant, other_tenant)
    page = login(user).get("/settings/audit")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "alice@a.example" in body and "bob@a.example" in body
    assert "secret-b@b.example" not in body and "ghost@nowhere.example" not in body
    csv_text = login(user).get("/settings/audit/export.csv").get_data(as_text=True)
    assert "alice@a.example" in csv_text and "secret-b@b.example" not in csv_text


def test_tenant_b_cannot_read_tenant_a(client, login, user, tenant, other_tenant):
    _seed(tenant, other_tenant)
    other = login(other_tenant.test_user)
    body = other.get("/settings/audit").get_data(as_text=True)
    assert "secret-b@b.example" in body and "alice@a.example" not in body
    # no query parameter reaches another tenant (the platform's tenant filter is ignored here)
    forged = other.get(f"/settings/audit?client={tenant.id}").get_data(as_text=True)
    assert "alice@a.example" not in forged
    assert "alice@a.example" not in other.get("/settings/audit/export.csv").get_data(as_text=True)
    assert other.get("/admin/audit").status_code == 404  # the platform's log is not a tenant's page


def test_signed_out_visitors_are_sent_to_sign_in(client):
    assert client.get("/settings/audit").status_code == 302
    assert client.get("/admin/audit").status_code in (302, 404)


def test_filters_pages_and_csv(login, user, tenant, other_tenant):
    _seed(tenant, other_tenant)
    client = login(user)
    body = client.get("/settings/audit?action=channel.updated").get_data(as_text=True)
    assert "bob@a.example" in body and "alice@a.example" not in body
    body = client.get("/settings/audit?actor=ALICE").get_data(as_text=True)
    assert "alice@a.example" in body and "bob@a.example" not in body
    assert "alice@a.example" not in client.get("/settings/audit?until=2001-01-01").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(client.get("/settings/audit/export.csv?actor=bob").get_data(as_text=True))))
    assert rows[0][:4] == ["time_utc", "tenant_id", "actor", "action"]
    assert [r[2] for r in rows[1:]] == ["bob@a.example"] and '"x": 1' in rows[1][7]
    newest = max(e.id for e in events())
    older = client.get(f"/settings/audit?before={newest}").get_data(as_text=True)
    assert "alice@a.example" in older


@pytest.mark.parametrize(
    "query",
    [
        "action=%27%20OR%201=1--",
        "action=" + "a" * 500,
        "actor=%25",
        "actor=%01%02%E2%80%AE",
        "actor=" + "x" * 5000,
        "since=2026-02-30",
        "since=99999-01-01&until=0000-00-00",
        "until=%F0%9F%98%80",
        "before=-1",
        "before=99999999999999999999",
        "before=1e9",
        "client=abc",
    ],
)
def test_hostile_filter_values_never_break_the_page(login, user, tenant, other_tenant, query):
    _seed(tenant, other_tenant)
    client = login(user)
    page = client.get(f"/settings/audit?{query}")
    assert page.status_code == 200
    assert "secret-b@b.example" not in page.get_data(as_text=True)
    assert client.get(f"/settings/audit/export.csv?{query}").status_code == 200


def test_platform_admin_reads_every_tenant(login, admin_user, tenant, other_tenant):
    _seed(tenant, other_tenant)
    admin = login(admin_user)
    body = admin.get("/admin/audit").get_data(as_text=True)
    for who in ("alice@a.example", "secret-b@b.example", "ghost@nowhere.example"):
        assert who in body
    one = admin.get(f"/admin/audit?client={other_tenant.id}").get_data(as_text=True)
    assert "secret-b@b.example" in one and "alice@a.example" not in one
    csv_text = admin.get("/admin/audit/export.csv").get_data(as_text=True)
    assert "ghost@nowhere.example" in csv_text and "alice@a.example" in csv_text
    assert admin.get("/admin/audit?client=-5&before=x").status_code == 200
    assert admin.get("/admin/audit?client=%00").status_code == 400  # NUL is refused app-wide, never a 500


# -- the accounts work of the other items (team, reset, email change) and the admin's tenant settings ----------


def test_team_actions(login, user, tenant):
    from bulkapp.services.accounts.users import create_user

    manager = create_user("mona@a.example", PASSWORD, name="Mona", client_id=tenant.id)
    db.session.commit()
    client = login(user)
    sent = client.post("/settings/team/invite", data={"name": "Juma", "email": "Juma@A.example", "role": "agent"})
    assert sent.status_code == 200
    assert only("invitation.sent").details == {"email": "juma@a.example", "role": "agent"}
    invitation_id = int(re.search(r"/settings/team/invitations/(\d+)/revoke", sent.get_data(as_text=True)).group(1))
    assert only("invitation.sent").target_id == str(invitation_id)
    client.post(f"/settings/team/invitations/{invitation_id}/resend")
    client.post(f"/settings/team/invitations/{invitation_id}/revoke")
    assert only("invitation.resent").target_id == only("invitation.revoked").target_id == str(invitation_id)
    client.post(f"/settings/team/members/{manager.id}/role", data={"role": "agent"})
    changed = only("role.changed")
    assert (changed.actor_user_id, changed.target_id) == (user.id, str(manager.id))
    assert changed.details == {"email": "mona@a.example", "before": "manager", "after": "agent"}
    client.post(f"/settings/team/members/{manager.id}/remove")
    assert only("member.removed").details == {"email": "mona@a.example", "role": "agent"}


def test_ownership_transfer_and_closing(login, user, tenant):
    from bulkapp.services.accounts.users import create_user

    manager = create_user("mona@a.example", PASSWORD, name="Mona", client_id=tenant.id)
    db.session.commit()
    client = login(user)
    client.post("/settings/team/transfer", data={"new_owner": manager.id, "password": PASSWORD})
    assert only("ownership.transferred").details == {"from": user.email, "to": "mona@a.example"}
    client.post("/logout")
    login(manager).post("/settings/team/close", data={"password": PASSWORD, "confirm": "CLOSE"})
    closed = only("account.closed")
    assert (closed.client_id, closed.actor_user_id) == (tenant.id, manager.id)


def test_password_reset_and_email_change(client, login, user, tenant):
    from bulkapp.services.accounts.password_reset import reset_token

    new = "a-brand-new-password"
    path = f"/password/reset/{reset_token(user)}"
    assert client.post(path, data={"password": new, "confirm": new}).status_code == 302
    reset = only("password.reset")
    assert (reset.client_id, reset.actor_user_id, reset.target_id) == (tenant.id, user.id, str(user.id))
    assert new not in str(reset.details)

    signed_in = login(user, password=new)
    signed_in.post("/account/email", data={"email": "new@kibanda.co.ke", "password": new})
    assert events("email.changed") == []  # asked, not yet confirmed
    from tests.blueprints.test_password_reset import mails_to

    [mail] = mails_to("new@kibanda.co.ke")
    [confirm] = re.findall(r"http://localhost(/account/email/confirm/\S+)", mail.body)
    signed_in.post(confirm)
    assert only("email.changed").details == {"before": "owner@a.example", "after": "new@kibanda.co.ke"}


def test_admin_client_settings_record_going_live(login, admin_user, tenant):
    admin = login(admin_user)
    data = {"name": tenant.name, "sender_id": tenant.sender_id, "price_per_unit": "0.80", "tier": tenant.tier}
    admin.post(f"/admin/clients/{tenant.id}/edit", data={**data, "status": "active", "is_test_mode": "y"})
    assert events("client.updated") == []  # nothing changed, nothing recorded
    admin.post(f"/admin/clients/{tenant.id}/edit", data={**data, "status": "active"})
    row = only("client.updated")
    assert (row.client_id, row.actor_user_id) == (tenant.id, admin_user.id)
    assert row.details == {"test_mode": {"before": True, "after": False}}


def test_owners_and_managers_read_the_log_agents_do_not(app, tenant, user):
    from bulkapp.services.accounts.users import create_user

    create_user("mona@a.example", PASSWORD, name="Mona", client_id=tenant.id, tenant_role="manager")
    create_user("abdi@a.example", PASSWORD, name="Abdi", client_id=tenant.id, tenant_role="agent")
    db.session.commit()
    for email, status in ((user.email, 200), ("mona@a.example", 200), ("abdi@a.example", 403)):
        client = app.test_client()
        client.post("/login", data={"email": email, "password": PASSWORD})
        assert client.get("/settings/audit").status_code == status, email
        assert client.get("/settings/audit/export.csv").status_code == status, email
