"""Provider and connection errors reach the owner as sentences in their language, wherever they show: the
messages page, the inbox thread and notifications (Test connection: tests/blueprints/test_channel_settings.py)."""

from __future__ import annotations

import socket

import sqlalchemy as sa
from flask_babel import force_locale

from bulkapp.extensions import db
from bulkapp.models import Client, Message, User
from bulkapp.providers.errors import UNREACHABLE
from bulkapp.services.channels import settings as channel_settings
from bulkapp.services.notifications import notify as notifications
from tests.services.inbox.test_inbox import receive

HX = {"HX-Request": "true"}
RAW = ("HTTPConnectionPool", "NewConnectionError", "Errno", "Connection refused", "Max retries")


def unreachable_onfon(client_id: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe is closed
    values = {"access_key": "a", "api_key": "b", "client_id": "c", "sender_id": "ACME"}
    channel_settings.create_channel(
        client_id, "onfon", {**values, "base_url": f"http://127.0.0.1:{port}/v1/sms"}, allow_private_urls=True
    )
    db.session.get(Client, client_id).is_test_mode = False  # live: sends go to Onfon, not the sandbox
    db.session.commit()


def test_a_send_to_an_unreachable_vendor_shows_a_plain_translated_reason(login, user):
    unreachable_onfon(user.client_id)
    client = login(user)
    form = {"to": "0712345678", "channel": "sms", "body": "Karibu!", "idempotency_key": "k-unreachable"}
    client.post("/messages/", data=form, headers=HX)

    db.session.expire_all()
    message = db.session.scalars(sa.select(Message)).one()
    assert message.error_message == "We could not reach Onfon Media. Check the base URL and try again."
    page = client.get("/messages/").get_data(as_text=True)
    assert "We could not reach Onfon Media. Check the base URL and try again." in page
    assert not any(raw in page for raw in RAW)

    db.session.get(User, user.id).language = "sw"
    db.session.commit()
    page = client.get("/messages/").get_data(as_text=True)
    assert "Hatukuweza kufikia Onfon Media. Kagua URL ya msingi kisha ujaribu tena." in page


def test_a_notification_shows_the_providers_reason_in_the_readers_language(tenant, user):
    reason = UNREACHABLE % {"vendor": "Onfon Media"}
    note = notifications.notify(
        tenant.id, "message_failed", "message_not_sent", {"recipient": "+254712345678", "reason": reason}
    )
    db.session.commit()
    with force_locale("sw"):
        shown = notifications.render(note)
    assert "Hatukuweza kufikia Onfon Media." in shown.message
    with force_locale("en"):
        assert notifications.render(note).message.startswith("We could not reach Onfon Media.")


def test_a_failed_reply_in_the_inbox_thread_reads_in_the_readers_language(login, user, tenant):
    conversation = receive(tenant.id, "+254712345678", "Mko wazi leo?")
    db.session.add(
        Message(
            client_id=tenant.id,
            conversation_id=conversation.id,
            direction="outbound",
            status="failed",
            recipient=conversation.contact_identifier,
            body="Ndiyo",
            error_message=UNREACHABLE % {"vendor": "Onfon Media"},
        )
    )
    db.session.get(User, user.id).language = "sw"
    db.session.commit()
    html = login(user).get(f"/inbox/{conversation.id}").get_data(as_text=True)
    assert "Hatukuweza kufikia Onfon Media. Kagua URL ya msingi kisha ujaribu tena." in html
