"""/messages: the composer, its live quote, sending (HTMX and plain), errors, and the recent-messages list."""

from __future__ import annotations

import re
from decimal import Decimal

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Channel, Client, Message, Template, User, WalletTransaction
from bulkapp.services.billing import wallet
from bulkapp.services.messaging.compose import send_message
from tests.conftest import ledger_balance

HX = {"HX-Request": "true"}


def form(**overrides) -> dict:
    data = {
        "to": "0712345678",
        "channel": "sms",
        "template_id": "",
        "body": "Karibu! Your order is ready.",
        "append_reply_link": "y",
        "idempotency_key": "k-1",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def messages() -> list[Message]:
    db.session.expire_all()
    return db.session.scalars(sa.select(Message).order_by(Message.id)).all()


def charges(client_id: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(WalletTransaction.id)).where(
            WalletTransaction.client_id == client_id, WalletTransaction.type == "deduction"
        )
    )


def test_the_page_has_the_composer_and_the_nav_link(login, user):
    client = login(user)
    body = client.get("/messages/").get_data(as_text=True)
    nav = re.search(r'<nav class="nav".*?</nav>', body, re.S).group(0)
    assert nav.index(">Dashboard<") < nav.index(">Messages<")
    assert 'aria-current="page">Messages<' in nav
    assert '<form id="send-form"' in body and 'hx-post="/messages/"' in body and 'hx-target="this"' in body
    assert 'name="csrf_token"' in body and 'name="idempotency_key"' in body
    channels = re.search(r'<select[^>]*name="channel".*?</select>', body, re.S).group(0)
    assert re.findall(r'value="(\w+)"', channels) == ["sms", "whatsapp", "email"]  # test mode: the sandbox does all
    assert '<div id="quote"' in body and 'hx-post="/messages/quote"' in body and "delay:400ms" in body
    assert "Type a message to see what it costs." in body
    assert '<section id="message-list"' in body and "No messages yet" in body
    assert "every 2s" not in body  # nothing to watch


def test_the_page_needs_a_signed_in_tenant(client):
    response = client.get("/messages/")
    assert response.status_code == 302 and "/login" in response.location


def test_live_quote_shows_encoding_segments_units_cost_and_balance_after(login, user):
    client = login(user)
    response = client.post("/messages/quote", data=form(body="Habari “rafiki”"), headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<div id="quote"')
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd[^>]*>([^<]+)</dd>", body))
    assert facts["Encoding"] == "UCS-2" and facts["Segments"] == "1" and facts["Units"] == "1"
    assert facts["Cost"] == "KSh 0.80" and facts["Balance after"] == "KSh 99.20"
    assert "<kbd>“</kbd><kbd>”</kbd>" in body and "reply link" in body
    no_link = client.post("/messages/quote", data=form(body="Hi", append_reply_link=None), headers=HX)
    assert "<dt>Characters</dt><dd>2</dd>" in no_link.get_data(as_text=True)


def test_live_quote_for_empty_too_long_and_unaffordable(login, user):
    client = login(user)
    empty = client.post("/messages/quote", data=form(body="   "), headers=HX).get_data(as_text=True)
    assert "Type a message to see what it costs." in empty
    too_long = client.post("/messages/quote", data=form(body="a" * 1700), headers=HX).get_data(as_text=True)
    assert "at most 1,600 characters" in too_long
    wallet.debit(user.client_id, "99.90", reference="spend")
    db.session.commit()
    poor = client.post("/messages/quote", data=form(), headers=HX).get_data(as_text=True)
    assert "balance is too low" in poor and 'class="error"' in poor


def test_live_quote_fills_variables_from_the_contact(login, user):
    template = Template(client_id=user.client_id, name="Ready", content="Hi {{name}}, karibu!")
    db.session.add(template)
    db.session.commit()
    client = login(user)
    unknown = client.post("/messages/quote", data=form(body="", template_id=str(template.id)), headers=HX).get_data(
        as_text=True
    )
    assert "Filled in from the contact when sent" in unknown and "{{name}}" in unknown


def test_sending_returns_a_fresh_form_the_new_row_and_the_new_balance(login, user):
    client = login(user)
    response = client.post("/messages/", data=form(), headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<form id="send-form"')
    assert "Message to +254712345678 queued: 1 segment, KSh 0.80." in body
    assert re.search(r'name="to"[^>]*value=""', body)  # a fresh form
    assert 'id="message-list" class="card msg-list" hx-swap-oob="true"' in body
    assert 'id="balance-badge"' in body and "KSh 99.20" in body
    (message,) = messages()
    assert message.status == "delivered" and message.meta["sent_by"] == user.id  # inline jobs in tests
    assert f'id="message-{message.id}"' in body and "msg-delivered" in body
    new_key = re.search(r'name="idempotency_key" type="hidden" value="([^"]+)"', body).group(1)
    assert new_key != "k-1"


def test_a_double_submit_sends_and_charges_once(login, user):
    client = login(user)
    first = client.post("/messages/", data=form(), headers=HX)
    second = client.post("/messages/", data=form(), headers=HX)
    assert first.status_code == second.status_code == 200
    assert len(messages()) == 1 and charges(user.client_id) == 1
    assert db.session.get(Client, user.client_id).balance == Decimal("99.20") == ledger_balance(user.client_id)


def test_a_plain_form_post_redirects_with_a_flash(login, user):
    client = login(user)
    response = client.post("/messages/", data=form())
    assert response.status_code == 302 and response.location.endswith("/messages/")
    page = client.get("/messages/").get_data(as_text=True)
    assert "queued" in page and "alert-success" in page


def test_bad_input_rerenders_the_form_with_422_and_writes_nothing(login, user):
    client = login(user)
    cases = [
        (form(to="0712"), "to", "not valid"),
        (form(to=""), "to", "Enter a phone number"),
        (form(to="020 123 4567"), "to", "not a mobile number"),
        (form(body=""), "body", "Write a message"),
        (form(body="a" * 1600), "body", "at most 1,600 characters"),
        (form(channel="pigeon"), "channel", "Not a valid choice"),
        (form(template_id="abc"), "template_id", "could not coerce"),
        (form(to="not-an-email", channel="email"), "to", "not a valid email"),
    ]
    for data, field, text in cases:
        response = client.post("/messages/", data=data, headers=HX)
        body = response.get_data(as_text=True)
        assert response.status_code == 422, (data, body)
        assert body.lstrip().startswith('<form id="send-form"')
        wrapper = "field" if field == "to" else "field has-error"  # To's error has its own id (cleared when fixed)
        label = re.search(rf'<label class="{wrapper}">(?:(?!</label>).)*name="{field}".*?</label>', body, re.S)
        assert label and text in label.group(0), (field, body)
    assert messages() == [] and charges(user.client_id) == 0


def test_what_was_typed_is_kept_after_an_error(login, user):
    client = login(user)
    body = client.post("/messages/", data=form(to="0712", body="Keep me"), headers=HX).get_data(as_text=True)
    assert re.search(r'name="to"[^>]*value="0712"', body) and "Keep me</textarea>" in body


def test_insufficient_balance_is_a_form_error(login, user):
    wallet.debit(user.client_id, "99.90", reference="spend")
    db.session.commit()
    client = login(user)
    response = client.post("/messages/", data=form(), headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and 'class="alert alert-error"' in body and "Top up" in body
    assert messages() == []


def test_a_suspended_tenant_sees_why(login, user):
    client = login(user)
    db.session.get(Client, user.client_id).status = False
    db.session.commit()
    body = client.post("/messages/", data=form(), headers=HX).get_data(as_text=True)
    assert "suspended" in body and messages() == []


def test_another_tenants_template_answers_404(login, user, other_tenant):
    foreign = Template(client_id=other_tenant.id, name="Theirs", content="Secret words")
    db.session.add(foreign)
    db.session.commit()
    client = login(user)
    response = client.post("/messages/", data=form(body="", template_id=str(foreign.id)), headers=HX)
    assert response.status_code == 404 and "Secret words" not in response.get_data(as_text=True)
    quote = client.post("/messages/quote", data=form(body="", template_id=str(foreign.id)), headers=HX)
    assert "Secret words" not in quote.get_data(as_text=True) and "does not exist" in quote.get_data(as_text=True)
    assert messages() == []


def test_csrf_is_required(login, user):
    client = login(user)
    assert client.post("/messages/", data=form(), headers=HX, csrf=False).status_code == 400
    assert client.post("/messages/quote", data=form(), headers=HX, csrf=False).status_code == 400
    assert messages() == []


def test_a_live_tenant_only_sees_its_channels(login, user):
    db.session.get(Client, user.client_id).is_test_mode = False
    db.session.add(
        Channel(
            client_id=user.client_id,
            name="email",
            provider="smtp",
            credentials={},
            config={"host": "smtp.example.com", "from_address": "shop@example.com"},
            active=True,
        )
    )
    db.session.commit()
    body = login(user).get("/messages/").get_data(as_text=True)
    channels = re.search(r'<select[^>]*name="channel".*?</select>', body, re.S).group(0)
    assert re.findall(r'value="(\w+)"', channels) == ["email"]


def test_the_list_polls_only_while_something_is_moving(login, user):
    delivered = send_message(user.client_id, to="0712345678", body="Done")
    db.session.commit()
    client = login(user)
    calm = client.get("/messages/", headers=HX)
    body = calm.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="message-list"') and "HX-Request" in calm.headers["Vary"]
    assert "every 2s" not in body and f'id="message-{delivered.id}"' in body
    db.session.execute(sa.update(Message).values(status="sending"))
    db.session.commit()
    moving = client.get("/messages/", headers=HX).get_data(as_text=True)
    assert 'hx-get="/messages/"' in moving and 'hx-trigger="every 2s"' in moving and "msg-sending" in moving


def test_the_list_pages_by_keyset_and_shows_only_this_tenant(login, user, other_tenant):
    for i in range(27):
        send_message(user.client_id, to="0712345678", body=f"Note {i:02d}", append_reply_link=False)
    send_message(other_tenant.id, to="0712345678", body="Not for your eyes", append_reply_link=False)
    db.session.commit()
    client = login(user)
    first = client.get("/messages/").get_data(as_text=True)
    assert first.count('<tr id="message-') == 25 and "Note 26" in first and "Not for your eyes" not in first
    older = re.search(r'href="(/messages/\?before=[^"]+)">Older', first).group(1)
    second = client.get(older.replace("&amp;", "&")).get_data(as_text=True)
    assert second.count('<tr id="message-') == 2 and "Note 01" in second and "Note 00" in second
    assert "← Newest" in second and "Older →" not in second
    bad = client.get("/messages/?before=not-a-cursor").get_data(as_text=True)
    assert bad.count('<tr id="message-') == 25


def test_failed_messages_show_why(login, user):
    send_message(user.client_id, to="0712345601", body="To a number the sandbox refuses")
    db.session.commit()
    body = login(user).get("/messages/").get_data(as_text=True)
    assert "msg-failed" in body and "recipients ending in 01 are always rejected" in body


def test_a_live_tenant_without_channels_is_told_where_to_add_one(login, user):
    db.session.get(Client, user.client_id).is_test_mode = False
    db.session.commit()
    client = login(user)
    body = client.get("/messages/").get_data(as_text=True)
    assert "no active channel" in body and 'href="/settings/"' in body
    response = client.post("/messages/", data=form(), headers=HX)
    assert response.status_code == 422 and "Not a valid choice" in response.get_data(as_text=True)
    assert messages() == []


def test_the_sent_note_says_segments_with_plural_forms(login, user):
    client = login(user)
    body = client.post("/messages/", data=form(body="x" * 200), headers=HX).get_data(as_text=True)
    assert "queued: 2 segments, KSh 1.60." in body and "segment(s)" not in body


def test_an_email_quote_shows_no_sms_encoding_or_segments(login, user):
    client = login(user)
    data = form(channel="email", to="amina@example.com", body="Habari “rafiki”, your order is ready.")
    body = client.post("/messages/quote", data=data, headers=HX).get_data(as_text=True)
    assert "<dt>Cost</dt>" in body, body
    for sms_only in ("Encoding", "Segments", "Units", "GSM-7", "UCS-2", "70 characters a segment"):
        assert sms_only not in body


def test_a_fixed_number_clears_its_old_error(login, user):
    client = login(user)
    failed = client.post("/messages/", data=form(to="0712"), headers=HX)
    html = failed.get_data(as_text=True)
    assert failed.status_code == 422
    error = re.search(r'<small id="to-error" class="error" >([^<]+)</small>', html)
    assert error and error.group(1).strip()
    assert 'aria-describedby="to-error"' in html
    still_bad = client.post("/messages/quote", data=form(to="07123"), headers=HX).get_data(as_text=True)
    assert 'id="to-error"' not in still_bad  # a number still being typed keeps its error until it is right
    fixed = client.post("/messages/quote", data=form(to="0712 345 678"), headers=HX).get_data(as_text=True)
    assert '<small id="to-error" class="error" hx-swap-oob="true" hidden></small>' in fixed


def test_a_swahili_reader_sees_why_in_kiswahili(login, user):
    send_message(user.client_id, to="0712345601", body="To a number the sandbox refuses")
    db.session.get(User, user.id).language = "sw"
    db.session.commit()
    body = login(user).get("/messages/").get_data(as_text=True)
    assert "Majaribio: namba zinazoishia 01 hukataliwa kila mara" in body
    assert "recipients ending in 01" not in body


def test_the_composer_offers_no_template_in_the_readers_language(login, user):
    db.session.get(User, user.id).language = "sw"
    db.session.commit()
    body = login(user).get("/messages/").get_data(as_text=True)
    assert re.search(r"<option[^>]*value=\"\"[^>]*>Bila kiolezo</option>", body)
