"""Sessions you can end (issue 15, item 7): the server-side record behind the cookie decides who is signed in."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import UserSession
from bulkapp.services.accounts import sessions
from tests.conftest import PASSWORD, make_tenant

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def clock(monkeypatch):
    """A fake clock for the sessions service: ``clock.now`` is what it reads; move it forward at will."""

    class Clock:
        now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

        def advance(self, **delta):
            self.now += timedelta(**delta)

    fake = Clock()
    monkeypatch.setattr(sessions, "_now", lambda: fake.now)
    return fake


def _sign_in(app, user, agent: str = CHROME_WINDOWS):
    """A separate browser (its own cookie jar) signed in through the login form."""
    browser = app.test_client()
    response = browser.post("/login", data={"email": user.email, "password": PASSWORD}, headers={"User-Agent": agent})
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def _cookie(browser) -> str:
    return browser.get_cookie("session").value


def _replay(app, cookie: str):
    """A fresh client carrying a copied session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief


def _signed_in(browser) -> bool:
    return browser.get("/dashboard").status_code == 200


def _records(user_id: int) -> list[UserSession]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(UserSession).where(UserSession.user_id == user_id).order_by("id")))


def test_a_sign_in_makes_a_record_with_the_token_only_hashed(app, user):
    browser = _sign_in(app, user)
    (record,) = _records(user.id)
    assert record.ended_at is None and record.ip_address == "127.0.0.1" and "Chrome" in record.user_agent
    with browser.session_transaction() as cookie_session:
        token = cookie_session[sessions.TOKEN_KEY]
    assert record.token_hash == sessions._hash(token) and token not in record.token_hash
    assert _signed_in(browser)


def test_a_cookie_copied_before_logout_opens_nothing_after_it(app, user):
    browser = _sign_in(app, user)
    copied = _cookie(browser)
    assert _signed_in(_replay(app, copied))  # the copy works while the session lives
    assert browser.post("/logout").status_code == 302
    replayed = _replay(app, copied).get("/dashboard")
    assert replayed.status_code == 302 and "/login" in replayed.headers["Location"]
    (record,) = _records(user.id)
    assert record.ended_at is not None


def test_a_password_change_ends_the_other_sessions_but_not_this_one(app, user):
    here, elsewhere = _sign_in(app, user), _sign_in(app, user, SAFARI_IPHONE)
    changed = here.post(
        "/settings/profile/password",
        data={"current_password": PASSWORD, "new_password": "new-password-1", "confirm": "new-password-1"},
    )
    assert changed.status_code == 302
    assert _signed_in(here)
    assert not _signed_in(elsewhere)
    assert [record.ended_at is None for record in _records(user.id)] == [True, False]


def test_a_failed_password_change_ends_nothing(app, user):
    here, elsewhere = _sign_in(app, user), _sign_in(app, user)
    wrong = here.post(
        "/settings/profile/password",
        data={"current_password": "nope-nope", "new_password": "new-password-1", "confirm": "new-password-1"},
    )
    assert wrong.status_code == 422
    assert _signed_in(elsewhere)


def test_an_idle_session_expires(app, user, clock):
    app.config["SESSION_IDLE_MINUTES"] = 30
    try:
        browser = _sign_in(app, user)
        clock.advance(minutes=29)
        assert _signed_in(browser)  # a visit keeps it alive ...
        clock.advance(minutes=29)
        assert _signed_in(browser)  # ... 58 minutes after sign-in, because it was used 29 minutes ago
        clock.advance(minutes=31)
        assert not _signed_in(browser)
        assert not _signed_in(browser)  # and it stays signed out (the cookie forgot the user)
    finally:
        app.config["SESSION_IDLE_MINUTES"] = 12 * 60


def test_a_session_in_use_still_ends_at_its_absolute_limit(app, user, clock):
    app.config["SESSION_MAX_DAYS"] = 2
    try:
        browser = _sign_in(app, user)
        for _ in range(4):  # used every 11 hours: never idle
            clock.advance(hours=11)
            assert _signed_in(browser)
        clock.advance(hours=5)  # 49 hours after sign-in
        assert not _signed_in(browser)
    finally:
        app.config["SESSION_MAX_DAYS"] = 30


def test_last_seen_is_written_at_most_once_a_minute(app, user, clock):
    browser = _sign_in(app, user)
    (record,) = _records(user.id)
    signed_in_at = record.last_seen_at
    clock.advance(seconds=30)
    assert _signed_in(browser)
    assert _records(user.id)[0].last_seen_at == signed_in_at
    clock.advance(seconds=31)
    assert _signed_in(browser)
    assert _records(user.id)[0].last_seen_at == clock.now


def test_the_profile_lists_live_sessions_in_plain_words(app, user):
    here = _sign_in(app, user)
    _sign_in(app, user, SAFARI_IPHONE)
    ended = _sign_in(app, user)
    ended.post("/logout")
    page = here.get("/settings/profile").get_data(as_text=True)
    section = page[page.index('id="profile-sessions"') :]
    assert "Chrome on Windows" in section and "Safari on iPhone" in section
    assert section.count('id="session-') == 2  # the ended one is not listed
    assert "This browser" in section and "127.0.0.1" in section and "Signed in " in section


def test_sign_out_one_row(app, user):
    here, other = _sign_in(app, user), _sign_in(app, user, SAFARI_IPHONE)
    other_id = _records(user.id)[1].id
    response = here.post(f"/settings/profile/sessions/{other_id}/end")
    assert response.status_code == 302
    assert not _signed_in(other) and _signed_in(here)
    page = here.get("/settings/profile").get_data(as_text=True)
    assert f'id="session-{other_id}"' not in page


def test_signing_out_this_browsers_own_row_signs_it_out(app, user):
    here = _sign_in(app, user)
    own_id = _records(user.id)[0].id
    response = here.post(f"/settings/profile/sessions/{own_id}/end")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert not _signed_in(here)


def test_sign_out_everywhere_else_and_everywhere(app, user):
    here, second, third = _sign_in(app, user), _sign_in(app, user), _sign_in(app, user)
    response = here.post("/settings/profile/sessions/end-others", follow_redirects=True)
    assert "2 other sessions are signed out." in response.get_data(as_text=True)
    assert _signed_in(here) and not _signed_in(second) and not _signed_in(third)
    fourth = _sign_in(app, user)
    response = here.post("/settings/profile/sessions/end-all")
    assert "/login" in response.headers["Location"]
    assert not _signed_in(here) and not _signed_in(fourth)
    assert all(record.ended_at is not None for record in _records(user.id))


def test_another_users_session_id_is_404_and_stays_alive(app, user):
    stranger = make_tenant("Tenant B", "owner@b.example").test_user
    theirs = _sign_in(app, stranger)
    (their_record,) = _records(stranger.id)
    mine = _sign_in(app, user)
    assert mine.post(f"/settings/profile/sessions/{their_record.id}/end").status_code == 404
    assert mine.post("/settings/profile/sessions/999999/end").status_code == 404
    assert _signed_in(theirs)


def test_end_all_sessions_is_what_other_features_call(app, user):
    """The hook for password reset, 2FA reset and member removal: every session of that user ends."""
    first, second = _sign_in(app, user), _sign_in(app, user)
    assert sessions.end_all_sessions(user.id) == 2
    db.session.commit()
    assert not _signed_in(first) and not _signed_in(second)


def test_a_cookie_without_a_session_token_opens_nothing(app, user):
    """A cookie from before this feature (flask-login's user id and no token) is signed out."""
    browser = _sign_in(app, user)
    with browser.session_transaction() as cookie_session:
        del cookie_session[sessions.TOKEN_KEY]
    assert not _signed_in(browser)


@pytest.mark.parametrize(
    ("agent", "words"),
    [
        (CHROME_WINDOWS, "Chrome on Windows"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Linux"),
        (CHROME_WINDOWS + " Edg/131.0", "Edge on Windows"),
        ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36", "Chrome on Android"),
        ("", "Unknown browser"),
        (None, "Unknown browser"),
    ],
)
def test_browsers_in_plain_words(app, agent, words):
    with app.test_request_context("/"):
        assert sessions.describe_browser(agent) == words


def test_settings_have_defaults(app):
    assert app.config["SESSION_IDLE_MINUTES"] == 720 and app.config["SESSION_MAX_DAYS"] == 30
    assert re.fullmatch(r"[0-9a-f]{64}", sessions._hash("x"))


def test_confirming_the_email_and_accepting_an_invitation_also_make_a_session(app, client, tenant):
    """Every way in goes through the same record: the confirmation link and an invitation sign in too."""
    from bulkapp.models import User
    from bulkapp.services.accounts.team import invite_teammate
    from bulkapp.services.accounts.users import confirmation_token, create_user

    newcomer = create_user("new@a.example", PASSWORD, name="New", client_id=tenant.id, verified=False)
    db.session.commit()
    with app.test_request_context():
        token = confirmation_token(newcomer)
    assert client.post(f"/signup/confirm/{token}", data={"password": PASSWORD}).status_code == 302
    assert len(_records(newcomer.id)) == 1 and _signed_in(client)
    client.post("/logout")
    assert not _signed_in(client)

    invite_token, _taken = invite_teammate(tenant.id, email="juma@a.example", name="Juma")
    db.session.commit()
    invited = app.test_client()
    answer = invited.post(f"/invite/{invite_token}", data={"name": "Juma", "password": "juma-password"})
    assert answer.status_code == 302
    juma = db.session.scalar(sa.select(User).where(User.email == "juma@a.example"))
    assert len(_records(juma.id)) == 1 and _signed_in(invited)


@pytest.fixture
def statements(app):
    """The SQL statements the app runs while the test watches (the list is cleared at will)."""
    seen: list[str] = []

    def note(conn, cursor, statement, *args):
        seen.append(statement)

    with app.app_context():  # the app that serves the requests (the test body works on another instance)
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", note)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", note)


def _reads_of_who_is_signed_in(seen: list[str]) -> list[str]:
    return [sql for sql in seen if re.search(r"\bFROM\s+(user_sessions|users|clients)\b", sql)]


def test_a_signed_in_page_knows_who_it_is_for_with_one_select(app, user, statements):
    """The session record, its user and the user's tenant (read by the two-factor rule and the role check) come
    in one SELECT on the unique token hash, before the view runs."""
    browser = _sign_in(app, user)
    statements.clear()
    assert browser.get("/settings/").status_code == 200
    (read,) = _reads_of_who_is_signed_in(statements)
    assert "user_sessions" in read and "JOIN users" in read and "JOIN clients" in read


@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/webhooks/whatsapp", "/static/css/app.css"])
def test_pages_for_outsiders_read_no_signed_in_user(app, user, statements, path):
    """The API, vendors' webhooks and static files do not check a browser's session, even with its cookie (the
    two-factor gate, the session check and the no-store header all skip them)."""
    browser = _sign_in(app, user)
    statements.clear()
    browser.get(path)
    assert _reads_of_who_is_signed_in(statements) == []
