"""Settings > Your profile (details, picture, password) and Settings > Team (invitations)."""

import io
import re

import sqlalchemy as sa
from PIL import Image

from bulkapp.extensions import db
from bulkapp.models import User
from bulkapp.services.accounts.passwords import verify_password
from tests.conftest import PASSWORD


def _png(size=(400, 300), fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (15, 123, 85)).save(buffer, format=fmt)
    return buffer.getvalue()


def test_profile_update_and_times_in_the_users_timezone(login, user):
    client = login(user)
    page = client.get("/settings/profile").get_data(as_text=True)
    assert 'value="Tenant A Owner"' in page and "Africa/Nairobi" in page
    response = client.post(
        "/settings/profile",
        data={"name": "Amina", "phone": "0722 000 111", "bio": "Owner", "timezone": "Europe/London", "language": "sw",
              "email_notifications": ["low_balance", "topup_success"]},
    )  # fmt: skip
    assert response.status_code == 302
    db.session.expire_all()
    saved = db.session.get(User, user.id)
    assert (saved.name, saved.phone, saved.timezone, saved.language) == (
        "Amina",
        "+254722000111",
        "Europe/London",
        "sw",
    )
    assert saved.preferences["email_notifications"] == ["low_balance", "topup_success"]
    assert "checked" in client.get("/settings/profile").get_data(as_text=True)


def test_profile_errors_keep_the_input(login, user):
    client = login(user)
    response = client.post(
        "/settings/profile", data={"name": "Amina", "phone": "12", "timezone": "Mars/Olympus", "language": "en"}
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "not valid" in body and 'value="Amina"' in body
    db.session.expire_all()
    assert db.session.get(User, user.id).name == "Tenant A Owner"


def test_change_password(login, user):
    client = login(user)
    wrong = client.post(
        "/settings/profile/password",
        data={"current_password": "nope-nope", "new_password": "new-password-1", "confirm": "new-password-1"},
    )
    assert wrong.status_code == 422 and "not right" in wrong.get_data(as_text=True)
    mismatch = client.post(
        "/settings/profile/password",
        data={"current_password": PASSWORD, "new_password": "new-password-1", "confirm": "other-password"},
    )
    assert mismatch.status_code == 422 and "differ" in mismatch.get_data(as_text=True)
    ok = client.post(
        "/settings/profile/password",
        data={"current_password": PASSWORD, "new_password": "new-password-1", "confirm": "new-password-1"},
    )
    assert ok.status_code == 302
    db.session.expire_all()
    assert verify_password(db.session.get(User, user.id).password, "new-password-1")


def test_avatar_upload_is_checked_and_reencoded(app, login, user, tmp_path):
    app.config["AVATAR_DIR"] = str(tmp_path)
    client = login(user)
    response = client.post(
        "/settings/profile/avatar", data={"avatar": (io.BytesIO(_png(fmt="JPEG")), "me.jpg")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert response.status_code == 302
    db.session.expire_all()
    stored = db.session.get(User, user.id).avatar
    served = client.get(f"/settings/avatars/{user.id}")
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert Image.open(io.BytesIO(served.data)).size == (256, 192)  # thumbnail, aspect kept
    assert (tmp_path / stored).exists()

    fake = client.post(
        "/settings/profile/avatar", data={"avatar": (io.BytesIO(b"<?php echo 1; ?>"), "x.png")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert fake.status_code == 422 and "not a picture" in fake.get_data(as_text=True)
    big = client.post(
        "/settings/profile/avatar", data={"avatar": (io.BytesIO(b"\0" * (2 * 1024 * 1024 + 10)), "big.png")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert big.status_code == 422 and "larger than 2 MB" in big.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).avatar == stored


def test_avatar_of_another_tenants_user_is_404(app, login, user, other_tenant, tmp_path):
    app.config["AVATAR_DIR"] = str(tmp_path)
    client = login(other_tenant.test_user)
    assert client.get(f"/settings/avatars/{user.id}").status_code == 404


def test_invite_a_teammate_who_joins_the_tenant(app, login, user):
    client = login(user)
    response = client.post("/settings/team/invite", data={"name": "Juma", "email": "juma@a.example"})
    assert response.status_code == 200
    link = re.search(r'value="(http[^"]+/invite/[^"]+)"', response.get_data(as_text=True)).group(1)
    path = link.split("localhost", 1)[1]
    client.post("/logout")
    form = client.get(path)
    assert form.status_code == 200 and "juma@a.example" in form.get_data(as_text=True)
    joined = client.post(path, data={"name": "Juma K", "password": "juma-password"})
    assert joined.status_code == 302 and joined.location.endswith("/dashboard")
    juma = db.session.scalar(sa.select(User).where(User.email == "juma@a.example"))
    assert (juma.client_id, juma.role, juma.name) == (user.client_id, "user", "Juma K")
    client.post("/logout")
    assert client.get(path).status_code == 409  # used once
    assert "already used" in client.get(path).get_data(as_text=True)


def test_invitations_are_signed(client):
    response = client.get("/invite/not-a-real-token")
    assert response.status_code == 404 and "not valid" in response.get_data(as_text=True)


def test_invite_to_an_existing_email_answers_as_for_any_address(login, user, other_tenant, caplog):
    client = login(user)
    taken = client.post("/settings/team/invite", data={"name": "X", "email": other_tenant.test_user.email.upper()})
    fresh = client.post("/settings/team/invite", data={"name": "X", "email": "nobody-yet@b.example"})
    assert taken.status_code == fresh.status_code == 200
    for page in (taken.get_data(as_text=True), fresh.get_data(as_text=True)):
        assert "already uses" not in page and "send this link to your teammate" in page
    told = caplog.text.split(f"To: {other_tenant.test_user.email}", 1)[1]
    assert "Tenant A invited this email address" in told
    # the owner of the taken address is told; the invitation itself goes only to the fresh address
    assert caplog.text.count("Subject:") == 2
    assert caplog.text.count(f"To: {other_tenant.test_user.email}") == 1
    link = re.search(r'value="(http[^"]+/invite/[^"]+)"', taken.get_data(as_text=True)).group(1)
    client.post("/logout")
    used = client.get(link.split("localhost", 1)[1])
    assert used.status_code == 409 and "already used" in used.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(User.id)).where(User.client_id == user.client_id)) == 1


# Settings > Team: roles, removal, invitations, ownership, closing the account (issue 15, item 2)


def _member(email: str) -> User:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.email == email))


def _invite(client, email: str, role: str = "agent") -> str:
    response = client.post("/settings/team/invite", data={"name": "Juma", "email": email, "role": role})
    assert response.status_code == 200, response.get_data(as_text=True)
    return re.search(r'value="(http[^"]+/invite/[^"]+)"', response.get_data(as_text=True)).group(1)


def _join(app, link: str, password: str = "juma-password"):
    browser = app.test_client()
    joined = browser.post(link.split("localhost", 1)[1], data={"name": "Juma", "password": password})
    assert joined.status_code == 302, joined.get_data(as_text=True)
    return browser


def test_team_page_shows_roles_and_the_last_sign_in_of_a_member_who_joined_by_invitation(app, login, user):
    owner = login(user)
    _join(app, _invite(owner, "juma@a.example", role="manager"))
    page = owner.get("/settings/team").get_data(as_text=True)
    juma = _member("juma@a.example")
    assert juma.tenant_role == "manager" and juma.last_login_at is not None
    row = page.split(f'id="member-{juma.id}"', 1)[1].split("</tr>", 1)[0]
    assert "—" not in row and "Manager" in row
    own_row = page.split(f'id="member-{user.id}"', 1)[1].split("</tr>", 1)[0]
    assert "Owner" in own_row and "—" not in own_row  # signed in through the form just now


def test_the_last_sign_in_counts_only_a_completed_sign_in(app, user):
    """With two-factor on, the right password alone signs nobody in: the team page must not say they did."""
    from tests.blueprints.test_two_factor import code_at, enrol, password_step

    secret, _codes = enrol(user)
    browser = app.test_client()
    assert password_step(browser, user).status_code == 302  # on to the code step
    assert _member(user.email).last_login_at is None
    assert browser.post("/login/code", data={"code": code_at(secret, 1)}).status_code == 302
    assert _member(user.email).last_login_at is not None


def test_change_a_role_and_the_owner_can_be_neither_demoted_nor_removed(app, login, user):
    from bulkapp.services.accounts.users import create_user

    mona = create_user("mona@a.example", PASSWORD, name="Mona", client_id=user.client_id)
    db.session.commit()
    owner = login(user)
    owner.post(f"/settings/team/members/{mona.id}/role", data={"role": "agent"})
    assert _member("mona@a.example").tenant_role == "agent"
    refused = owner.post(f"/settings/team/members/{user.id}/role", data={"role": "agent"}, follow_redirects=True)
    assert "transferring the ownership" in refused.get_data(as_text=True)
    owner.post(f"/settings/team/members/{mona.id}/role", data={"role": "owner"})
    kept = owner.post(f"/settings/team/members/{user.id}/remove", follow_redirects=True)
    assert "The owner cannot be removed" in kept.get_data(as_text=True)
    assert _member(user.email).tenant_role == "owner" and _member(user.email).is_active_user
    assert _member("mona@a.example").tenant_role == "agent"  # no second owner by a role change
    assert owner.post(f"/settings/team/members/{mona.id}/role", data={"role": "boss"}).status_code == 302
    assert _member("mona@a.example").tenant_role == "agent"


def test_a_removed_member_is_signed_out_at_once_and_cannot_sign_in(app, login, user):
    owner = login(user)
    juma_browser = _join(app, _invite(owner, "juma@a.example"))
    assert juma_browser.get("/inbox/").status_code == 200
    juma = _member("juma@a.example")
    removed = owner.post(f"/settings/team/members/{juma.id}/remove", follow_redirects=True)
    assert "was removed from the team" in removed.get_data(as_text=True)
    assert juma_browser.get("/inbox/").status_code == 302  # the next request is no longer signed in
    again = app.test_client().post("/login", data={"email": "juma@a.example", "password": "juma-password"})
    assert again.status_code == 422
    assert f'id="member-{juma.id}"' not in owner.get("/settings/team").get_data(as_text=True)


def test_pending_invitations_copy_resend_revoke_and_expire(app, login, user, caplog):
    from datetime import timedelta

    from bulkapp.columns import utcnow
    from bulkapp.models import Invitation

    owner = login(user)
    link = _invite(owner, "wanjiru@a.example")
    told = caplog.text.split("To: wanjiru@a.example", 1)[1]
    assert "Tenant A Owner invited you to join Tenant A on Bulkapp as Agent." in told and link in told
    invitation = db.session.scalar(sa.select(Invitation).where(Invitation.email == "wanjiru@a.example"))
    page = owner.get("/settings/team").get_data(as_text=True)
    assert f'id="invitation-{invitation.id}"' in page and link in page  # the copy field holds the link
    # expired: a clear page, nothing created; a resend gives it 7 more days and mails it again
    invitation.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    path = link.split("localhost", 1)[1]
    expired = app.test_client().get(path)
    assert expired.status_code == 404 and "expired" in expired.get_data(as_text=True)
    caplog.clear()
    owner.post(f"/settings/team/invitations/{invitation.id}/resend")
    assert "To: wanjiru@a.example" in caplog.text
    db.session.expire_all()
    assert db.session.get(Invitation, invitation.id).expires_at > utcnow() + timedelta(days=6, hours=23)
    assert app.test_client().get(path).status_code == 200
    # revoked: the link stops working and the invitation leaves the list
    owner.post(f"/settings/team/invitations/{invitation.id}/revoke")
    withdrawn = app.test_client().get(path)
    assert withdrawn.status_code == 404 and "withdrawn" in withdrawn.get_data(as_text=True)
    refused = app.test_client().post(path, data={"name": "W", "password": "wanjiru-password"})
    assert refused.status_code == 404 and _member("wanjiru@a.example") is None
    assert f'id="invitation-{invitation.id}"' not in owner.get("/settings/team").get_data(as_text=True)


def test_transfer_the_ownership(app, login, user):
    from bulkapp.services.accounts.users import create_user

    mona = create_user("mona@a.example", PASSWORD, name="Mona", client_id=user.client_id)
    db.session.commit()
    owner = login(user)
    to_self = owner.post("/settings/team/transfer", data={"new_owner": user.id, "password": PASSWORD})
    assert to_self.status_code == 422 and _member(user.email).tenant_role == "owner"
    wrong = owner.post("/settings/team/transfer", data={"new_owner": mona.id, "password": "not-my-password"})
    assert wrong.status_code == 422 and _member(user.email).tenant_role == "owner"
    done = owner.post("/settings/team/transfer", data={"new_owner": mona.id, "password": PASSWORD})
    assert done.status_code == 302
    assert (_member(user.email).tenant_role, _member("mona@a.example").tenant_role) == ("manager", "owner")
    assert owner.post("/settings/team/close", data={"password": PASSWORD, "confirm": "CLOSE"}).status_code == 403


def test_the_owner_closes_the_account(app, login, user, tenant):
    from bulkapp.models import Client
    from bulkapp.services.accounts.users import create_user

    mona = create_user("mona@a.example", PASSWORD, name="Mona", client_id=user.client_id)
    db.session.commit()
    balance = tenant.balance
    mona_browser = app.test_client()
    mona_browser.post("/login", data={"email": mona.email, "password": PASSWORD})
    owner = login(user)
    unconfirmed = owner.post("/settings/team/close", data={"password": PASSWORD, "confirm": "yes"})
    assert unconfirmed.status_code == 422
    closed = owner.post("/settings/team/close", data={"password": PASSWORD, "confirm": "CLOSE"})
    assert closed.status_code == 302 and closed.location.endswith("/login")
    db.session.expire_all()
    account = db.session.get(Client, tenant.id)
    assert account.closed_at is not None and account.status is False and account.balance == balance  # kept
    assert mona_browser.get("/dashboard").status_code == 302  # signed out at the next request
    refused = app.test_client().post("/login", data={"email": user.email, "password": PASSWORD})
    assert refused.status_code == 422
    api = app.test_client().post(
        "/api/v1/messages", json={"to": "0712345678", "body": "Hi"},
        headers={"Authorization": f"Bearer {tenant.test_api_key}"},
    )  # fmt: skip
    assert api.status_code == 403  # it sends nothing


def test_closing_the_account_withdraws_its_pending_invitations(app, login, user):
    owner = login(user)
    path = _invite(owner, "late@a.example").split("localhost", 1)[1]
    owner.post("/settings/team/close", data={"password": PASSWORD, "confirm": "CLOSE"})
    withdrawn = app.test_client().get(path)
    assert withdrawn.status_code == 404 and "withdrawn" in withdrawn.get_data(as_text=True)
    refused = app.test_client().post(path, data={"name": "Late", "password": "late-password"})
    assert refused.status_code == 404 and _member("late@a.example") is None  # nobody joins a closed account


def test_a_session_that_outlived_the_close_is_signed_out_at_its_next_page(app, login, user, tenant):
    """Closing ends every session; a sign-in that was in flight meanwhile is caught by the permission check."""
    from bulkapp.columns import utcnow
    from bulkapp.models import Client

    browser = login(user)
    db.session.get(Client, tenant.id).closed_at = utcnow()  # closed without ending this browser's session
    db.session.commit()
    answer = browser.get("/contacts/")
    assert answer.status_code == 302 and answer.location.endswith("/login")
    assert "This account is closed." in browser.get("/login").get_data(as_text=True)
    assert browser.get("/contacts/").status_code == 302  # and it stays signed out


def test_a_removed_member_can_be_invited_back(app, login, user, caplog):
    owner = login(user)
    _join(app, _invite(owner, "juma@a.example"))
    juma = _member("juma@a.example")
    owner.post(f"/settings/team/members/{juma.id}/remove")
    caplog.clear()
    link = _invite(owner, "juma@a.example", role="manager")
    assert "To: juma@a.example" in caplog.text and "already has a Bulkapp account" not in caplog.text
    back = _join(app, link, password="a-new-juma-password")
    assert back.get("/settings/team").status_code == 200  # a manager now
    again = _member("juma@a.example")
    assert (again.id, again.is_active_user, again.tenant_role) == (juma.id, True, "manager")
    old = app.test_client().post("/login", data={"email": "juma@a.example", "password": "juma-password"})
    assert old.status_code == 422
    assert app.test_client().get(link.split("localhost", 1)[1]).status_code == 409  # used once


def test_a_member_disabled_by_the_platform_is_not_brought_back_by_an_invitation(app, login, user):
    owner = login(user)
    _join(app, _invite(owner, "juma@a.example"))
    juma = _member("juma@a.example")
    juma.is_active_user = False  # a platform admin's "disabled": the role stays
    db.session.commit()
    link = _invite(owner, "juma@a.example")
    assert app.test_client().get(link.split("localhost", 1)[1]).status_code == 409
    assert _member("juma@a.example").is_active_user is False
