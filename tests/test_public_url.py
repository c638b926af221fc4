"""One place decides the public base URL: BASE_URL when set (required in production); in development without it,
the address the app is served on, remembered from the first request so background jobs make the same links."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bulkapp import create_app
from bulkapp.config import Config
from bulkapp.extensions import db
from bulkapp.models import ShortLink
from bulkapp.public_url import DEFAULT_BASE_URL, public_base_url, public_url
from bulkapp.services.messaging.compose import send_message
from tests.conftest import test_settings


@pytest.fixture
def served():
    """An app of its own with BASE_URL unset, as `flask run` in development without the Makefile."""
    return create_app(test_settings(BASE_URL=None, SQLITE_BEGIN_IMMEDIATE=False))


def test_base_url_wins_when_set(app):
    with app.test_request_context(base_url="http://10.0.0.5:5101"):
        assert public_base_url() == "http://localhost"
    with app.app_context():
        assert public_url("/x/abcd") == "http://localhost/x/abcd"


def test_unset_it_follows_the_first_request_and_background_work_uses_the_same(served):
    with served.app_context():
        assert public_base_url() == DEFAULT_BASE_URL  # nothing served yet
    with served.test_request_context(base_url="http://127.0.0.1:5101/"):
        assert public_base_url() == "http://127.0.0.1:5101"
    with served.test_request_context(base_url="http://localhost:5101/"):
        assert public_base_url() == "http://127.0.0.1:5101"  # one value for the process, whatever the name
    with served.app_context():  # a job, outside any request
        assert public_base_url() == "http://127.0.0.1:5101"
        assert public_url("x/abcd") == "http://127.0.0.1:5101/x/abcd"


def test_pages_and_links_follow_the_served_port(served, tenant):
    db.session.commit()  # the test body's transaction ends before the served app writes
    client = served.test_client()
    page = client.get("/api/v1/openapi.json", base_url="http://127.0.0.1:5101")
    assert page.status_code == 200
    assert page.get_json()["servers"][0]["url"] == "http://127.0.0.1:5101/api/v1"
    with served.app_context():  # a send made by a background job after that request
        message = send_message(tenant.id, to="0712345678", body="Karibu", channel="sms")
        db.session.commit()
        link = db.session.scalar(sa.select(ShortLink).where(ShortLink.message_id == message.id))
        assert message.body.endswith(f"\nReply: http://127.0.0.1:5101/x/{link.code}")
        assert link.original_url == f"http://127.0.0.1:5101/x/{link.code}"
        db.session.remove()


def test_production_refuses_to_start_without_base_url(monkeypatch):
    for name, value in {
        "BULKAPP_ENV": "production",
        "SECRET_KEY": "s",
        "FERNET_KEYS": test_settings()["FERNET_KEYS"],
        "DATABASE_URL": "postgresql://db/x",
        "MPESA_CALLBACK_TOKEN": "t",
        "MPESA_ENV": "sandbox",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="BASE_URL"):
        Config()
    monkeypatch.setenv("BASE_URL", "https://sms.example.co.ke/")
    assert Config().BASE_URL == "https://sms.example.co.ke"
