"""Sign-up: one answer for new and taken addresses, a confirmation link that needs the sign-up's password, limits per
address (issue 12, item 9)."""

import re
import time

import pytest
import sqlalchemy as sa
from flask import Flask

from bulkapp.blueprints.auth import throttle
from bulkapp.extensions import db
from bulkapp.models import User
from bulkapp.services.accounts import users
from bulkapp.services.accounts.passwords import hash_password
from bulkapp.services.accounts.users import CONFIRM_MAX_AGE, confirmation_token, create_user
from tests.blueprints.test_auth import SIGNUP, confirm, confirmation_path
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
    assert confirm(client, second_link).location.endswith("/dashboard")
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
    assert confirm(client, new_link, "another-password").status_code == 302
    client.post("/logout")
    assert sign_in(client, "amina@kibanda.co.ke", "another-password").status_code == 302
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


def test_an_expired_link_says_so(app, client, monkeypatch):
    user = create_user("late@x.example", PASSWORD, admin=True, verified=False)
    db.session.commit()
    with app.test_request_context():
        token = confirmation_token(user)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + CONFIRM_MAX_AGE + 1)
    response = client.get(f"/signup/confirm/{token}")
    assert response.status_code == 404 and "expired" in response.get_data(as_text=True)
    posted = client.post(f"/signup/confirm/{token}", data={"password": PASSWORD})
    assert posted.status_code == 404 and "expired" in posted.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).email_verified_at is None


def test_users_made_by_admins_the_cli_and_invitations_are_confirmed(app: Flask, user, admin_user):
    assert user.email_verified_at is not None and admin_user.email_verified_at is not None
    result = app.test_cli_runner().invoke(
        args=["create-user", "cli@x.example", "--password", PASSWORD, "--client-id", str(user.client_id)]
    )
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    made = db.session.scalar(sa.select(User).where(User.email == "cli@x.example"))
    assert made.email_verified_at is not None


def amina():
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.email == "amina@kibanda.co.ke"))


def test_opening_the_link_only_asks_for_the_password(client, caplog):
    """A mail scanner that prefetches the link, or anyone who opens it, confirms nothing."""
    client.post("/signup", data=SIGNUP)
    link = confirmation_path(caplog)
    for _ in range(2):
        opened = client.get(link)
        page = opened.get_data(as_text=True)
        assert opened.status_code == 200 and 'name="password"' in page and 'name="csrf_token"' in page
        assert "The password you chose when you signed up" in page and "Confirm my email" in page
        assert "If you did not sign up, ignore this email: nothing happens without the password." in page
        assert "amina@kibanda.co.ke" in page
    assert amina().email_verified_at is None
    assert client.get("/dashboard").status_code == 302
    assert "Subject: Welcome" not in caplog.text


def test_a_wrong_or_missing_password_confirms_nothing(client, caplog):
    client.post("/signup", data=SIGNUP)
    link = confirmation_path(caplog)
    wrong = client.post(link, data={"password": "not-the-password"})
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 422 and "This is not the password you chose when you signed up." in page
    assert 'class="field has-error"' in page and "Confirm my email" in page
    empty = client.post(link, data={"password": ""})
    assert empty.status_code == 422
    unchecked = client.post(link, data={"password": SIGNUP["password"]}, csrf=False)  # no CSRF token
    assert unchecked.status_code in (400, 403)
    assert amina().email_verified_at is None
    assert client.get("/dashboard").status_code == 302


def test_the_right_password_confirms_and_signs_in(client, caplog):
    client.post("/signup", data=SIGNUP)
    confirmed = confirm(client, confirmation_path(caplog))
    assert confirmed.status_code == 302 and confirmed.location.endswith("/dashboard")
    assert amina().email_verified_at is not None
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Welcome to Bulkapp, Amina Hassan." in page
    client.post("/logout")
    again = client.post(confirmation_path(caplog), data={"password": "anything-at-all"})
    assert again.status_code == 302 and again.location.endswith("/login")  # already confirmed: sign in


def test_wrong_passwords_on_the_link_are_throttled_with_the_sign_ins(client, caplog):
    client.post("/signup", data=SIGNUP)
    link = confirmation_path(caplog)
    address = {"REMOTE_ADDR": "203.0.113.90"}
    codes = [
        client.post(link, data={"password": "guess-password"}, environ_base=address).status_code
        for _ in range(throttle.FREE_FAILURES)
    ]
    assert codes == [422] * throttle.FREE_FAILURES
    waited = client.post(link, data={"password": SIGNUP["password"]}, environ_base=address)
    assert waited.status_code == 429 and int(waited.headers["Retry-After"]) >= 1
    assert "Try again in" in waited.get_data(as_text=True)
    assert amina().email_verified_at is None
    elsewhere = client.post(link, data={"password": SIGNUP["password"]}, environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert elsewhere.status_code == 302 and amina().email_verified_at is not None


def test_a_sign_up_in_someone_elses_name_cannot_be_confirmed_by_them(app, client, caplog):
    """The attacker signs up with the victim's address and a password of their own. The victim gets the link but
    cannot confirm without that password; signing up again with their own password takes the account back."""
    attacker = app.test_client()
    attacker.post("/signup", data=dict(SIGNUP, business_name="Mallory Ltd", password="attackers-password"))
    attackers_link = confirmation_path(caplog)  # it lands in the victim's mailbox

    opened = client.get(attackers_link)  # the victim opens it
    assert opened.status_code == 200 and amina().email_verified_at is None
    refused = client.post(attackers_link, data={"password": "victims-password"})
    assert refused.status_code == 422 and amina().email_verified_at is None
    assert client.get("/dashboard").status_code == 302

    caplog.clear()
    client.post("/signup", data=dict(SIGNUP, password="victims-password"))
    victims_link = confirmation_path(caplog)
    assert attacker.post(attackers_link, data={"password": "attackers-password"}).status_code == 404  # replaced
    assert confirm(client, victims_link, "victims-password").location.endswith("/dashboard")
    assert amina().email_verified_at is not None and amina().client.name == SIGNUP["business_name"]

    stolen = attacker.post("/login", data={"email": "amina@kibanda.co.ke", "password": "attackers-password"})
    assert stolen.status_code == 422 and "Wrong email or password." in stolen.get_data(as_text=True)
    assert attacker.get("/dashboard").status_code == 302
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


def test_a_sign_up_that_replaces_the_password_meanwhile_wins_over_an_older_link(monkeypatch):
    """The link was read and its password checked, then a newer sign-up of the same address set another password
    before the confirmation was written: the older link confirms nothing."""
    pending = create_user("race@x.example", PASSWORD, admin=True, verified=False)
    db.session.commit()
    token = confirmation_token(pending)
    real_read = users.read_confirmation

    def read_then_lose_the_race(link: str) -> User:
        found = real_read(link)
        db.session.execute(
            sa.update(User)
            .where(User.id == found.id)
            .values(password=hash_password("the-newer-sign-up"))
            .execution_options(synchronize_session=False)
        )
        return found

    monkeypatch.setattr(users, "read_confirmation", read_then_lose_the_race)
    with pytest.raises(users.AccountError, match="not valid"):
        users.confirm_email(token, PASSWORD)
    assert db.session.scalar(sa.select(User.email_verified_at).where(User.id == pending.id)) is None
    db.session.rollback()
