"""GET/POST /contacts: E.164 numbers, duplicates 409, pages, tenant scoping, bad input."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Contact, Message
from tests.api.conftest import assert_error


def test_create_stores_e164_and_answers_201(api, tenant):
    response = api.post(
        "/contacts",
        json={"name": "Wanjiku", "contact": "+254 712 345 678", "department": "VIP", "fields": {"Order ID": 7}},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["contact"] == "+254712345678" and body["name"] == "Wanjiku" and body["department"] == "VIP"
    assert body["fields"] == {"order_id": "7"} and body["opted_out"] is False
    row = db.session.get(Contact, body["id"])
    assert row.client_id == tenant.id


@pytest.mark.parametrize("form", ["0712345678", "712345678", "254712345678", "+254 712 345 678"])
def test_a_duplicate_number_in_any_form_is_409(api, form):
    assert api.post("/contacts", json={"name": "A", "contact": "0712345678"}).status_code == 201
    assert_error(api.post("/contacts", json={"name": "B", "contact": form}), 409, "duplicate_contact")
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 1


def test_the_same_number_in_another_tenant_is_fine(api, other_api):
    assert api.post("/contacts", json={"contact": "0712345678"}).status_code == 201
    assert other_api.post("/contacts", json={"contact": "0712345678"}).status_code == 201
    assert len(other_api.get("/contacts").get_json()["data"]) == 1


@pytest.mark.parametrize(
    "payload, code",
    [
        ({"name": "No number"}, "invalid_contact"),
        ({"contact": "12"}, "invalid_contact"),
        ({"contact": 712345678}, "invalid_contact"),
        ({"contact": "0712345678", "name": "x" * 121}, "invalid_name"),
        ({"contact": "0712345678", "name": 5}, "invalid_name"),
        ({"contact": "0712345678", "department": "d" * 81}, "invalid_department"),
        ({"contact": "0712345678", "fields": {"a": {"b": 1}}}, "invalid_fields"),
        ({"contact": "0712345678", "fields": ["a"]}, "invalid_fields"),
    ],
)
def test_bad_contacts_are_422(api, payload, code):
    assert_error(api.post("/contacts", json=payload), 422, code)
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 0


def test_list_newest_first_in_pages_with_search(api):
    for i in range(5):
        api.post(
            "/contacts",
            json={"name": f"Person {i}", "contact": f"07123456{i:02d}", "department": "A" if i % 2 else "B"},
        )
    first = api.get("/contacts?limit=2").get_json()
    assert [c["name"] for c in first["data"]] == ["Person 4", "Person 3"] and first["next_cursor"]
    rest = api.get(f"/contacts?limit=10&cursor={first['next_cursor']}").get_json()
    assert [c["name"] for c in rest["data"]] == ["Person 2", "Person 1", "Person 0"] and rest["next_cursor"] is None
    assert [c["name"] for c in api.get("/contacts?department=A").get_json()["data"]] == ["Person 3", "Person 1"]
    assert [c["name"] for c in api.get("/contacts?q=Person%202").get_json()["data"]] == ["Person 2"]


@pytest.mark.parametrize(
    "query, code",
    [
        ("limit=0", "invalid_limit"),
        ("cursor=x", "invalid_cursor"),
        ("cursor=2147483648", "invalid_cursor"),
        ("q=" + "q" * 201, "invalid_q"),
    ],
)
def test_list_rejects_bad_parameters(api, query, code):
    assert_error(api.get(f"/contacts?{query}"), 422, code)


@pytest.mark.parametrize("query", ["department=%00", "q=a%00b"])
def test_nul_characters_in_parameters_are_422(api, query):
    assert_error(api.get(f"/contacts?{query}"), 422)


def test_nul_characters_in_a_body_are_422(api):
    assert_error(api.post("/contacts", json={"contact": "0712345678", "name": "A\u0000B"}), 422, "invalid_characters")
    assert_error(api.post("/messages", json={"to": "0712345678", "body": "x", "variables": {"a\u0000": 1}}), 422)


def test_lone_surrogates_in_a_body_are_422_and_nothing_is_kept(api):
    """``"a\\ud800b"`` is valid JSON but no database column (UTF-8) can hold it."""
    raw = '{"contact": "0712345678", "name": "a\\ud800b"}'
    assert_error(api.post("/contacts", data=raw, content_type="application/json"), 422, "invalid_characters")
    assert_error(api.post("/contacts", json={"contact": "0712345678", "fields": {"\ud800": "x"}}), 422)
    assert_error(api.post("/messages", json={"to": "0712345678", "body": "a\udfffb"}), 422, "invalid_characters")
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_json_is_400(api, depth):
    raw = '{"contact": "0712345678", "fields": ' + "[" * depth + "]" * depth + "}"
    assert_error(api.post("/contacts", data=raw, content_type="application/json"), 400, "malformed_json")


def test_numbers_beyond_a_column_in_the_query_are_422(api):
    for query in ("cursor=99999999999999999999", "cursor=²", "limit=" + "9" * 5000, "cursor=1_2"):
        assert_error(api.get(f"/contacts?{query}"), 422)
    assert_error(api.get("/messages?cursor=1_999999999999999999"), 422, "invalid_cursor")
