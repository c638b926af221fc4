"""POST /messages, GET /messages/<id>, GET /messages: sending, reading, filters, pages, and bad input."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Campaign, Message, WalletTransaction
from bulkapp.services.compliance.optouts import opt_out
from tests.api.conftest import assert_error
from tests.conftest import ledger_balance


def test_send_answers_202_with_the_documented_fields(api, tenant):
    response = api.post("/messages", json={"to": "0712 345 678", "body": "Your order is ready"})
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["to"] == "+254712345678" and body["channel"] == "sms" and body["segments"] == 1
    assert body["cost"] == "0.80" and body["status"] in {"pending", "sending", "sent", "delivered"}
    assert body["created_at"].endswith("Z") and isinstance(body["id"], int)
    assert "\nReply: http://localhost/x/" in body["body"]
    assert ledger_balance(tenant.id) == db.session.get(type(tenant), tenant.id).balance


def test_get_one_message_with_delivery_fields(api):
    sent = api.post("/messages", json={"to": "0712345678", "body": "Hi"}).get_json()
    got = api.get(f"/messages/{sent['id']}").get_json()
    for field in ("body", "direction", "provider", "provider_message_id", "error_message", "sent_at", "delivered_at"):
        assert field in got
    assert got["direction"] == "outbound" and got["id"] == sent["id"] and got["provider"] == "sandbox"


def test_another_tenants_message_is_404(api, other_api):
    sent = api.post("/messages", json={"to": "0712345678", "body": "Hi"}).get_json()
    assert_error(other_api.get(f"/messages/{sent['id']}"), 404, "not_found")
    assert other_api.get("/messages").get_json()["data"] == []


@pytest.mark.parametrize(
    "payload, status, code",
    [
        ({"body": "Hi"}, 422, "invalid_recipient"),
        ({"to": "12345", "body": "Hi"}, 422, "invalid_recipient"),
        ({"to": ["0712345678"], "body": "Hi"}, 422, "invalid_recipient"),
        ({"to": "0712345678", "body": "  "}, 422, "empty_body"),
        ({"to": "0712345678", "body": "Hi", "channel": "pigeon"}, 422, "invalid_channel"),
        ({"to": "0712345678", "body": "Hi", "template_id": "1"}, 422, "invalid_template_id"),
        ({"to": "0712345678", "body": "Hi", "template_id": 987654}, 404, "not_found"),
        ({"to": "0712345678", "body": "Hi", "variables": [1]}, 422, "invalid_variables"),
        ({"to": "0712345678", "body": "x" * 1601}, 422, "message_too_long"),
        ({"to": "0712345678", "body": "Hi {{name}}"}, 422, "missing_variables"),
    ],
)
def test_send_rejects_bad_input_and_charges_nothing(api, tenant, payload, status, code):
    assert_error(api.post("/messages", json=payload), status, code)
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0
    assert ledger_balance(tenant.id) == 100


def test_insufficient_balance_is_402(api, tenant):
    from bulkapp.services.billing import wallet

    wallet.debit(tenant.id, "99.50", reference="test:drain")
    db.session.commit()
    assert_error(api.post("/messages", json={"to": "0712345678", "body": "Hi"}), 402, "insufficient_balance")
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_an_opted_out_number_is_refused(api, tenant):
    opt_out(tenant.id, "+254712345678", source="keyword", keyword="STOP")
    db.session.commit()
    assert_error(api.post("/messages", json={"to": "0712345678", "body": "Hi"}), 422, "recipient_opted_out")
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0
    assert (
        db.session.scalar(sa.select(sa.func.count(WalletTransaction.id)).where(WalletTransaction.type == "deduction"))
        == 0
    )


def test_list_is_newest_first_with_cursor_pages_and_filters(api, tenant):
    ids = [api.post("/messages", json={"to": "0712345678", "body": f"n{i}"}).get_json()["id"] for i in range(5)]
    campaign = Campaign(client_id=tenant.id, name="C", message="m", channel="sms", recipients=[])
    db.session.add(campaign)
    db.session.flush()
    db.session.get(Message, ids[0]).campaign_id = campaign.id
    db.session.commit()
    first = api.get("/messages?limit=2").get_json()
    assert [m["id"] for m in first["data"]] == ids[::-1][:2] and first["next_cursor"]
    second = api.get(f"/messages?limit=2&cursor={first['next_cursor']}").get_json()
    third = api.get(f"/messages?limit=2&cursor={second['next_cursor']}").get_json()
    assert [m["id"] for m in second["data"] + third["data"]] == ids[::-1][2:]
    assert third["next_cursor"] is None
    assert [m["id"] for m in api.get(f"/messages?campaign_id={campaign.id}").get_json()["data"]] == [ids[0]]
    assert api.get("/messages?direction=inbound").get_json()["data"] == []
    assert len(api.get("/messages?direction=outbound&limit=100").get_json()["data"]) == 5


@pytest.mark.parametrize(
    "query, code",
    [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("direction=sideways", "invalid_direction"),
        ("status=lost", "invalid_status"),
        ("campaign_id=-1", "invalid_campaign_id"),
        ("cursor=garbage", "invalid_cursor"),
        ("cursor=99999999999999999999_1", "invalid_cursor"),
        ("cursor=1_2147483648", "invalid_cursor"),
    ],
)
def test_list_rejects_bad_parameters(api, query, code):
    assert_error(api.get(f"/messages?{query}"), 422, code)
