"""API authentication, JSON errors everywhere under /api/, and per-key rate limits."""

from __future__ import annotations

import pytest

from bulkapp.extensions import db
from bulkapp.models import Client
from bulkapp.services.accounts.api_key_settings import revoke_api_key, rotate_api_key
from bulkapp.services.messaging.compose import SendError, send_message
from tests.api.conftest import Api, assert_error


def test_bearer_and_x_api_key_both_work(api, client, tenant):
    assert api.get("/balance").status_code == 200
    response = client.get("/api/v1/balance", headers={"X-API-Key": tenant.test_api_key})
    assert response.status_code == 200 and response.get_json()["currency"] == "KES"
    assert "Set-Cookie" not in response.headers  # a machine endpoint: no session


@pytest.mark.parametrize(
    "headers, code",
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer "}, "missing_api_key"),
        ({"Authorization": "Bearer bk_test_not-a-real-key"}, "invalid_api_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing_api_key"),
        ({"X-API-Key": "x" * 5000}, "invalid_api_key"),
    ],
)
def test_missing_or_unknown_keys_get_401_json(client, tenant, headers, code):
    assert_error(client.get("/api/v1/balance", headers=headers), 401, code)


def test_a_signed_in_browser_session_is_not_an_api_key(login, tenant):
    browser = login(tenant.test_user)
    assert_error(browser.get("/api/v1/balance"), 401, "missing_api_key")


def test_revoked_and_rotated_keys_stop_working_at_once(api, tenant):
    old_key = tenant.test_api_key
    new_key = rotate_api_key(tenant.id, old_key[:12])
    db.session.commit()
    assert_error(api.get("/balance"), 401, "invalid_api_key")
    api.key = new_key
    assert api.get("/balance").status_code == 200
    revoke_api_key(tenant.id, new_key[:12])
    db.session.commit()
    assert_error(api.get("/balance"), 401, "invalid_api_key")


def test_last_used_time_is_recorded(api, tenant):
    assert tenant.api_key_last_used_at is None
    api.get("/balance")
    db.session.expire_all()
    assert db.session.get(Client, tenant.id).api_key_last_used_at is not None


def test_a_suspended_account_gets_403_and_cannot_send(api, tenant):
    db.session.get(Client, tenant.id).status = False
    db.session.commit()
    assert_error(api.get("/balance"), 403, "account_suspended")
    assert_error(api.post("/messages", json={"to": "0712345678", "body": "Hi"}), 403, "account_suspended")
    with pytest.raises(SendError) as caught:  # the send path refuses too, whatever calls it
        send_message(tenant.id, to="0712345678", body="Hi")
    assert caught.value.code == "account_suspended"
    db.session.rollback()
    db.session.get(Client, tenant.id).status = True
    db.session.commit()
    assert api.get("/balance").status_code == 200


def test_unknown_paths_and_methods_answer_json(api):
    assert_error(api.get("/nothing-here"), 404, "not_found")
    assert_error(api.get("/messages/abc"), 404)
    assert_error(api.request("DELETE", "/balance"), 405, "method_not_allowed")
    assert_error(api.get("/messages/99999999999999999999999"), 404)
    assert_error(api.get("/messages/2147483648"), 404, "not_found")  # past INTEGER: no row, no database error


def test_oversize_body_is_413_json(api):
    assert_error(api.post("/quote", data="x" * (1024 * 1024 + 10), content_type="application/json"), 413)


def test_rate_limit_is_per_key_with_retry_after(app, api, other_api):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    try:
        for _ in range(3):
            assert api.get("/balance").status_code == 200
        limited = api.get("/balance")
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["Retry-After"]) > 0
        assert other_api.get("/balance").status_code == 200  # another key has its own budget
    finally:
        app.config["API_RATE_LIMIT"] = "120 per minute"


def test_the_api_needs_no_csrf_token(client, tenant):
    response = Api(client, tenant.test_api_key).post("/quote", json={"body": "Hi", "to": ["0712345678"]})
    assert response.status_code == 200


def test_unknown_keys_are_throttled_per_address_with_retry_after(app, client, tenant):
    app.config["API_AUTH_FAILURE_RATE_LIMIT"] = "5 per minute"
    try:
        for i in range(5):  # a different random key each time: the per-key limit alone never stops this
            response = client.get("/api/v1/balance", headers={"Authorization": f"Bearer bk_test_guess{i}"})
            assert_error(response, 401, "invalid_api_key")
        limited = client.get("/api/v1/balance", headers={"Authorization": "Bearer bk_test_guess-again"})
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["Retry-After"]) > 0
        # the right key from that address waits too (else guessing would still pay off) ...
        assert_error(Api(client, tenant.test_api_key).get("/balance"), 429, "rate_limited")
        # ... while other addresses are not affected
        other = client.get(
            "/api/v1/balance", headers={"X-API-Key": tenant.test_api_key}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
        )
        assert other.status_code == 200
    finally:
        app.config["API_AUTH_FAILURE_RATE_LIMIT"] = "20 per minute"
