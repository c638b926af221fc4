"""Password reset (issue 15, item 3) and the email change link (item 4): one answer for any address, rate limits,
a single-use link valid 60 minutes that ends every session, and clear pages for bad links that change nothing."""

import re
import time

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import DevOutboxMail, User
from bulkapp.services.accounts import password_reset
from bulkapp.services.accounts.password_reset import reset_token
from bulkapp.services.accounts.passwords import hash_password, verify_password
from bulkapp.services.accounts.users import AccountError
from tests.conftest import PASSWORD

NEW = "a-brand-new-password"


def mails_to(email: str) -> list[DevOutboxMail]:
    db.session.rollback()
    return db.session.scalars(sa.select(DevOutboxMail).where(DevOutboxMail.to_address == email)).all()


def reset_path(email: str) -> str:
    [mail] = mails_to(email)
    [path] = re.findall(r"http://localhost(/password/reset/\S+)", mail.body)
    return path


def password_of(user_id: int) -> str:
    db.session.rollback()
    return db.session.get(User, user_id).password


def test_the_same_answer_for_known_and_unknown_emails_and_only_a_known_one_gets_mail(client, user):
    login_page = client.get("/login").get_data(as_text=True)
    assert 'href="/password/forgot"' in login_page and "Forgot password?" in login_page
    known = client.post("/password/forgot", data={"email": user.email.upper()})
    unknown = client.post("/password/forgot", data={"email": "nobody@nowhere.co.ke"})
    assert known.status_code == unknown.status_code == 200
    strip = lambda page, email: page.get_data(as_text=True).replace(email, "EMAIL")  # noqa: E731
    assert strip(known, user.email) == strip(unknown, "nobody@nowhere.co.ke")
    assert mails_to("nobody@nowhere.co.ke") == []
    [mail] = mails_to(user.email)
    assert mail.subject == "Reset your Bulkapp password" and "60 minutes" in mail.body


def test_a_reset_link_sets_the_password_once_and_ends_every_session(app, client, login, user):
    login(user)
    assert client.get("/dashboard").status_code == 200
    other = app.test_client()
    other.post("/password/forgot", data={"email": user.email})
    path = reset_path(user.email)
    page = other.get(path)
    assert page.status_code == 200 and 'type="password"' in page.get_data(as_text=True)

    mismatch = other.post(path, data={"password": NEW, "confirm": NEW + "x"})
    assert mismatch.status_code == 422 and "not the same" in mismatch.get_data(as_text=True)
    short = other.post(path, data={"password": "short", "confirm": "short"})
    assert short.status_code == 422 and verify_password(password_of(user.id), PASSWORD)

    done = other.post(path, data={"password": NEW, "confirm": NEW})
    assert done.status_code == 302 and done.location.endswith("/login")
    assert verify_password(password_of(user.id), NEW)
    assert client.get("/dashboard").status_code == 302  # the session signed in before the reset is over

    reused = other.post(path, data={"password": "yet-another-password", "confirm": "yet-another-password"})
    assert reused.status_code == 404 and "already used" in reused.get_data(as_text=True)
    assert other.get(path).status_code == 404 and verify_password(password_of(user.id), NEW)
    signed_in = other.post("/login", data={"email": user.email, "password": NEW})
    assert signed_in.status_code == 302 and other.get("/dashboard").status_code == 200


def test_forged_and_expired_links_get_a_clear_page_and_change_nothing(client, user, monkeypatch):
    before = password_of(user.id)
    forged = client.get("/password/reset/not-a-token")
    assert forged.status_code == 404 and "not valid" in forged.get_data(as_text=True)
    posted = client.post("/password/reset/not-a-token", data={"password": NEW, "confirm": NEW})
    assert posted.status_code == 404
    token = reset_token(db.session.get(User, user.id))
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3601)
    expired = client.post(f"/password/reset/{token}", data={"password": NEW, "confirm": NEW})
    assert expired.status_code == 404 and "expired" in expired.get_data(as_text=True)
    assert password_of(user.id) == before


def test_forgot_is_rate_limited_per_email_and_per_address(client, user):
    for _ in range(3):
        assert client.post("/password/forgot", data={"email": user.email}).status_code == 200
    assert client.post("/password/forgot", data={"email": user.email}).status_code == 429
    assert len(mails_to(user.email)) == 3
    for number in range(7):  # other addresses still work until the per-address limit (10 answers an hour)
        assert client.post("/password/forgot", data={"email": f"x{number}@example.com"}).status_code == 200
    assert client.post("/password/forgot", data={"email": "last@example.com"}).status_code == 429


def test_an_email_change_is_confirmed_from_the_new_address(client, login, user, other_tenant):
    login(user)
    assert 'href="/account/email"' in client.get("/settings/profile").get_data(as_text=True)
    wrong = client.post("/account/email", data={"email": "new@kibanda.co.ke", "password": "nope-nope"})
    assert wrong.status_code == 422 and mails_to("new@kibanda.co.ke") == []
    taken = client.post("/account/email", data={"email": other_tenant.test_user.email, "password": PASSWORD})
    asked = client.post("/account/email", data={"email": "New@Kibanda.co.ke", "password": PASSWORD})
    assert taken.status_code == asked.status_code == 200 and mails_to(other_tenant.test_user.email) == []
    [mail] = mails_to("new@kibanda.co.ke")
    db.session.rollback()
    old = db.session.get(User, user.id).email
    assert old != "new@kibanda.co.ke"  # until the link is opened the old address stays
    [path] = re.findall(r"http://localhost(/account/email/confirm/\S+)", mail.body)
    assert client.get(path).status_code == 200 and db.session.get(User, user.id).email == old
    assert client.post(path).status_code == 302
    db.session.rollback()
    assert db.session.get(User, user.id).email == "new@kibanda.co.ke"
    again = client.post(path)
    assert again.status_code == 404 and "already used" in again.get_data(as_text=True)
    assert client.post("/account/email/confirm/forged").status_code == 404


def test_an_expired_email_change_link_says_so_and_changes_nothing(client, user, monkeypatch):
    from bulkapp.services.accounts.email_change import CHANGE_MAX_AGE, email_change_token

    token = email_change_token(db.session.get(User, user.id), "later@kibanda.co.ke")
    db.session.rollback()  # the test's read ends before the request writes
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + CHANGE_MAX_AGE + 1)
    late = client.post(f"/account/email/confirm/{token}")
    assert late.status_code == 404 and "expired" in late.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(User, user.id).email == user.email


def test_one_kind_of_link_opens_no_other(client, user):
    """The three signed links share one mechanism but not their tokens: each purpose has its own salt."""
    from bulkapp.services.accounts.email_change import email_change_token
    from bulkapp.services.accounts.users import confirmation_token

    account = db.session.get(User, user.id)
    reset, change, confirm = (
        reset_token(account),
        email_change_token(account, "x@y.example"),
        confirmation_token(account),
    )
    before, email = password_of(user.id), account.email
    db.session.rollback()
    assert client.get(f"/password/reset/{change}").status_code == 404
    assert client.get(f"/password/reset/{confirm}").status_code == 404
    assert client.post(f"/account/email/confirm/{reset}").status_code == 404
    assert client.get(f"/signup/confirm/{reset}").status_code == 404
    assert password_of(user.id) == before and db.session.get(User, user.id).email == email


def test_of_two_concurrent_uses_of_one_link_the_second_gets_already_used(user, monkeypatch):
    """Both read the link while it is fresh; the other one's new password lands first: this one changes nothing."""
    token = reset_token(db.session.get(User, user.id))
    winner = hash_password("the-other-tab-won")
    real_read = password_reset.read_reset

    def read_then_lose_the_race(link: str) -> User:
        found = real_read(link)
        db.session.execute(
            sa.update(User)
            .where(User.id == found.id)
            .values(password=winner)
            .execution_options(synchronize_session=False)
        )
        return found

    monkeypatch.setattr(password_reset, "read_reset", read_then_lose_the_race)
    with pytest.raises(AccountError, match="already used"):
        password_reset.reset_password(token, NEW, NEW)
    assert db.session.scalar(sa.select(User.password).where(User.id == user.id)) == winner
    db.session.rollback()
