"""The notifications page (filters, pagination, links), the bell's dropdown, and email copies."""

import asyncio
import socket

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from bulkapp.extensions import db
from bulkapp.jobs.notifications import email_notifications
from bulkapp.models import Notification, User
from bulkapp.services.notifications import notify

HX = {"HX-Request": "true"}


def test_filters_and_pagination(login, user):
    for i in range(55):
        notify(user.client_id, "inbound_message", f"Reply {i}", "Habari")
    notify(user.client_id, "low_balance", "Balance low", "Top up")
    db.session.commit()
    client = login(user)
    only_low = client.get("/notifications/?type=low_balance", headers=HX).get_data(as_text=True)
    assert "Balance low" in only_low and "Reply 1" not in only_low
    first = client.get("/notifications/?type=inbound_message", headers=HX).get_data(as_text=True)
    assert "Reply 54" in first and "Reply 4<" not in first and "Older" in first
    oldest_shown = db.session.scalar(sa.select(Notification.id).where(Notification.title == "Reply 5"))
    older = client.get(f"/notifications/?type=inbound_message&before={oldest_shown}", headers=HX).get_data(as_text=True)
    assert "Reply 4" in older and "Reply 0" in older and "Reply 5<" not in older and "Older" not in older


def test_unread_only_and_mark_read_keep_the_filter(login, user):
    note = notify(user.client_id, "topup_success", "Top-up received", "KSh 500")
    notify(user.client_id, "low_balance", "Balance low", "Top up")
    db.session.commit()
    client = login(user)
    response = client.post(f"/notifications/{note.id}/read?unread=1", headers=HX)
    body = response.get_data(as_text=True)
    assert "Top-up received" not in body and "Balance low" in body
    assert response.headers["HX-Trigger"] == '{"notifications-changed": true}'


def test_notifications_link_to_what_they_are_about(login, user):
    notify(user.client_id, "topup_success", "Top-up received", "KSh 500", data={"transaction_id": 1})
    db.session.commit()
    page = login(user).get("/notifications/").get_data(as_text=True)
    assert '<a href="/wallet' in page


def test_bell_dropdown_shows_the_latest(login, user, other_tenant):
    for i in range(8):
        notify(user.client_id, "inbound_message", f"Reply {i}", "")
    notify(other_tenant.id, "low_balance", "Other tenant note", "")
    db.session.commit()
    body = login(user).get("/notifications/latest", headers=HX).get_data(as_text=True)
    assert body.count('class="dropdown-item unread"') == 6 and "Reply 7" in body and "Reply 1<" not in body
    assert "Other tenant note" not in body


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.rcpt_tos, envelope.content.decode()))
        return "250 OK"


@pytest.fixture
def smtp_server(app, work_app):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings = {"MAIL_HOST": "127.0.0.1", "MAIL_PORT": port, "MAIL_SECURITY": "none", "MAIL_FROM": "Bulkapp <n@b.co>"}
    for application in (app, work_app):
        application.config.update(settings)
    yield inbox
    controller.stop()
    for application in (app, work_app):
        application.config["MAIL_HOST"] = None
    asyncio.set_event_loop(None)


def test_email_copies_go_once_to_users_who_chose_the_type(smtp_server, user, tenant):
    teammate = db.session.get(User, user.id)
    teammate.preferences = {"email_notifications": ["low_balance"]}
    other = User(client_id=tenant.id, name="Quiet", email="quiet@a.example", password="x", preferences={})
    db.session.add(other)
    notify(tenant.id, "low_balance", "Balance below KSh 100", "Top up to keep sending.")
    notify(tenant.id, "inbound_message", "New reply", "Habari")
    db.session.commit()
    assert email_notifications() == 1
    assert email_notifications() == 0  # claimed: never twice
    ((recipients, content),) = smtp_server.messages
    assert recipients == [user.email] and "Subject: Balance below KSh 100" in content


def test_no_mail_server_means_no_email_work(user):
    notify(user.client_id, "low_balance", "Balance low", "")
    db.session.commit()
    assert email_notifications() == 0
    assert db.session.scalar(sa.select(Notification.emailed_at)) is None
