"""Sign-up, sign-in, sign-out, session hardening, CSRF and the login rate limit."""

import re

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Channel, Client, Notification, User
from tests.conftest import PASSWORD

SIGNUP = {
    "business_name": "Kibanda Electronics",
    "name": "Amina Hassan",
    "email": "Amina@Kibanda.co.ke",
    "phone": "0712 345 678",
    "password": "a-long-password",
}


def confirmation_path(caplog) -> str:
    """The confirmation link of the last sign-up, from the development log (no mail server in the tests)."""
    links = re.findall(r"https?://[^/\s]+(/signup/confirm/\S+)", caplog.text)
    assert links, caplog.text
    return links[-1]


def confirm(client, link: str, password: str = SIGNUP["password"]):
    """Open the emailed link and confirm with the password chosen at sign-up, as the owner does."""
    assert client.get(link).status_code == 200
    return client.post(link, data={"password": password})


def test_signup_creates_a_test_mode_tenant_that_works_once_confirmed(client, caplog):
    response = client.post("/signup", data=SIGNUP)
    assert response.status_code == 200
    assert "We sent a confirmation link to amina@kibanda.co.ke" in response.get_data(as_text=True)
    user = db.session.scalar(sa.select(User).where(User.email == "amina@kibanda.co.ke"))
    assert user is not None and user.role == "user" and user.phone == "+254712345678"
    assert user.password.startswith("$argon2id$") and user.email_verified_at is None
    tenant = db.session.get(Client, user.client_id)
    assert tenant.name == "Kibanda Electronics" and tenant.is_test_mode and tenant.account_number
    channel = db.session.scalar(sa.select(Channel).where(Channel.client_id == tenant.id))
    assert (channel.name, channel.provider, channel.active) == ("sms", "sandbox", True)
    assert client.get("/dashboard").status_code == 302  # not signed in before the link is opened

    confirmed = confirm(client, confirmation_path(caplog))
    assert confirmed.status_code == 302 and confirmed.location.endswith("/dashboard")
    db.session.expire_all()
    assert db.session.get(User, user.id).email_verified_at is not None
    welcome = db.session.scalar(sa.select(Notification).where(Notification.user_id == user.id))
    assert welcome.title == "Welcome to Bulkapp"
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Kibanda Electronics" in page and "Test mode" in page


def test_signup_errors_keep_what_was_typed(client):
    data = dict(SIGNUP, phone="0202 123 456", password="short")
    response = client.post("/signup", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "not a mobile number" in page and "needs at least 8 characters" in page
    assert 'value="Kibanda Electronics"' in page and 'value="Amina Hassan"' in page
    assert db.session.scalar(sa.select(sa.func.count(Client.id))) == 0


def test_signup_with_an_existing_email_answers_the_same_and_emails_the_owner(client, user, caplog):
    new = client.post("/signup", data=dict(SIGNUP, email="someone-new@kibanda.co.ke")).get_data(as_text=True)
    taken = client.post("/signup", data=dict(SIGNUP, email=" " + user.email.upper()))
    assert taken.status_code == 200

    def strip(page: str) -> str:  # the address and the CSRF token (signed with the time) aside
        page = page.replace("someone-new@kibanda.co.ke", "EMAIL").replace(user.email, "EMAIL")
        return page.replace(re.search(r'name="csrf-token" content="([^"]+)"', page).group(1), "TOKEN")

    assert strip(taken.get_data(as_text=True)) == strip(new)  # word for word the same page
    assert "already exists" not in taken.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Client.id))) == 2  # the fixture's and the new address's
    owner_mail = caplog.text.split(f"To: {user.email}", 1)[1]
    assert "You already have a Bulkapp account" in owner_mail and "/signup/confirm/" not in owner_mail


def test_login_logout_round_trip(client, user):
    assert client.get("/dashboard").status_code == 302  # signed out: to the login page
    response = client.post("/login", data={"email": user.email.upper(), "password": PASSWORD})
    assert response.status_code == 302 and response.location.endswith("/dashboard")
    assert client.get("/dashboard").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/dashboard").status_code == 302


def test_wrong_password_shows_an_error_and_does_not_sign_in(client, user):
    response = client.post("/login", data={"email": user.email, "password": "wrong-password"})
    assert response.status_code == 422
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302


def test_unknown_email_gets_the_same_answer(client):
    response = client.post("/login", data={"email": "nobody@nowhere.example", "password": "whatever-pass"})
    assert response.status_code == 422 and "Wrong email or password." in response.get_data(as_text=True)


def test_login_redirects_only_to_local_next(client, user):
    ok = client.post("/login?next=/notifications/", data={"email": user.email, "password": PASSWORD})
    assert ok.location.endswith("/notifications/")
    client.post("/logout")
    evil = client.post("/login?next=https://evil.example/", data={"email": user.email, "password": PASSWORD})
    assert evil.location.endswith("/dashboard")


def test_session_is_renewed_at_login(client, user):
    client.get("/login")
    client.set_cookie("session", "attacker-chosen", domain="localhost")
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.value != "attacker-chosen"


def test_session_cookie_flags(client, user):
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in header and "SameSite=Lax" in header


def test_post_without_csrf_token_is_rejected(client, user):
    response = client.post("/login", data={"email": user.email, "password": PASSWORD}, csrf=False)
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302  # not signed in


def test_htmx_post_without_csrf_token_is_rejected(login, user):
    client = login(user)
    response = client.post("/notifications/read-all", headers={"HX-Request": "true"}, csrf=False)
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#flash"


def test_login_rate_limit_per_address_throttles_a_brute_forcer(app, client, user):
    limit = int(re.match(r"\d+", app.config["LOGIN_RATE_LIMIT"]).group())
    for i in range(limit):  # a different account each time: only the address is common
        wrong = {"email": f"victim{i}@a.example", "password": "wrong-password"}
        assert client.post("/login", data=wrong).status_code == 422
    blocked = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302  # even the right password waits on this address


def test_platform_admin_lands_on_admin_and_tenant_user_cannot_see_it(client, admin_user, user, login):
    response = client.post("/login", data={"email": admin_user.email, "password": PASSWORD})
    assert response.location.endswith("/admin/")
    assert "Tenant A" in client.get("/admin/").get_data(as_text=True)
    client.post("/logout")
    login(user)
    assert client.get("/admin/").status_code == 404
