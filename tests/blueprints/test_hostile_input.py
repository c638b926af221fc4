"""Input no database column can hold gets a clear answer, never a server error, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Contact
from tests.test_tenant_isolation import _objects_of


def test_ids_beyond_an_integer_column_are_simply_not_found(client, login, user):
    login(user)
    for path in ("/contacts/2147483648/edit", "/contacts/99999999999999999999/row", "/inbox/2147483648"):
        response = client.get(path)
        assert response.status_code == 404, path
    assert client.get("/contacts/2147483647/edit").status_code == 404  # the largest id that could exist


def test_a_nul_character_in_a_form_is_refused_and_nothing_is_saved(client, login, user):
    login(user)
    response = client.post("/contacts/", data={"new-name": "Wan\x00jiru", "new-contact": "0712345678"})
    assert response.status_code == 400
    assert "cannot contain" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0


def test_a_nul_character_in_the_query_string_is_refused(client, login, user):
    login(user)
    response = client.get("/contacts/?q=a%00b")
    assert response.status_code == 400
    assert client.get("/contacts/?q=ab").status_code == 200


HX = {"HX-Request": "true"}
BIG = "99999999999999999999"  # beyond BIGINT
BIGINT_ONLY = "999999999999999999"  # fits BIGINT, not INTEGER: PostgreSQL refused it with a 500


@pytest.mark.parametrize(
    "path",
    [
        f"/contacts/?after={BIG}",
        f"/contacts/?after={BIGINT_ONLY}",
        "/contacts/?after=²",
        "/contacts/?before=-1",
        f"/notifications/?before={BIGINT_ONLY}",
        "/notifications/?before=²",
        f"/settings/opt-outs?before={BIGINT_ONLY}",
        f"/settings/webhooks/deliveries?before={BIGINT_ONLY}",
        "/inbox/?cursor=1_999999999999999999",
        f"/inbox/?cursor={BIGINT_ONLY}_1&active={BIGINT_ONLY}",
        "/messages/?before=1_999999999999999999",
        f"/messages/?before={BIG}_{BIG}",
        f"/wallet/?cursor={BIGINT_ONLY}",
        "/wallet/?cursor=²",
        f"/dashboard?range={BIG}",
    ],
)
def test_out_of_range_and_unicode_numbers_in_a_query_show_the_first_page(client, login, user, path):
    login(user)
    for headers in (None, HX):
        assert client.get(path, headers=headers).status_code == 200, path


def test_numbers_beyond_a_column_in_campaign_pages_are_ignored(client, login, tenant, user):
    ids = _objects_of(tenant)
    login(user)
    for after in ("²", BIGINT_ONLY, BIG, "9" * 5000):
        assert client.get(f"/campaigns/{ids['campaign_id']}?after={after}").status_code == 200, after
        assert client.get(f"/campaigns/{ids['campaign_id']}/recipients?after={after}", headers=HX).status_code == 200


@pytest.mark.parametrize("value", ["²", BIGINT_ONLY, BIG, "-1"])
def test_bulk_delete_with_impossible_ids_deletes_nothing(client, login, tenant, user, value):
    ids = _objects_of(tenant)
    login(user)
    response = client.post("/contacts/bulk-delete", data={"ids": [value, str(ids["contact_id"] + 10)]}, headers=HX)
    assert response.status_code == 200
    assert db.session.get(Contact, ids["contact_id"]) is not None


@pytest.mark.parametrize("value", ["²", BIGINT_ONLY, BIG])
def test_impossible_template_and_contact_ids_in_forms_are_form_errors(client, login, tenant, user, value):
    ids = _objects_of(tenant)
    login(user)
    message = {"to": "0712345678", "channel": "sms", "body": "Hi", "template_id": value}
    for path in ("/messages/quote", "/messages/"):
        assert client.post(path, data=message, headers=HX).status_code < 500, path
    campaign = {"name": "X", "channel": "sms", "message": "Hi", "template_id": value, "contact_ids": [value]}
    assert client.post("/campaigns/quote", data=campaign, headers=HX).status_code < 500
    assert client.post("/campaigns/quote", data={**campaign, "csv_rows": value}, headers=HX).status_code < 500
    assert client.post("/campaigns/", data=campaign, headers=HX).status_code < 500
    conversation = ids["conversation_id"]
    reply = {"body": "Hi", "template_id": value}
    assert client.post(f"/inbox/{conversation}/quote", data=reply, headers=HX).status_code == 200
    assert client.post(f"/inbox/{conversation}/reply", data=reply, headers=HX).status_code < 500


@pytest.mark.parametrize(
    "query", ["date_from=0001-01-01", "date_to=9999-12-31", "date_from=2000-01-01&date_to=2100-12-31"]
)
def test_wallet_dates_at_the_ends_of_the_calendar(client, login, user, query):
    login(user)
    page = client.get(f"/wallet/?{query}")
    assert page.status_code == 200
    export = client.get(f"/wallet/history.csv?{query}")
    if "0001" in query or "9999" in query:
        assert "between the years 2000 and 2100" in page.get_data(as_text=True)
        assert export.status_code == 400
    else:
        assert export.status_code == 200 and export.mimetype == "text/csv"


def test_a_campaign_scheduled_at_the_end_of_the_calendar_is_a_form_error(client, login, tenant, user):
    ids = _objects_of(tenant)
    login(user)
    for when in ("0001-01-01T00:00", "9999-12-31T23:59"):
        data = {"name": "X", "channel": "sms", "message": "Hi", "numbers": "0712345678", "scheduled_at": when}
        response = client.post(f"/campaigns/{ids['campaign_id']}", data={**data, "action": "schedule"}, headers=HX)
        assert response.status_code == 422, when
        assert "between the years 2000 and 2100" in response.get_data(as_text=True)


def test_plain_requests_for_partials_open_the_full_page(client, login, tenant, user):
    ids = _objects_of(tenant)
    login(user)
    contact, conversation = ids["contact_id"], ids["conversation_id"]
    edit = client.get(f"/contacts/{contact}/edit")
    assert edit.status_code == 302 and edit.location.endswith(f"/contacts/{contact}/details/edit")
    assert client.get(edit.location).status_code == 200
    row = client.get(f"/contacts/{contact}/row")
    assert row.status_code == 302 and row.location.endswith(f"/contacts/{contact}")
    failed = client.post(f"/contacts/{contact}", data={f"edit-{contact}-contact": "not a number"})
    assert failed.status_code == 302 and client.get(failed.location).status_code == 200
    messages = client.get(f"/inbox/{conversation}/messages?after=0")
    assert messages.status_code == 302 and messages.location.endswith(f"/inbox/{conversation}")
    assert client.get(f"/contacts/{contact}/edit", headers=HX).status_code == 200  # HTMX still gets the row


def test_plain_requests_for_polled_fragments_open_their_page(client, login, tenant, user):
    ids = _objects_of(tenant)
    login(user)
    campaign, upload = ids["campaign_id"], ids["import_id"]
    for path, page in (
        (f"/campaigns/{campaign}/progress", f"/campaigns/{campaign}"),
        (f"/campaigns/{campaign}/recipients?status=failed", f"/campaigns/{campaign}?status=failed"),
        (f"/contacts/import/{upload}/progress", f"/contacts/import/{upload}"),  # was a 500 while mapping
        ("/notifications/bell", "/notifications/"),
        ("/notifications/latest", "/notifications/"),
    ):
        response = client.get(path)
        assert response.status_code == 302 and response.location.endswith(page), path
        assert client.get(path, headers=HX).status_code == 200, path
