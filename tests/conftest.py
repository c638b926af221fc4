"""Shared fixtures: app, db, client, tenant, other_tenant, user, login, live_server.

The database is SQLite (a temporary file) unless TEST_DATABASE_URL names another one (PostgreSQL in CI).
With REQUIRE_SERVICES=1 a missing PostgreSQL, Redis or Chromium fails the run instead of skipping.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask.testing import FlaskClient

_TMP = Path(tempfile.mkdtemp(prefix="bulkapp-tests-"))
os.environ.setdefault("BULKAPP_INSTANCE_DIR", str(_TMP / "instance"))

from bulkapp import create_app  # noqa: E402
from bulkapp.extensions import db as _db  # noqa: E402
from bulkapp.extensions import limiter  # noqa: E402

PASSWORD = "correct-horse-battery"
TEST_FERNET_KEY = Fernet.generate_key().decode()
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
# Fixtures kept with their simulator: daraja, simulated_mpesa (M-Pesa top-ups, webhooks, wallet page).
pytest_plugins = ["tests.simulators.daraja"]


def require(condition: bool, reason: str) -> None:
    """Skip when a service is missing, or fail when the run requires every service (CI)."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def database_url() -> str:
    from bulkapp.config import normalise_database_url

    return normalise_database_url(os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{_TMP / 'test.db'}")


def test_settings(**extra) -> dict:
    settings = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url(),
        "SECRET_KEY": "test-secret",
        "FERNET_KEYS": TEST_FERNET_KEY,
        "JOBS_MODE": "inline",
        "RATELIMIT_STORAGE_URI": "memory://",
        "SERVER_NAME": None,
        "BASE_URL": "http://localhost",
        "LINK_CLICK_PUSH_SECONDS": 0,  # with Redis, each view's click reaches it before the request ends
        # The vendor simulators listen on loopback (as in development); tests of the production rules turn it off.
        "WEBHOOK_ALLOW_PRIVATE_URLS": True,
    }
    settings.update(extra)
    return settings


test_settings.__test__ = False  # a helper, not a test


class CSRFClient(FlaskClient):
    """A test client that sends the CSRF token a browser would, unless told ``csrf=False``."""

    def open(self, *args, csrf: bool = True, **kwargs):
        # End the test body's transaction first, as a finished request would: the request sees what the
        # test committed, and SQLite's write lock (BEGIN IMMEDIATE) is not held across the request.
        _db.session.commit()
        method = (kwargs.get("method") or "GET").upper()
        if csrf and method in {"POST", "PUT", "PATCH", "DELETE"}:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRFToken", self.csrf_token())
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        page = super().open("/login", follow_redirects=True).get_data(as_text=True)
        return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


@pytest.fixture(scope="session")
def app():
    """The app that serves requests (test client and live server)."""
    from bulkapp.models import Client  # noqa: F401 - registers every model

    application = create_app(test_settings())
    application.test_client_class = CSRFClient
    with application.app_context():
        _db.drop_all()
        _db.create_all()
    yield application


@pytest.fixture(scope="session")
def work_app(app):
    """A second instance of the same app for the test body's own database work.

    Flask reuses an already-pushed app context of the *same* app for requests, which would share ``g``
    (cached CSRF token, current user) and the DB session between the test and the requests it makes.
    A separate instance keeps every request as isolated as in production. Its SQLite transactions are
    plain (deferred) ones, so the test body's reads never hold the write lock that a request, a job
    thread or the live server needs; end the transaction (commit/rollback) before asserting on what
    concurrent work wrote, as a new request would.
    """
    return create_app(test_settings(SQLITE_BEGIN_IMMEDIATE=False))


@pytest.fixture(autouse=True)
def db(app, work_app):
    """A clean database for every test (rows deleted afterwards, ids restarted on PostgreSQL)."""
    ctx = work_app.app_context()
    ctx.push()
    limiter.reset()
    yield _db
    _db.session.remove()
    engine = _db.engine
    tables = [t.name for t in _db.metadata.sorted_tables]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            from bulkapp.models import AUDIT_TRIGGERS

            sqlite_triggers = [(name, ddl) for name, dialect, ddl in AUDIT_TRIGGERS if dialect == "sqlite"]
            for name, _ddl in sqlite_triggers:  # the audit log is append-only: lift its guard to empty it
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
            for table in reversed(_db.metadata.sorted_tables):
                conn.execute(table.delete())
            for _name, ddl in sqlite_triggers:
                conn.exec_driver_sql(ddl)
    ctx.pop()


@pytest.fixture
def client(app):
    return app.test_client()


def make_tenant(name: str, email: str, balance: str = "100.00"):
    from bulkapp.services.accounts.users import create_client, create_user

    tenant, api_key = create_client(name, sender_id=name[:10].upper(), balance=balance, price_per_unit="0.80")
    user = create_user(email, PASSWORD, name=f"{name} Owner", client_id=tenant.id)
    _db.session.commit()
    tenant.test_api_key = api_key
    tenant.test_user = user
    return tenant


@pytest.fixture
def tenant():
    return make_tenant("Tenant A", "owner@a.example")


@pytest.fixture
def other_tenant():
    return make_tenant("Tenant B", "owner@b.example")


@pytest.fixture
def user(tenant):
    return tenant.test_user


@pytest.fixture
def admin_user():
    from bulkapp.services.accounts.users import create_user

    admin = create_user("root@platform.example", PASSWORD, name="Root", admin=True)
    _db.session.commit()
    return admin


@pytest.fixture
def login(client):
    """``login(user)`` signs the test client in through the real login form."""

    def _login(user, password: str = PASSWORD):
        response = client.post("/login", data={"email": user.email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return _login


@pytest.fixture(scope="session")
def live_server(app):
    """The app served over real HTTP on loopback, for the browser tests."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def ledger_balance(client_id: int) -> Decimal:
    from bulkapp.services.billing.wallet import ledger_sum

    return ledger_sum(client_id)


__all__ = ["PASSWORD", "require", "make_tenant", "ledger_balance"]
