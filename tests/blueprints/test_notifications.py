"""The notifications page (filters, pagination, links), the bell's dropdown, and email copies, each in the
reader's language."""

import asyncio
import email
import email.policy
import socket
from decimal import Decimal

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from bulkapp.extensions import db
from bulkapp.jobs.notifications import email_notifications
from bulkapp.models import Notification, User
from bulkapp.services.notifications.notify import TEXTS, notify, render

HX = {"HX-Request": "true"}


def reply(client_id: int, sender: str) -> Notification:
    return notify(client_id, "inbound_message", "new_message", {"sender": sender}, message="Habari")


def low_balance(client_id: int, balance: str = "99.20") -> Notification:
    return notify(client_id, "low_balance", "low_balance", {"balance": Decimal(balance), "threshold": "100.00"})


def topup(client_id: int, **kwargs) -> Notification:
    params = {"amount": "1234.50", "balance": "1334.50", "receipt": "SKD1234XYZ"}
    return notify(client_id, "topup_success", "topup_received_with_receipt", params, **kwargs)


def test_filters_and_pagination(login, user):
    for i in range(55):
        reply(user.client_id, f"Reply {i}")
    low_balance(user.client_id)
    db.session.commit()
    client = login(user)
    only_low = client.get("/notifications/?type=low_balance", headers=HX).get_data(as_text=True)
    assert "Low balance" in only_low and "Reply 1" not in only_low
    first = client.get("/notifications/?type=inbound_message", headers=HX).get_data(as_text=True)
    assert "Reply 54" in first and "Reply 4<" not in first and "Older" in first
    oldest_shown = db.session.scalar(sa.select(Notification.id).where(Notification.title == "New message from Reply 5"))
    older = client.get(f"/notifications/?type=inbound_message&before={oldest_shown}", headers=HX).get_data(as_text=True)
    assert "Reply 4" in older and "Reply 0" in older and "Reply 5<" not in older and "Older" not in older


def test_unread_only_and_mark_read_keep_the_filter(login, user):
    note = topup(user.client_id)
    low_balance(user.client_id)
    db.session.commit()
    client = login(user)
    response = client.post(f"/notifications/{note.id}/read?unread=1", headers=HX)
    body = response.get_data(as_text=True)
    assert "Top-up received" not in body and "Low balance" in body
    assert response.headers["HX-Trigger"] == '{"notifications-changed": true}'


def test_notifications_link_to_what_they_are_about(login, user):
    topup(user.client_id, data={"transaction_id": 1})
    db.session.commit()
    page = login(user).get("/notifications/").get_data(as_text=True)
    assert '<a href="/wallet' in page


def test_bell_dropdown_shows_the_latest(login, user, other_tenant):
    for i in range(8):
        reply(user.client_id, f"Reply {i}")
    reply(other_tenant.id, "Other tenant note")
    db.session.commit()
    body = login(user).get("/notifications/latest", headers=HX).get_data(as_text=True)
    assert body.count('class="dropdown-item unread"') == 6 and "Reply 7" in body and "Reply 1<" not in body
    assert "Other tenant note" not in body


def teammate(tenant, language: str, email_types: list[str] | None = None) -> User:
    from bulkapp.services.accounts.users import create_user
    from tests.conftest import PASSWORD

    user = create_user(f"{language}@a.example", PASSWORD, name=f"Mwenzake {language}", client_id=tenant.id)
    user.language = language
    user.preferences = {"email_notifications": email_types or []}
    db.session.commit()
    return user


def page_as(app, user, path: str) -> str:
    from tests.conftest import PASSWORD

    client = app.test_client()
    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    return client.get(path, headers=HX).get_data(as_text=True)


def test_one_stored_notification_reads_in_each_viewers_language(app, tenant, user):
    params = {"name": "Promo ya Pasaka", "sent": 1234, "total": 1240, "failed": 6, "cost": Decimal("1234.5")}
    note = notify(tenant.id, "campaign_completed", "campaign_finished", params)
    db.session.commit()
    # stored once, in English (the API, logs and older code read these columns)
    assert note.title == "Campaign “Promo ya Pasaka” finished"
    assert note.message == "1,234 of 1,240 messages went out; 6 did not. It cost KSh 1,234.50."
    swahili = teammate(tenant, "sw")

    english_page = page_as(app, user, "/notifications/")
    assert "Campaign “Promo ya Pasaka” finished" in english_page
    assert "1,234 of 1,240 messages went out; 6 did not. It cost KSh 1,234.50." in english_page
    swahili_page = page_as(app, swahili, "/notifications/")
    assert "Kampeni “Promo ya Pasaka” imekamilika" in swahili_page
    assert "Jumbe 1,234 kati ya 1,240 zimetumwa; 6 hazikutumwa. Gharama: KSh 1,234.50." in swahili_page
    assert "finished" not in swahili_page
    assert "Kampeni “Promo ya Pasaka” imekamilika" in page_as(app, swahili, "/notifications/latest")
    assert "Campaign “Promo ya Pasaka” finished" in page_as(app, user, "/notifications/latest")


def test_texts_with_plurals_and_stored_messages(tenant):
    from flask_babel import force_locale

    counts = {"filename": "wateja.csv", "added": 1200, "updated": 3, "failed": 0}
    one = notify(tenant.id, "contacts_imported", "contacts_imported", {**counts, "merged": 1})
    two = notify(tenant.id, "contacts_imported", "contacts_imported", {**counts, "merged": 2})
    reply = notify(tenant.id, "inbound_message", "new_whatsapp_message", {"sender": "Achieng"}, message="Asante!")
    assert one.message == "1,200 added, 3 updated, 1 duplicate row merged, 0 failed."
    assert two.message == "1,200 added, 3 updated, 2 duplicate rows merged, 0 failed."
    with force_locale("sw"):
        assert render(two) == (
            "Wateja wameingizwa kutoka wateja.csv",
            "1,200 wameongezwa, 3 wamesasishwa, safu 2 zilizojirudia zimeunganishwa, 0 wameshindikana.",
        )
        # a customer's words are shown as they wrote them
        assert render(reply) == ("Ujumbe mpya wa WhatsApp kutoka kwa Achieng", "Asante!")


def test_our_own_stored_reasons_read_in_the_readers_language(tenant):
    from flask_babel import force_locale

    from bulkapp.services.campaigns.launch import NO_RECIPIENTS

    params = {"name": "Promo"}
    ours = notify(tenant.id, "campaign_completed", "campaign_not_started", params, message=NO_RECIPIENTS)
    vendor = notify(tenant.id, "campaign_completed", "campaign_not_started", params, message="Rejected by SMSC")
    assert ours.message == "No one to send to: every recipient was invalid, a duplicate or opted out."
    with force_locale("sw"):
        assert render(ours).message == "Hakuna wa kutumiwa: kila mpokeaji alikuwa si sahihi, amerudiwa au amejiondoa."
        assert render(vendor).message == "Rejected by SMSC"  # a provider's words stay as written


SAMPLE = {
    "name": "Promo", "sent": 1, "total": 2, "failed": 1, "cost": "1.60", "recipient": "+254712345678",
    "reason": "Rejected.", "count": 2, "balance": "99.20", "threshold": "100.00", "amount": "500.00",
    "receipt": "SKD1", "filename": "a.csv", "added": 1, "updated": 0, "merged": 0, "status": "410", "sender": "Amina",
}  # fmt: skip


@pytest.mark.parametrize("text", sorted(TEXTS))
def test_every_text_has_a_swahili_wording(tenant, text):
    from flask_babel import force_locale

    note = notify(tenant.id, "low_balance", text, SAMPLE, message="Habari")
    with force_locale("sw"):
        title, message = render(note)
    assert title != note.title and "%(" not in title + message
    assert message == "Habari" if TEXTS[text].message is None else message != note.message


def test_older_rows_and_rows_that_no_longer_fit_show_the_stored_text(login, user):
    db.session.add_all(
        [
            Notification(client_id=user.client_id, type="low_balance", title="Old style", message="Stored", data={}),
            Notification(
                client_id=user.client_id,
                type="low_balance",
                title="Renamed since",
                message="Kept",
                data={"text": "low_balance", "params": {"level": "1"}},
            ),
            Notification(
                client_id=user.client_id,
                type="low_balance",
                title="Not a number",
                message="Also kept",
                data={"text": "low_balance", "params": {"balance": "n/a", "threshold": "100"}},
            ),
        ]
    )
    db.session.get(User, user.id).language = "sw"
    db.session.commit()
    body = login(user).get("/notifications/").get_data(as_text=True)
    assert "Old style" in body and "Stored" in body and "Renamed since" in body and "Kept" in body
    assert "Not a number" in body and "Also kept" in body


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
    low_balance(tenant.id)
    reply(tenant.id, "Wanjiku")
    db.session.commit()
    assert email_notifications() == 1
    assert email_notifications() == 0  # claimed: never twice
    ((recipients, content),) = smtp_server.messages
    assert recipients == [user.email] and "Subject: Low balance" in content


def test_no_mail_server_means_no_email_work(user):
    low_balance(user.client_id)
    db.session.commit()
    assert email_notifications() == 0
    assert db.session.scalar(sa.select(Notification.emailed_at)) is None


def _parsed(content: str) -> tuple[str, str]:
    mail = email.message_from_string(content, policy=email.policy.default)
    return mail["Subject"], mail.get_content()


def test_each_recipient_is_emailed_in_their_own_language(smtp_server, app, user, tenant):
    db.session.get(User, user.id).preferences = {"email_notifications": ["low_balance"]}
    swahili = teammate(tenant, "sw", ["low_balance"])
    low_balance(tenant.id, "1234.5")
    db.session.commit()
    assert email_notifications() == 2
    mails = {recipients[0]: _parsed(content) for recipients, content in smtp_server.messages}
    base = app.config["BASE_URL"]

    subject, body = mails[user.email]
    assert subject == "Low balance"
    assert f"Hello {user.name}," in body
    assert "Your balance is KSh 1,234.50, below your alert level of KSh 100.00. Top up to keep sending." in body
    assert f"Open it in Bulkapp: {base}/wallet" in body and f"{base}/settings/profile" in body

    subject, body = mails[swahili.email]
    assert subject == "Salio la chini"
    assert "Habari Mwenzake sw," in body
    assert "Salio lako ni KSh 1,234.50, chini ya kiwango chako cha tahadhari cha KSh 100.00." in body
    assert f"Ufungue kwenye Bulkapp: {base}/wallet" in body and "“Salio la chini”" in body
    assert "balance" not in body.lower()
