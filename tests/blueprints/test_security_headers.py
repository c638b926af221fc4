"""Signed-in pages are never cached; production over HTTPS sends HSTS (issue 12, item 10)."""

import pytest

from bulkapp import create_app
from tests.conftest import CSRFClient, test_settings


@pytest.mark.parametrize("path", ["/dashboard", "/settings/profile", "/wallet/", "/contacts/"])
def test_signed_in_pages_send_no_store(login, user, path):
    response = login(user).get(path)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_signed_out_pages_and_static_files_may_be_cached(login, client, user):
    assert "no-store" not in client.get("/login").headers.get("Cache-Control", "")
    signed_in = login(user)
    assert "no-store" not in signed_in.get("/static/css/app.css").headers.get("Cache-Control", "")


@pytest.fixture(scope="module")
def production_app():
    app = create_app(test_settings(ENV_NAME="production", SESSION_COOKIE_SECURE=False, PROXY_HOPS=1))
    app.test_client_class = CSRFClient
    return app


def test_production_sends_hsts_over_https(production_app):
    client = production_app.test_client()
    direct = client.get("/login", base_url="https://bulkapp.example")
    assert direct.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    behind_proxy = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" in behind_proxy.headers
    assert "Strict-Transport-Security" not in client.get("/login").headers  # plain HTTP: HSTS means nothing


def test_development_over_https_sends_no_hsts(app):
    assert "Strict-Transport-Security" not in app.test_client().get("/login", base_url="https://localhost").headers
