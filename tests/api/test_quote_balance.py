"""GET /balance and POST /quote: exact money strings, and a quote equal to what sending charges."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bulkapp.extensions import db
from bulkapp.models import Client, Template
from tests.api.conftest import assert_error


def test_balance_answers_money_as_strings(api, tenant):
    client = db.session.get(Client, tenant.id)
    client.price_per_unit = Decimal("0.75")
    db.session.commit()
    body = api.get("/balance").get_json()
    assert body == {
        "balance": "100.00",
        "currency": "KES",
        "price_per_unit": "0.75",
        "units_available": 133,
        "account_number": tenant.account_number,
    }


def test_quote_lists_invalid_recipients_and_counts_each_number_once(api):
    response = api.post(
        "/quote", json={"body": "Hello", "to": ["0712345678", "+254 712 345 678", "12", 5, "0112345678"]}
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["recipients"] == 2 and body["duplicates"] == 1
    assert [i["to"] for i in body["invalid"]] == ["12", "5"]
    assert all(i["reason"] for i in body["invalid"])
    assert body["encoding"] == "GSM-7" and body["segments"] == 1
    assert body["units"] == 2 and body["cost"] == "1.60"


def test_the_reply_link_is_quoted_unless_turned_off(api):
    body = "x" * 150  # fits one segment alone, not with the reply link
    with_link = api.post("/quote", json={"body": body, "to": ["0712345678"]}).get_json()
    without = api.post("/quote", json={"body": body, "to": ["0712345678"], "append_reply_link": False}).get_json()
    assert with_link["segments"] == 2 and with_link["reply_link"] is True and with_link["cost"] == "1.60"
    assert without["segments"] == 1 and without["reply_link"] is False and without["cost"] == "0.80"
    assert with_link["characters"] == without["characters"] + len("\nReply: http://localhost/x/XXXX")


def test_the_quote_is_what_sending_charges(api):
    text = "Habari 😀 " * 12  # UCS-2, several segments
    quote = api.post("/quote", json={"body": text, "to": ["0712345678"]}).get_json()
    assert quote["encoding"] == "UCS-2"
    sent = api.post("/messages", json={"to": "0712345678", "body": text})
    assert sent.status_code == 202
    assert sent.get_json()["cost"] == quote["cost"] and sent.get_json()["segments"] == quote["segments"]
    assert api.get("/balance").get_json()["balance"] == str(Decimal("100.00") - Decimal(quote["cost"]))


def test_quote_a_template_with_variables(api, tenant):
    template = Template(client_id=tenant.id, name="Hi", content="Hi {{name}}, order {{order}}", channel="sms")
    db.session.add(template)
    db.session.commit()
    body = api.post(
        "/quote", json={"template_id": template.id, "variables": {"name": "Amina"}, "to": ["0712345678"]}
    ).get_json()
    assert body["missing_variables"] == ["order"] and body["recipients"] == 1


def test_quote_of_another_tenants_template_is_404(api, other_tenant):
    template = Template(client_id=other_tenant.id, name="Theirs", content="Secret", channel="sms")
    db.session.add(template)
    db.session.commit()
    assert_error(api.post("/quote", json={"template_id": template.id, "to": []}), 404, "not_found")


@pytest.mark.parametrize(
    "payload, status, code",
    [
        ({"body": "   ", "to": ["0712345678"]}, 422, "empty_body"),
        ({"to": ["0712345678"]}, 422, "empty_body"),
        ({"body": "Hi", "to": "0712345678", "channel": "fax"}, 422, "invalid_channel"),
        ({"body": "Hi", "to": {"a": 1}}, 422, "invalid_to"),
        ({"body": 5, "to": []}, 422, "invalid_body"),
        ({"body": "Hi", "append_reply_link": "no"}, 422, "invalid_append_reply_link"),
        ({"body": "x" * 1700, "to": []}, 422, "message_too_long"),
        ({"body": "Hi", "to": ["0712345678"] * 10_001}, 422, "invalid_to"),
    ],
)
def test_quote_rejects_bad_input(api, payload, status, code):
    assert_error(api.post("/quote", json=payload), status, code)


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', ""])
def test_malformed_json_is_400(api, raw):
    assert_error(api.post("/quote", data=raw, content_type="application/json"), 400, "malformed_json")


def test_whatsapp_and_email_quotes_carry_no_reply_link(api):
    body = api.post("/quote", json={"channel": "email", "body": "Hi", "to": ["a@example.com", "nope"]}).get_json()
    assert body["reply_link"] is False and body["recipients"] == 1 and body["segments"] == 1
    assert body["invalid"][0]["to"] == "nope"
