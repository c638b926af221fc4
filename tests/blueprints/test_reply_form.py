"""The public reply form /x/<code>: clicks, privacy, expiry, anti-abuse (honeypot, fill time, length, rate
limits) and that a reply lands in the recipient's conversation without sending anything."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.jobs.shortlinks import flush_link_clicks
from bulkapp.models import Client, Contact, Conversation, Event, Message, Notification, ShortLink
from bulkapp.services.messaging import link_clicks, reply_form
from bulkapp.services.messaging.compose import send_message
from tests.conftest import ledger_balance

SECRET = "test-secret"


@pytest.fixture
def link(tenant) -> ShortLink:
    """A sent SMS with its reply link, to a contact with a name."""
    db.session.add(Contact(client_id=tenant.id, contact="+254712345678", name="Private Person", fields={}))
    tenant.company_name = "Mama Mboga Grocers"
    db.session.commit()
    message = send_message(tenant.id, to="0712345678", body="Your secret order 4471 is ready", channel="sms")
    db.session.commit()
    return db.session.scalar(sa.select(ShortLink).where(ShortLink.message_id == message.id))


def token(code: str, age: float = 10) -> str:
    return reply_form.issue_token(SECRET, code, time.time() - age)


def post(client, code: str, text: str = "Asante, I will come at 5", **extra):
    data = {"message": text, "t": token(code), "website": "", **extra}
    return client.post(f"/x/{code}", data=data, csrf=False)


@pytest.fixture(autouse=True)
def fresh_clicks(app):
    """Clicks other tests left in the serving app's buffer are not this test's."""
    with app.app_context(), link_clicks.taken_clicks():
        pass


def flush(app) -> None:
    """Run the periodic click flush in the serving app, as its ticker would."""
    with app.app_context():
        flush_link_clicks()
    db.session.expire_all()


def inbound_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "inbound"))


def test_the_page_shows_the_business_and_a_form_and_nothing_of_the_recipient(app, client, link, other_tenant):
    response = client.get(f"/x/{link.code}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Mama Mboga Grocers" in html and 'name="message"' in html and 'maxlength="1000"' in html
    for secret in ("Private Person", "+254712345678", "0712345678", "712345678", "4471", "Tenant B", "Tenant A"):
        assert secret not in html
    assert "<script" not in html  # works without JavaScript
    assert "Set-Cookie" not in response.headers  # no session at all
    flush(app)
    clicked = db.session.get(ShortLink, link.id)
    assert clicked.clicks == 1 and clicked.last_clicked_at is not None
    client.get(f"/x/{link.code}")
    flush(app)
    assert db.session.get(ShortLink, link.id).clicks == 2


def test_each_view_gets_its_own_valid_token_and_its_language(client, link):
    """The form is rendered once per URL and language; each view still carries a fresh token for its code."""
    pages = [client.get(f"/x/{link.code}").get_data(as_text=True) for _ in range(2)]
    tokens = [re.search(r'name="t" value="([^"]+)"', page).group(1) for page in pages]
    assert pages[0].replace(tokens[0], "") == pages[1].replace(tokens[1], "")
    for t in tokens:
        assert reply_form.token_problem(SECRET, link.code, t, 0) is None
    assert "token-slot" not in pages[0]
    swahili = client.get(f"/x/{link.code}?lang=sw").get_data(as_text=True)
    assert 'lang="sw"' in swahili and "Mama Mboga Grocers" in swahili and "?lang=sw" in swahili
    assert 'lang="en"' in client.get(f"/x/{link.code}").get_data(as_text=True)


def test_a_burst_of_views_reads_the_link_once(app, client, link):
    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        for _ in range(3):
            assert client.get(f"/x/{link.code}").status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert len([s for s in statements if "short_links" in s]) <= 1  # none when an earlier test view cached it


def test_a_reply_lands_in_the_conversation_and_sends_nothing(client, link, tenant):
    balance = db.session.get(Client, tenant.id).balance
    outbound = db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "outbound"))
    response = post(client, link.code)  # no CSRF token: the public form has no session
    assert response.status_code == 303 and response.location.endswith(f"/x/{link.code}/sent")
    reply = db.session.scalar(sa.select(Message).where(Message.direction == "inbound"))
    original = db.session.get(Message, link.message_id)
    assert reply.body == "Asante, I will come at 5" and reply.conversation_id == original.conversation_id
    assert reply.provider == "web" and reply.sender == "+254712345678"
    assert db.session.get(Conversation, reply.conversation_id).unread_count == 1
    assert db.session.scalar(sa.select(Notification).where(Notification.type == "inbound_message")) is not None
    assert db.session.scalar(sa.select(Event).where(Event.type == "message.received")) is not None
    # Nothing went out and nothing was charged.
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "outbound"))
        == outbound
    )
    db.session.expire_all()
    assert db.session.get(Client, tenant.id).balance == balance == ledger_balance(tenant.id)
    sent = client.get(f"/x/{link.code}/sent").get_data(as_text=True)
    assert "Mama Mboga Grocers got your message" in sent and "Asante" not in sent


def test_unknown_wrong_case_and_malformed_codes_are_404(client, link):
    swapped = link.code.swapcase() if link.code.swapcase() != link.code else "zzzz"
    for code in ("zzz0" if link.code != "zzz0" else "zzz1", swapped, "abc", "abcde", "ab%21"):
        response = client.get(f"/x/{code}")
        assert response.status_code == 404, code
        assert "Link not found" in response.get_data(as_text=True)
    assert post(client, "zzzz" if link.code != "zzzz" else "zzzy").status_code == 404
    assert client.get("/x/zzzz/sent").status_code == (200 if link.code == "zzzz" else 404)
    assert inbound_count() == 0


def test_expired_links_and_suspended_accounts_show_a_friendly_page(app, client, link, tenant, monkeypatch):
    monkeypatch.setitem(app.config, "SHORTLINK_CACHE_SECONDS", 0)  # each view reads the link again
    db.session.get(ShortLink, link.id).expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    response = client.get(f"/x/{link.code}")
    assert response.status_code == 410 and "This link has expired" in response.get_data(as_text=True)
    assert post(client, link.code).status_code == 410
    db.session.get(ShortLink, link.id).expires_at = utcnow() + timedelta(days=1)
    db.session.get(Client, tenant.id).status = False
    db.session.commit()
    assert client.get(f"/x/{link.code}").status_code == 410
    assert inbound_count() == 0
    flush(app)
    assert db.session.get(ShortLink, link.id).clicks == 0


def test_an_expiry_shows_even_while_the_link_is_cached(client, link):
    db.session.get(ShortLink, link.id).expires_at = utcnow() + timedelta(seconds=1)
    db.session.commit()
    assert client.get(f"/x/{link.code}").status_code == 200
    time.sleep(1.1)
    assert client.get(f"/x/{link.code}").status_code == 410


def test_honeypot_pretends_success_and_records_nothing(client, link):
    response = post(client, link.code, website="http://spam.example")
    assert response.status_code == 303
    assert inbound_count() == 0


@pytest.mark.parametrize("case", ["too_fast", "missing", "other_code", "forged", "stale"])
def test_the_form_token_is_required_and_the_minimum_fill_time_holds(client, link, case):
    tokens = {
        "too_fast": reply_form.issue_token(SECRET, link.code),
        "missing": "",
        "other_code": token("AAAA" if link.code != "AAAA" else "BBBB"),
        "forged": reply_form.issue_token("another-secret", link.code, time.time() - 60),
        "stale": token(link.code, age=reply_form.TOKEN_MAX_AGE + 60),
    }
    response = client.post(f"/x/{link.code}", data={"message": "hello", "t": tokens[case]}, csrf=False)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "Please press Send again" in html and ">hello</textarea>" in html
    assert inbound_count() == 0


def test_empty_too_long_and_oversize_replies_are_refused(client, link):
    assert post(client, link.code, text="   ").status_code == 422
    response = post(client, link.code, text="x" * 1001)
    assert response.status_code == 422 and "under 1000 characters" in response.get_data(as_text=True)
    response = post(client, link.code, text="x" * 20_000)
    assert response.status_code == 413
    assert inbound_count() == 0
    assert post(client, link.code, text="x" * 1000).status_code == 303


def test_html_in_a_reply_is_escaped_in_the_inbox(client, link, login, user):
    post(client, link.code, text="<script>alert(1)</script>")
    conversation_id = db.session.scalar(sa.select(Message.conversation_id).where(Message.direction == "inbound"))
    html = login(user).get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html


def test_replies_are_rate_limited_per_code(client, link):
    statuses = [post(client, link.code, text=f"reply {i}").status_code for i in range(6)]
    assert statuses == [303] * 5 + [429]
    assert inbound_count() == 5


def test_views_are_rate_limited_per_ip_and_per_code(app, client, link):
    statuses = [client.get(f"/x/{link.code}").status_code for _ in range(31)]
    assert statuses[:30] == [200] * 30 and statuses[30] == 429  # 30 per minute for one code
    other_ip = [
        client.get(f"/x/{code}", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code
        for code in [f"q{i:03d}" for i in range(61)]
    ]
    assert other_ip[:60] == [404] * 60 and other_ip[60] == 429  # 60 per minute for one IP, even on 404s
    flush(app)
    assert db.session.get(ShortLink, link.id).clicks == 30


def test_two_tenants_links_are_separate(client, link, other_tenant):
    theirs = send_message(other_tenant.id, to="0722000111", body="Other business message", channel="sms")
    db.session.commit()
    code = db.session.scalar(sa.select(ShortLink.code).where(ShortLink.message_id == theirs.id))
    html = client.get(f"/x/{code}").get_data(as_text=True)
    assert "Tenant B" in html and "Mama Mboga" not in html and "0722000111" not in html
    post(client, code, text="for B only")
    reply = db.session.scalar(sa.select(Message).where(Message.direction == "inbound"))
    assert reply.client_id == other_tenant.id and reply.conversation_id == theirs.conversation_id
    assert re.fullmatch(r"[0-9A-Za-z]{4}", code)
