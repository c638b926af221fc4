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
