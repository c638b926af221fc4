"""Sign-up: one answer for new and taken addresses, a confirmation link, limits per address (issue 12, item 9)."""

import re

import sqlalchemy as sa
from flask import Flask

from bulkapp.extensions import db
from bulkapp.models import User
from bulkapp.services.accounts import confirmation_token, create_user
from tests.blueprints.test_auth import SIGNUP, confirmation_path
from tests.conftest import PASSWORD


def sign_in(client, email: str, password: str = "a-long-password"):
    return client.post("/login", data={"email": email, "password": password})


def test_an_unconfirmed_account_cannot_sign_in_and_can_ask_for_a_new_link(client, caplog):
    client.post("/signup", data=SIGNUP)
    first_link = confirmation_path(caplog)
    refused = sign_in(client, "amina@kibanda.co.ke")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Confirm your email address first" in page
    assert "Send me a new confirmation link" in page and client.get("/dashboard").status_code == 302
    wrong = sign_in(client, "amina@kibanda.co.ke", "not-the-password").get_data(as_text=True)
    assert "Wrong email or password." in wrong and "Confirm your email" not in wrong  # only with the password

    caplog.clear()
    resent = client.post("/signup/resend", data={"email": "amina@kibanda.co.ke"})
    assert resent.status_code == 200 and "We sent a confirmation link" in resent.get_data(as_text=True)
    second_link = confirmation_path(caplog)
    assert client.get(second_link).location.endswith("/dashboard")
    again = client.get(first_link)  # either link confirms once; after that it only points to sign-in
    assert again.status_code == 302 and again.location.endswith("/login")


def test_resend_answers_the_same_for_any_address_and_is_rate_limited(app, client, user, caplog):
    unknown = client.post("/signup/resend", data={"email": "nobody@nowhere.example"})
    confirmed = client.post("/signup/resend", data={"email": user.email})
    assert unknown.status_code == confirmed.status_code == 200
    assert "Subject:" not in caplog.text  # nothing to send to either
    limit = int(re.match(r"\d+", app.config["RESEND_RATE_LIMIT"]).group())
    codes = [client.post("/signup/resend", data={"email": "x@y.example"}).status_code for _ in range(limit + 1)]
    assert codes == [200] * limit + [429]


def test_signup_is_rate_limited_per_address(app, client):
    limit = int(re.match(r"\d+", app.config["SIGNUP_RATE_LIMIT"]).group())
    for i in range(limit):
        response = client.post("/signup", data=dict(SIGNUP, email=f"probe{i}@x.example"))
        assert response.status_code == 200
    assert client.post("/signup", data=dict(SIGNUP, email="one-more@x.example")).status_code == 429
    other = client.post("/signup", data=dict(SIGNUP, email="else@x.example"), environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200


def test_forged_and_replaced_links_do_not_confirm(client, caplog):
    assert client.get("/signup/confirm/not-a-token").status_code == 404
    client.post("/signup", data=SIGNUP)
    old_link = confirmation_path(caplog)
    # a second sign-up with the address takes over the account that nobody could use yet
    client.post("/signup", data=dict(SIGNUP, business_name="Another Shop", password="another-password"))
    new_link = confirmation_path(caplog)
    stale = client.get(old_link)
    assert stale.status_code == 404 and "not valid" in stale.get_data(as_text=True)
    assert client.get(new_link).status_code == 302
    client.post("/logout")
    assert sign_in(client, "amina@kibanda.co.ke", "another-password").status_code == 302
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


def test_an_expired_link_says_so(app, client, monkeypatch):
    user = create_user("late@x.example", PASSWORD, admin=True, verified=False)
    db.session.commit()
    with app.test_request_context():
        token = confirmation_token(user)
    monkeypatch.setattr("bulkapp.services.accounts.CONFIRM_MAX_AGE", -1)
    response = client.get(f"/signup/confirm/{token}")
    assert response.status_code == 404 and "expired" in response.get_data(as_text=True)


def test_users_made_by_admins_the_cli_and_invitations_are_confirmed(app: Flask, user, admin_user):
    assert user.email_verified_at is not None and admin_user.email_verified_at is not None
    result = app.test_cli_runner().invoke(
        args=["create-user", "cli@x.example", "--password", PASSWORD, "--client-id", str(user.client_id)]
    )
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    made = db.session.scalar(sa.select(User).where(User.email == "cli@x.example"))
    assert made.email_verified_at is not None
