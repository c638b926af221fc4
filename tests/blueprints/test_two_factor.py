"""Two-factor sign-in (issue 15, item 6): enrolment, the code step, recovery codes, replay, rate limit, the team
switch and platform admins in production."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
import sqlalchemy as sa

from bulkapp.blueprints.auth import second_step
from bulkapp.extensions import db
from bulkapp.models import AuditEvent, User
from bulkapp.services.accounts import two_factor
from bulkapp.services.accounts.users import create_user
from tests.conftest import PASSWORD


def code_at(secret: str, steps_ahead: int = 0) -> str:
    """The code for the current 30-second step (or one ahead: still inside the accepted drift)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def enrol(user: User) -> tuple[str, list[str]]:
    """Turn two-factor on for ``user`` through the service; returns the secret and the recovery codes."""
    secret = two_factor.start_enrolment(user)
    codes = two_factor.confirm_enrolment(user, code_at(secret))
    db.session.commit()
    return secret, codes


def fresh(user: User) -> User:
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(User, user.id)


def password_step(client, user, password=PASSWORD, next_url=None):
    url = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"email": user.email, "password": password})


def test_enrolment_by_qr_then_sign_in_with_a_code(client, login, user):
    login(user)
    page = client.get("/account/two-factor")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<svg" in html and 'class="segno"' in html and "QR code for your auth" in html
    secret = re.search(r'id="totp-secret" class="secret">([A-Z2-7]+)<', html).group(1)
    assert client.get("/account/two-factor").get_data(as_text=True).count(secret) == 1  # the same secret on reload

    wrong = client.post("/account/two-factor/enable", data={"code": "000000"})
    assert wrong.status_code == 422 and fresh(user).totp_enabled_at is None
    done = client.post("/account/two-factor/enable", data={"code": code_at(secret)})
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", done.get_data(as_text=True))
    assert len(codes) == 10 == len(set(codes))

    stored = fresh(user)
    assert stored.totp_enabled_at is not None and stored.totp_secret == secret
    raw = db.session.execute(sa.text("SELECT totp_secret, recovery_codes FROM users WHERE id = :i"), {"i": user.id})
    raw_secret, raw_codes = raw.one()
    assert secret not in raw_secret  # encrypted at rest
    assert not any(code in str(raw_codes) or code.replace("-", "") in str(raw_codes) for code in codes)  # hashed

    client.post("/logout")
    held = password_step(client, user, next_url="/contacts")
    assert held.status_code == 302 and held.location.endswith("/login/code")
    assert client.get("/dashboard").status_code == 302  # the password alone signed nobody in
    form = client.get("/login/code")
    assert form.status_code == 200 and 'name="code"' in form.get_data(as_text=True)
    signed_in = client.post("/login/code", data={"code": code_at(secret, 1)})
    assert signed_in.status_code == 302 and signed_in.location.endswith("/contacts")
    assert client.get("/dashboard").status_code == 200
    with client.session_transaction() as sess:
        assert second_step.PENDING_KEY not in sess
    actions = db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.actor_user_id == user.id)).all()
    assert "two_factor.enabled" in actions and actions.count("auth.sign_in") == 2


def test_a_replayed_code_is_refused(client, user):
    secret, _codes = enrol(user)
    code = code_at(secret, 1)
    password_step(client, user)
    assert client.post("/login/code", data={"code": code}).status_code == 302
    client.post("/logout")
    password_step(client, user)
    replay = client.post("/login/code", data={"code": code})
    assert replay.status_code == 422 and "already used" in replay.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302
    older = client.post("/login/code", data={"code": code_at(secret)})  # an earlier step than the last accepted
    assert older.status_code == 422


def test_a_recovery_code_works_once(client, user):
    _secret, codes = enrol(user)
    password_step(client, user)
    used = client.post("/login/code", data={"code": codes[3].upper().replace("-", " ")})  # read from paper
    assert used.status_code == 302 and client.get("/dashboard").status_code == 200
    assert two_factor.remaining_recovery_codes(fresh(user)) == 9
    client.post("/logout")
    password_step(client, user)
    assert client.post("/login/code", data={"code": codes[3]}).status_code == 422
    assert client.post("/login/code", data={"code": codes[4]}).status_code == 302


def test_wrong_codes_are_rate_limited_per_account(client, user):
    secret, _codes = enrol(user)
    password_step(client, user)
    for _ in range(second_step.MAX_FAILURES):
        assert client.post("/login/code", data={"code": "123456"}).status_code == 422
    blocked = client.post("/login/code", data={"code": code_at(secret, 1)})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    failed = sa.select(sa.func.count()).where(AuditEvent.action == "auth.two_factor_failed")
    assert db.session.scalar(failed) == second_step.MAX_FAILURES
    assert client.get("/dashboard").status_code == 302
    # another browser with the password is held at the same limit: the limit is the account's
    other = client.application.test_client()
    password_step(other, user)
    assert other.post("/login/code", data={"code": code_at(secret, 1)}).status_code == 429


def test_the_pending_marker_expires_and_garbage_does_not_500(client, user):
    enrol(user)
    assert client.get("/login/code").status_code == 302  # nothing pending
    password_step(client, user)
    with client.session_transaction() as sess:
        sess[second_step.PENDING_KEY]["until"] = int(time.time()) - 1
        sess.modified = True
    assert client.get("/login/code").location.endswith("/login")
    password_step(client, user)
    for junk in ("", "x" * 40, "12345", "<script>", "１２３４５６", "\x00"):
        assert client.post("/login/code", data={"code": junk}).status_code in (400, 422, 429)


def test_disable_needs_a_code_or_the_password_and_ends_other_sessions(client, login, user):
    secret, codes = enrol(user)
    other = client.application.test_client()
    password_step(other, user)
    other.post("/login/code", data={"code": code_at(secret, 1)})
    assert other.get("/dashboard").status_code == 200
    password_step(client, user)
    client.post("/login/code", data={"code": codes[0]})
    refused = client.post("/account/two-factor/disable", data={"disable-password": "wrong-password"})
    assert refused.status_code == 422 and fresh(user).totp_enabled_at is not None
    off = client.post("/account/two-factor/disable", data={"disable-password": PASSWORD})
    assert off.status_code == 302 and fresh(user).totp_enabled_at is None and fresh(user).totp_secret is None
    assert client.get("/dashboard").status_code == 200  # this browser stays
    assert other.get("/dashboard").status_code == 302  # the other one is signed out
    client.post("/logout")
    assert login(user).get("/dashboard").status_code == 200  # the password alone again


def test_new_recovery_codes_replace_the_old_ones(client, user):
    secret, old = enrol(user)
    password_step(client, user)
    client.post("/login/code", data={"code": old[0]})
    new = client.post("/account/two-factor/recovery-codes", data={"regenerate-code": code_at(secret, 1)})
    fresh_codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", new.get_data(as_text=True))
    assert new.status_code == 200 and len(fresh_codes) == 10
    client.post("/logout")
    password_step(client, user)
    assert client.post("/login/code", data={"code": old[1]}).status_code == 422
    assert client.post("/login/code", data={"code": fresh_codes[0]}).status_code == 302


def test_the_owner_can_require_two_factor_for_the_team(client, login, tenant, user):
    mate = create_user("mate@a.example", PASSWORD, name="Mate", client_id=tenant.id, tenant_role="manager")
    db.session.commit()
    login(user)
    refused = client.post("/account/two-factor/team", data={"require": "y"})
    assert refused.status_code == 422 and "for yourself first" in refused.get_data(as_text=True)
    secret = re.search(r'id="totp-secret" class="secret">([A-Z2-7]+)<', client.get("/account/two-factor").text)[1]
    client.post("/account/two-factor/enable", data={"code": code_at(secret)})
    assert client.post("/account/two-factor/team", data={"require": "y"}).status_code == 302
    assert fresh(user).client.require_two_factor is True
    switched = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "two_factor.team_requirement")).one()
    assert switched.details == {"before": False, "after": True} and switched.client_id == tenant.id

    other = client.application.test_client()
    assert other.post("/login", data={"email": mate.email, "password": PASSWORD}).status_code == 302
    sent = other.get("/dashboard")
    assert sent.status_code == 302 and sent.location.endswith("/account/two-factor")
    assert other.get("/settings/profile").location.endswith("/account/two-factor")
    fragment = other.get("/contacts", headers={"HX-Request": "true"})
    assert fragment.status_code == 204 and fragment.headers["HX-Redirect"].endswith("/account/two-factor")
    page = other.get("/account/two-factor")
    assert "must use two-factor sign-in" in page.text
    mate_secret = re.search(r'id="totp-secret" class="secret">([A-Z2-7]+)<', page.text)[1]
    assert other.post("/account/two-factor/enable", data={"code": code_at(mate_secret)}).status_code == 200
    assert other.get("/dashboard").status_code == 200
    assert other.post("/account/two-factor/team", data={"require": ""}).status_code == 403  # the owner's switch
    no_off = other.post("/account/two-factor/disable", data={"disable-password": PASSWORD})
    assert no_off.status_code == 409 and fresh(mate).totp_enabled_at is not None
    assert fresh(user).client.require_two_factor is True


@pytest.mark.parametrize("environment, forced", [("production", True), ("development", False)])
def test_platform_admins_must_use_it_in_production(app, client, login, admin_user, monkeypatch, environment, forced):
    monkeypatch.setitem(app.config, "ENV_NAME", environment)
    login(admin_user)
    answer = client.get("/admin/")
    if not forced:
        assert answer.status_code == 200
        return
    assert answer.status_code == 302 and answer.location.endswith("/account/two-factor")
    secret = re.search(r'id="totp-secret" class="secret">([A-Z2-7]+)<', client.get("/account/two-factor").text)[1]
    assert client.post("/account/two-factor/enable", data={"code": code_at(secret)}).status_code == 200
    assert client.get("/admin/").status_code == 200
    client.post("/logout")
    assert client.post("/login", data={"email": admin_user.email, "password": PASSWORD}).location.endswith(
        "/login/code"
    )
    assert client.post("/login/code", data={"code": code_at(secret, 1)}).status_code == 302
    assert client.get("/admin/").status_code == 200
