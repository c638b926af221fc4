"""HTMX conventions: fragments vs pages, 401 -> HX-Redirect, errors into #flash, never a 302 to HTMX."""

from bulkapp.extensions import db
from bulkapp.services.notifications.notify import notify

HX = {"HX-Request": "true"}


def test_fragment_for_htmx_and_full_page_otherwise(login, user):
    client = login(user)
    page = client.get("/dashboard")
    fragment = client.get("/dashboard", headers=HX)
    assert "<html" in page.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and body.lstrip().startswith('<section id="dashboard-stats"')
    assert "HX-Request" in fragment.headers["Vary"] and "HX-Request" in page.headers["Vary"]


def test_signed_out_htmx_request_gets_401_with_hx_redirect(client):
    response = client.get("/dashboard", headers=HX)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login"


def test_signed_out_page_request_redirects_to_login_with_next(client):
    response = client.get("/notifications/")
    assert response.status_code == 302 and "/login?next=" in response.location


def test_htmx_404_renders_an_alert_into_flash(login, user):
    client = login(user)
    response = client.post("/notifications/999999/read", headers=HX)
    assert response.status_code == 404
    assert response.headers["HX-Retarget"] == "#flash" and response.headers["HX-Reswap"] == "innerHTML"
    assert 'class="alert alert-error"' in response.get_data(as_text=True)


def test_mark_all_read_swaps_the_list_and_the_bell_out_of_band(login, user):
    notify(user.client_id, "low_balance", "low_balance", {"balance": "99.20", "threshold": "100.00"})
    notify(user.client_id, "inbound_message", "new_message", {"sender": "0712..."}, message="Hi", user_id=user.id)
    db.session.commit()
    client = login(user)
    assert 'aria-label="Notifications: 2 unread"' in client.get("/dashboard").get_data(as_text=True)
    response = client.post("/notifications/read-all", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="notification-list"')
    assert 'id="notification-bell"' in body and 'hx-swap-oob="true"' in body
    assert "Notifications: 0 unread" in body


def test_security_headers(client):
    response = client.get("/login")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_csrf_token_rides_on_hx_headers(login, user):
    page = login(user).get("/dashboard").get_data(as_text=True)
    assert 'hx-headers=\'{"X-CSRFToken": "' in page


def test_proxy_headers_are_trusted_only_when_configured():
    from bulkapp import create_app
    from tests.conftest import test_settings

    behind = create_app(test_settings(PROXY_HOPS=1, SESSION_COOKIE_SECURE=True))

    @behind.get("/_whoami")
    def whoami():
        from flask import request

        return {"addr": request.remote_addr, "scheme": request.scheme}

    headers = {"X-Forwarded-For": "41.90.1.2", "X-Forwarded-Proto": "https"}
    answer = behind.test_client().get("/_whoami", headers=headers)
    assert answer.json == {"addr": "41.90.1.2", "scheme": "https"}
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
