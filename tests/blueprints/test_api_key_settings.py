"""Settings > API: the key is shown once, stored hashed; rotate and revoke stop the old key at once; double
submits change nothing; authentication by hash, with last-used time written at most once a minute."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from flask import Flask

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Client
from bulkapp.services.accounts.api_key_settings import (
    ApiKeyError,
    authenticate_api_key,
    create_api_key,
    presented_key,
    revoke_api_key,
    rotate_api_key,
)

HX = {"HX-Request": "true"}
KEY = re.compile(r'value="(bk_(?:test|live)_[A-Za-z0-9_-]{43})"')


def saved(tenant) -> Client:
    db.session.expire_all()
    return db.session.get(Client, tenant.id)


def shown_key(body: str) -> str | None:
    match = KEY.search(body)
    return match.group(1) if match else None


def test_the_settings_overview_links_to_the_api_key(login, user):
    assert 'href="/settings/api"' in login(user).get("/settings/").get_data(as_text=True)


def test_the_page_shows_the_prefix_and_never_the_key_or_its_hash(login, user, tenant):
    page = login(user).get("/settings/api").get_data(as_text=True)
    row = saved(tenant)
    assert row.api_key_prefix in page and "Last used" in page and "Never" in page
    assert tenant.test_api_key not in page and row.api_key not in page
    assert shown_key(page) is None
    assert 'href="/api/v1/docs"' in page  # the REST API documentation


def test_rotate_shows_the_new_key_once_and_the_old_key_stops_working(login, user, tenant):
    old_key = tenant.test_api_key
    assert authenticate_api_key(old_key).id == tenant.id
    client = login(user)
    response = client.post("/settings/api/rotate", data={"prefix": saved(tenant).api_key_prefix}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="api-key"')
    assert response.headers["Cache-Control"] == "no-store"
    new_key = shown_key(body)
    assert new_key and new_key != old_key and new_key.startswith("bk_test_")
    assert "cannot be shown again" in body
    row = saved(tenant)
    assert row.api_key == hashlib.sha256(new_key.encode()).hexdigest() and row.api_key_prefix == new_key[:12]
    assert authenticate_api_key(old_key) is None
    assert authenticate_api_key(new_key).id == tenant.id
    page = client.get("/settings/api").get_data(as_text=True)
    assert new_key not in page and shown_key(page) is None and new_key[:12] in page


def test_a_double_submitted_rotate_changes_nothing_the_second_time(login, user, tenant):
    client = login(user)
    prefix = saved(tenant).api_key_prefix
    first = shown_key(client.post("/settings/api/rotate", data={"prefix": prefix}, headers=HX).get_data(as_text=True))
    second = client.post("/settings/api/rotate", data={"prefix": prefix}, headers=HX)
    assert second.status_code == 409 and shown_key(second.get_data(as_text=True)) is None
    assert "nothing was rotated" in second.get_data(as_text=True)
    assert authenticate_api_key(first).id == tenant.id


def test_revoke_stops_the_key_and_create_makes_a_new_one(login, user, tenant):
    client = login(user)
    prefix = saved(tenant).api_key_prefix
    response = client.post("/settings/api/revoke", data={"prefix": prefix}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Key revoked" in body and "Create key" in body
    assert authenticate_api_key(tenant.test_api_key) is None
    assert saved(tenant).api_key_revoked_at is not None
    assert "was revoked on" in client.get("/settings/api").get_data(as_text=True)
    again = client.post("/settings/api/revoke", data={"prefix": prefix}, headers=HX)
    assert again.status_code == 409 and "already revoked" in again.get_data(as_text=True)

    created = client.post("/settings/api/create", headers=HX)
    key = shown_key(created.get_data(as_text=True))
    assert created.status_code == 200 and key and authenticate_api_key(key).id == tenant.id
    assert saved(tenant).api_key_revoked_at is None
    double = client.post("/settings/api/create", headers=HX)  # a double submit of "Create key"
    assert double.status_code == 409 and shown_key(double.get_data(as_text=True)) is None
    assert authenticate_api_key(key).id == tenant.id


def test_create_is_refused_while_a_key_is_active(login, user, tenant):
    response = login(user).post("/settings/api/create", headers=HX)
    assert response.status_code == 409 and "Rotate it" in response.get_data(as_text=True)
    assert authenticate_api_key(tenant.test_api_key).id == tenant.id


@pytest.mark.parametrize("path", ["/settings/api/create", "/settings/api/rotate", "/settings/api/revoke"])
def test_key_changes_need_the_csrf_token(login, user, tenant, path):
    before = saved(tenant).api_key
    response = login(user).post(path, data={"prefix": saved(tenant).api_key_prefix}, csrf=False)
    assert response.status_code == 400
    assert saved(tenant).api_key == before and saved(tenant).api_key_revoked_at is None


def test_a_rotate_naming_another_key_is_refused(login, user, tenant, other_tenant):
    response = login(user).post("/settings/api/rotate", data={"prefix": other_tenant.api_key_prefix}, headers=HX)
    assert response.status_code == 409
    assert authenticate_api_key(tenant.test_api_key).id == tenant.id
    assert authenticate_api_key(other_tenant.test_api_key).id == other_tenant.id


def test_a_plain_form_post_renders_the_whole_page_with_the_key(login, user, tenant):
    response = login(user).post("/settings/api/rotate", data={"prefix": saved(tenant).api_key_prefix})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in body and shown_key(body)


# ------------------------------------------------------------------------------------------ the service


def test_authenticate_refuses_unknown_malformed_and_oversize_keys(tenant):
    key = tenant.test_api_key
    for bad in (None, "", "bk_test_nope", key + "x", key[:-1], key.upper(), "x" * 10_000, " " + key, "Bearer " + key):
        assert authenticate_api_key(bad) is None, bad
    assert authenticate_api_key(key).id == tenant.id


def test_a_suspended_tenant_cannot_use_its_key(tenant):
    saved(tenant).status = False
    db.session.commit()
    assert authenticate_api_key(tenant.test_api_key) is None


def test_last_used_is_written_at_most_once_a_minute(tenant):
    now = utcnow()
    authenticate_api_key(tenant.test_api_key, now=now)
    db.session.commit()
    assert saved(tenant).api_key_last_used_at == now
    authenticate_api_key(tenant.test_api_key, now=now + timedelta(seconds=59))
    db.session.commit()
    assert saved(tenant).api_key_last_used_at == now
    later = now + timedelta(seconds=61)
    assert authenticate_api_key(tenant.test_api_key, now=later).api_key_last_used_at == later
    db.session.commit()
    assert saved(tenant).api_key_last_used_at == later


def test_the_service_guards_its_own_transitions(tenant):
    prefix = saved(tenant).api_key_prefix
    with pytest.raises(ApiKeyError):
        create_api_key(tenant.id)
    with pytest.raises(ApiKeyError):
        rotate_api_key(tenant.id, "bk_test_XXXX")
    with pytest.raises(ApiKeyError):
        rotate_api_key(tenant.id, None)
    revoke_api_key(tenant.id, prefix)
    with pytest.raises(ApiKeyError):
        rotate_api_key(tenant.id, prefix)  # nothing active to rotate
    key = create_api_key(tenant.id)
    assert authenticate_api_key(key).id == tenant.id
    assert saved(tenant).api_key_last_used_at is not None  # that call just used it
    live = saved(tenant)
    live.is_test_mode = False
    db.session.commit()
    assert rotate_api_key(tenant.id, key[:12]).startswith("bk_live_")


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        ("Bearer bk_test_abc", None, "bk_test_abc"),
        ("bearer   bk_test_abc  ", None, "bk_test_abc"),
        (None, " bk_test_xyz ", "bk_test_xyz"),
        ("Basic dXNlcjpwYXNz", "bk_test_xyz", "bk_test_xyz"),
        ("Bearer ", None, None),
        (None, None, None),
    ],
)
def test_presented_key_reads_either_header(authorization, x_api_key, expected):
    assert presented_key(authorization, x_api_key) == expected


def test_the_docs_link_appears_once_the_docs_route_exists():
    from bulkapp.blueprints.settings.api import DOCS_PATH, _existing_path

    bare = Flask(__name__)
    with bare.test_request_context("/"):
        assert _existing_path(DOCS_PATH) is None
    bare.add_url_rule(DOCS_PATH, "docs", lambda: "docs")
    with bare.test_request_context("/"):
        assert _existing_path(DOCS_PATH) == DOCS_PATH
