"""Fixtures for the REST API tests: ``api`` (tenant A's key) and ``other_api`` (tenant B's key)."""

from __future__ import annotations

import pytest


class Api:
    """The test client speaking to /api/v1 with one API key, as a script would (no cookies, no CSRF token)."""

    def __init__(self, client, key: str | None) -> None:
        self.client = client
        self.key = key

    def headers(self, extra: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, headers: dict | None = None, **kwargs):
        return self.client.open("/api/v1" + path, method=method, headers=self.headers(headers), csrf=False, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs):
        return self.request("PUT", path, **kwargs)


@pytest.fixture
def api(client, tenant):
    return Api(client, tenant.test_api_key)


@pytest.fixture
def other_api(app, other_tenant):
    return Api(app.test_client(), other_tenant.test_api_key)


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response is the documented JSON error with this status (and code)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)[:200]
    error = response.get_json()["error"]
    assert set(error) >= {"code", "message"} and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error
