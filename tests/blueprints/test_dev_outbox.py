"""The development outbox (issue 15, item 5): without MAIL_HOST in development, account mail is kept and shown at
/dev/outbox (and logged); anywhere else the page does not exist, and with MAIL_HOST mail goes to the SMTP server."""

import email
import email.policy

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import DevOutboxMail
from bulkapp.services.accounts.outbox import deliver
from tests.blueprints.test_notifications import smtp_server  # noqa: F401, F811 - the local SMTP server fixture


def test_account_mail_is_kept_and_shown_in_development(app, client, user, caplog):
    assert app.config["ENV_NAME"] == "development" and not app.config.get("MAIL_HOST")
    client.post("/password/forgot", data={"email": user.email})
    page = client.get("/dev/outbox")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Reset your Bulkapp password" in text and user.email in text
    assert '<a href="http://localhost/password/reset/' in text  # the link can be followed
    assert "Reset your Bulkapp password" in caplog.text  # and logged, as before


def test_the_outbox_is_404_outside_development_or_with_a_mail_server(app, client, user):
    for setting, value in (("ENV_NAME", "production"), ("ENV_NAME", "staging"), ("MAIL_HOST", "127.0.0.1")):
        old = app.config.get(setting)
        app.config[setting] = value
        try:
            assert client.get("/dev/outbox").status_code == 404
        finally:
            app.config[setting] = old


def test_outside_development_mail_without_a_server_is_only_logged(work_app, caplog):
    work_app.config["ENV_NAME"] = "production"
    try:
        assert deliver("t:1", "a@b.co", "Hello", "Body") is True
    finally:
        work_app.config["ENV_NAME"] = "development"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DevOutboxMail)) == 0
    assert "To: a@b.co" in caplog.text


def test_with_a_mail_server_the_reset_email_goes_by_smtp_and_not_to_the_outbox(smtp_server, client, user):  # noqa: F811
    assert client.post("/password/forgot", data={"email": user.email}).status_code == 200
    ((recipients, content),) = smtp_server.messages
    assert recipients == [user.email] and "Subject: Reset your Bulkapp password" in content
    assert "/password/reset/" in email.message_from_string(content, policy=email.policy.default).get_content()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DevOutboxMail)) == 0
    assert client.get("/dev/outbox").status_code == 404


def test_the_outbox_keeps_only_the_newest_mails(monkeypatch):
    from bulkapp.services.accounts import outbox

    monkeypatch.setattr(outbox, "KEEP", 3)
    for number in range(5):
        assert deliver(f"t:{number}", "a@b.co", f"Mail {number}", "Body") is True
    assert [mail.subject for mail in outbox.recent()] == ["Mail 4", "Mail 3", "Mail 2"]
