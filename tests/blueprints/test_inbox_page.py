"""The /inbox pages: list, filters, search, polling, opening (read + badge), replies and status changes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Client, Conversation, Message, WalletTransaction
from tests.conftest import ledger_balance
from tests.services.inbox.test_inbox import receive

HX = {"HX-Request": "true"}


def badge(html: str) -> str:
    return re.search(r'<span id="inbox-nav-badge"[^>]*>([^<]*)</span>', html).group(1)


@pytest.fixture
def inbox_client(login, user):
    return login(user)


def test_list_shows_contact_preview_channel_and_unread_badge(inbox_client, tenant):
    receive(tenant.id, "+254712345678", "Is the shop open on Sunday?", name="Achieng Otieno")
    receive(tenant.id, "+254712345678", "Hello?", name="Achieng Otieno")
    receive(tenant.id, "+254733000111", "Habari", channel="whatsapp")
    page = inbox_client.get("/inbox/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html
    assert "Achieng Otieno" in html and "+254712345678" in html and "Hello?" in html
    assert 'class="inbox-badge" aria-label="2 unread">2<' in html
    assert 'title="WhatsApp"' in html and 'title="SMS"' in html
    assert badge(html) == "2"  # two conversations with unread messages in the nav
    fragment = inbox_client.get("/inbox/?status=open", headers=HX).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="inbox-list"') and "<html" not in fragment


def test_filters_and_search_from_the_query_string(inbox_client, tenant, other_tenant):
    receive(tenant.id, "+254712345678", "maize flour please", name="Wanjiru")
    whatsapp = receive(tenant.id, "+254733000111", "Habari", channel="whatsapp")
    receive(other_tenant.id, "+254799000000", "maize from another tenant", name="Other Person")
    html = inbox_client.get("/inbox/?q=maize", headers=HX).get_data(as_text=True)
    assert "Wanjiru" in html and "Habari" not in html and "Other Person" not in html
    html = inbox_client.get("/inbox/?channel=whatsapp", headers=HX).get_data(as_text=True)
    assert f"conversation-{whatsapp.id}" in html and "Wanjiru" not in html
    html = inbox_client.get("/inbox/?status=archived", headers=HX).get_data(as_text=True)
    assert "No archived conversations" in html
    # Nonsense filters and cursors fall back to the defaults instead of failing.
    response = inbox_client.get("/inbox/?status=nope&channel=fax&cursor=xyz&q=" + "a" * 5000)
    assert response.status_code == 200


def test_pages_link_to_older_conversations(inbox_client, tenant):
    for i in range(27):
        receive(tenant.id, f"+2547120001{i:02d}", f"message {i}")
    html = inbox_client.get("/inbox/").get_data(as_text=True)
    cursor = re.search(r"cursor=([0-9_]+)", html).group(1)
    older = inbox_client.get(f"/inbox/?cursor={cursor}", headers=HX).get_data(as_text=True)
    assert older.count('<li id="conversation-') == 2 and "Newest" in older
    assert 'hx-trigger="every' not in older  # only the first page polls


def test_list_polling_answers_204_until_something_arrives(inbox_client, tenant):
    receive(tenant.id, "+254712345678", "first")
    html = inbox_client.get("/inbox/").get_data(as_text=True)
    poll = re.search(r'hx-get="([^"]*since=[^"]*)" hx-trigger="every 5s"', html).group(1).replace("&amp;", "&")
    response = inbox_client.get(poll, headers=HX)
    assert response.status_code == 204 and response.get_data() == b""
    conversation = receive(tenant.id, "+254700111222", "a new customer")
    conversation.last_message_at = utcnow() + timedelta(seconds=1)
    db.session.commit()
    response = inbox_client.get(poll, headers=HX)
    assert response.status_code == 200 and "a new customer" in response.get_data(as_text=True)


def test_opening_marks_read_and_swaps_the_nav_badge_out_of_band(inbox_client, tenant):
    conversation = receive(tenant.id, "+254712345678", "Need help", name="Baraka")
    receive(tenant.id, "+254700111222", "another")
    response = inbox_client.get(f"/inbox/{conversation.id}", headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<section id="inbox-thread"')
    assert "Need help" in html and 'id="reply-form"' in html
    assert re.search(r'<span id="inbox-nav-badge"[^>]*hx-swap-oob="true"[^>]*>1</span>', html)
    assert re.search(rf'<li id="conversation-{conversation.id}" class="inbox-item active" hx-swap-oob="true">', html)
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).unread_count == 0
    page = inbox_client.get(f"/inbox/{conversation.id}").get_data(as_text=True)
    assert "<html" in page and 'id="inbox-list"' in page and badge(page) == "1"


def test_thread_shows_directions_status_ticks_and_campaign(inbox_client, tenant):
    conversation = receive(tenant.id, "+254712345678", "When do you open?")
    for status in ("delivered", "failed", "sent"):
        db.session.add(
            Message(
                client_id=tenant.id,
                conversation_id=conversation.id,
                direction="outbound",
                status=status,
                recipient=conversation.contact_identifier,
                body=f"reply {status}",
                error_message="Number unreachable" if status == "failed" else None,
            )
        )
    db.session.commit()
    html = inbox_client.get(f"/inbox/{conversation.id}").get_data(as_text=True)
    assert 'class="inbox-msg inbox-inbound"' in html and html.count('class="inbox-msg inbox-outbound"') == 3
    assert 'title="Delivered">✓✓' in html and 'title="Failed">✕' in html and 'title="Sent">✓' in html
    assert "Number unreachable" in html


def test_thread_polling_204_then_new_messages(inbox_client, tenant):
    conversation = receive(tenant.id, "+254712345678", "first")
    html = inbox_client.get(f"/inbox/{conversation.id}").get_data(as_text=True)
    poll = re.search(r'hx-get="(/inbox/\d+/messages[^"]*)"', html).group(1).replace("&amp;", "&")
    assert inbox_client.get(poll, headers=HX).status_code == 204
    receive(tenant.id, "+254712345678", "second, while you look")
    response = inbox_client.get(poll, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<div id="thread-messages"')
    assert "second, while you look" in body and 'id="inbox-nav-badge"' in body
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).unread_count == 0  # seen while open


def test_reply_sends_on_the_channel_and_a_double_submit_charges_once(inbox_client, tenant):
    conversation = receive(tenant.id, "+254712345678", "Price?")
    html = inbox_client.get(f"/inbox/{conversation.id}").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="([0-9a-f]+)"', html).group(1)
    form = {"body": "KSh 120 a kilo", "idempotency_key": key}
    first = inbox_client.post(f"/inbox/{conversation.id}/reply", data=form, headers=HX)
    second = inbox_client.post(f"/inbox/{conversation.id}/reply", data=form, headers=HX)
    assert first.status_code == second.status_code == 200
    body = first.get_data(as_text=True)
    assert body.lstrip().startswith('<form id="reply-form"') and "Reply queued" in body
    assert '<div id="thread-messages"' in body and "KSh 120 a kilo" in body and 'id="balance-badge"' in body
    replies = db.session.scalars(sa.select(Message).where(Message.direction == "outbound")).all()
    assert len(replies) == 1 and replies[0].conversation_id == conversation.id and replies[0].channel == "sms"
    debits = sa.select(sa.func.count()).select_from(WalletTransaction).where(WalletTransaction.type == "deduction")
    assert db.session.scalar(debits) == 1
    assert db.session.get(Client, tenant.id).balance == ledger_balance(tenant.id) < 100


def test_reply_errors_re_render_the_composer_with_422(inbox_client, tenant):
    conversation = receive(tenant.id, "+254712345678", "Price?")
    response = inbox_client.post(f"/inbox/{conversation.id}/reply", data={"body": "   "}, headers=HX)
    assert response.status_code == 422 and "Write a message" in response.get_data(as_text=True)
    response = inbox_client.post(f"/inbox/{conversation.id}/reply", data={"body": "x" * 2000}, headers=HX)
    assert response.status_code == 422 and "at most 1,600 characters" in response.get_data(as_text=True)
    response = inbox_client.post(f"/inbox/{conversation.id}/reply", data={"body": "hi"}, headers=HX, csrf=False)
    assert response.status_code == 400
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "outbound")) == 0
    )


def test_live_quote(inbox_client, tenant):
    conversation = receive(tenant.id, "+254712345678", "Price?")
    html = inbox_client.post(f"/inbox/{conversation.id}/quote", data={"body": "Karibu"}).get_data(as_text=True)
    assert html.lstrip().startswith('<p id="reply-quote"') and "1 segment" in html and "KSh 0.80" in html


def test_whatsapp_outside_the_window_asks_for_a_template_and_refuses_free_text(inbox_client, tenant):
    conversation = receive(tenant.id, "+254712345678", "Habari", channel="whatsapp")
    db.session.execute(sa.update(Message).values(created_at=utcnow() - timedelta(hours=30)))
    db.session.commit()
    html = inbox_client.get(f"/inbox/{conversation.id}").get_data(as_text=True)
    assert "more than 24 hours old" in html and 'name="body"' not in html
    response = inbox_client.post(f"/inbox/{conversation.id}/reply", data={"body": "free text"}, headers=HX)
    assert response.status_code == 422 and "approved template" in response.get_data(as_text=True)
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "outbound")) == 0
    )


def test_close_archive_reopen(inbox_client, tenant):
    conversation = receive(tenant.id, "+254712345678", "Thanks, all good")
    url = f"/inbox/{conversation.id}/status"
    response = inbox_client.post(url, data={"status": "closed", "f_status": "open"}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<section id="inbox-thread"')
    assert '<section id="inbox-list"' in html and 'hx-swap-oob="true"' in html
    assert f"conversation-{conversation.id}" not in html.split('<section id="inbox-list"')[1]  # left the open list
    assert ">Reopen<" in html
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).status == "closed"
    plain = inbox_client.post(url, data={"status": "archived"})
    assert plain.status_code == 302 and plain.location.endswith(f"/inbox/{conversation.id}?status=open")
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).status == "archived"
    assert inbox_client.post(url, data={"status": "deleted"}).status_code == 400
    inbox_client.post(url, data={"status": "open"}, headers=HX)
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).status == "open"


def test_foreign_conversations_answer_404_and_change_nothing(inbox_client, tenant, other_tenant):
    theirs = receive(other_tenant.id, "+254712345678", "private words")
    for method, path, data in (
        ("get", "", None),
        ("get", "/messages?after=0", None),
        ("post", "/quote", {"body": "x"}),
        ("post", "/reply", {"body": "x"}),
        ("post", "/status", {"status": "archived"}),
    ):
        response = getattr(inbox_client, method)(f"/inbox/{theirs.id}{path}", data=data)
        assert response.status_code == 404, path
        assert "private words" not in response.get_data(as_text=True)
    db.session.expire_all()
    conversation = db.session.get(Conversation, theirs.id)
    assert conversation.status == "open" and conversation.unread_count == 1
    assert inbox_client.get("/inbox/999999").status_code == 404


def test_signed_out_htmx_gets_401(client):
    response = client.get("/inbox/", headers=HX)
    assert response.status_code == 401 and response.headers["HX-Redirect"] == "/login"


@pytest.fixture
def statements(app):
    """The SQL statements the serving app runs, in order."""
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", record)


def test_list_search_and_thread_run_as_many_queries_for_thirty_conversations_as_for_two(
    inbox_client, tenant, statements
):
    """No query per conversation or per message (contacts, campaigns, badges are read once per page)."""

    def counts() -> list[int]:
        conversation_id = db.session.scalar(sa.select(sa.func.max(Conversation.id)))
        found = []
        for url in ("/inbox/", "/inbox/?q=order", f"/inbox/{conversation_id}"):
            inbox_client.get(url)
            statements.clear()
            assert inbox_client.get(url).status_code == 200
            found.append(len(statements))
        return found

    for n in range(2):
        receive(tenant.id, f"+25471200{n:04d}", f"order {n} is ready?", name=f"Customer {n}")
    few = counts()
    for n in range(2, 30):
        receive(tenant.id, f"+25471200{n:04d}", f"order {n} is ready?", name=f"Customer {n}")
        receive(tenant.id, f"+25471200{n:04d}", f"and the order {n} again", name=f"Customer {n}")
    assert counts() == few


def test_opening_a_read_conversation_writes_nothing(inbox_client, tenant, statements):
    conversation = receive(tenant.id, "+254712345678", "Habari")
    inbox_client.get(f"/inbox/{conversation.id}")  # marks it read
    statements.clear()
    assert inbox_client.get(f"/inbox/{conversation.id}").status_code == 200
    assert not [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))]
