"""POST /campaigns and GET /campaigns/<id>: drafts, launches that charge once, schedules, and bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Campaign, Client, Contact, Message
from bulkapp.services.compliance import quiet_hours
from tests.api.conftest import assert_error
from tests.conftest import ledger_balance

NUMBERS = ["0712345601", "0712345602", "+254712345603"]


def _transactional(payload: dict) -> dict:
    return {"kind": "transactional", "channel": "sms", **payload}  # no sending-hours wait, no opt-out footer


def test_a_draft_is_created_and_read_back(api, tenant):
    response = api.post("/campaigns", json=_transactional({"name": "Draft", "body": "Hi", "to": NUMBERS}))
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "draft" and body["name"] == "Draft" and body["total_cost"] == "0.00"
    got = api.get(f"/campaigns/{body['id']}").get_json()
    assert got["id"] == body["id"] and got["status"] == "draft"
    assert set(got) >= {"id", "name", "status", "total_recipients", "sent_count", "delivered_count", "failed_count",
                        "total_cost", "scheduled_at", "sent_at"}  # fmt: skip
    assert db.session.get(Campaign, body["id"]).client_id == tenant.id


def test_send_true_launches_and_charges(api, tenant):
    response = api.post(
        "/campaigns",
        json=_transactional({"name": "Now", "body": "Hello", "to": [*NUMBERS, "12", NUMBERS[0]], "send": True}),
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["total_recipients"] == 3
    assert body["recipients"]["invalid"] == 1 and body["recipients"]["duplicates"] == 1
    got = api.get(f"/campaigns/{body['id']}").get_json()
    assert got["status"] in {"sending", "sent"}
    assert db.session.scalar(sa.select(sa.func.count(Message.id)).where(Message.campaign_id == body["id"])) == 3
    assert ledger_balance(tenant.id) == db.session.get(Client, tenant.id).balance < 100
    listed = api.get(f"/messages?campaign_id={body['id']}").get_json()["data"]
    assert len(listed) == 3


def test_a_department_audience(api, tenant):
    for i, number in enumerate(NUMBERS):
        api.post("/contacts", json={"name": f"P{i}", "contact": number, "department": "VIP" if i else "Staff"})
    body = api.post(
        "/campaigns", json=_transactional({"name": "VIP", "body": "Hi {{name}}", "department": "VIP", "send": True})
    ).get_json()
    assert body["total_recipients"] == 2


def test_scheduled_for_later(api):
    when = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    body = api.post(
        "/campaigns",
        json=_transactional(
            {"name": "Later", "body": "Hi", "to": NUMBERS, "send": True, "scheduled_at": when.isoformat()}
        ),
    ).get_json()
    assert body["status"] == "scheduled" and body["scheduled_at"].startswith(when.strftime("%Y-%m-%dT%H:%M"))
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_a_schedule_almost_5_years_ahead_is_accepted(api):
    when = (utcnow() + timedelta(days=5 * 365)).replace(microsecond=0)
    payload = {"name": "Far", "body": "Hi", "to": NUMBERS, "send": True, "scheduled_at": when.isoformat()}
    body = api.post("/campaigns", json=_transactional(payload)).get_json()
    assert body["status"] == "scheduled"


def test_insufficient_balance_is_402_and_leaves_nothing(api, tenant):
    from bulkapp.services.billing import wallet

    wallet.debit(tenant.id, "99.00", reference="test:drain")
    db.session.commit()
    assert_error(
        api.post("/campaigns", json=_transactional({"name": "Big", "body": "Hi", "to": NUMBERS, "send": True})),
        402,
        "insufficient_balance",
    )
    assert db.session.scalar(sa.select(sa.func.count(Campaign.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_insufficient_balance_is_402_whatever_the_start_time(api, tenant):
    """Issue 12 item 12: a scheduled send, and a promotional send deferred by quiet hours, are refused at once."""
    from bulkapp.services.billing import wallet

    wallet.debit(tenant.id, "99.00", reference="test:drain")
    client = db.session.get(Client, tenant.id)
    hour = utcnow().astimezone(quiet_hours.NAIROBI).hour
    start = hour + 1 if hour <= 21 else 1  # a one-hour window that is shut right now
    client.settings = {"promotional_hours": {"start": f"{start:02d}:00", "end": f"{start + 1:02d}:00"}}
    db.session.commit()
    later = (utcnow() + timedelta(days=1)).isoformat()
    scheduled = {"name": "Later", "body": "Hi", "to": NUMBERS, "send": True, "scheduled_at": later}
    assert_error(api.post("/campaigns", json=_transactional(scheduled)), 402, "insufficient_balance")
    at_night = {"name": "Night", "body": "Hi", "to": NUMBERS, "send": True, "kind": "promotional", "channel": "sms"}
    assert_error(api.post("/campaigns", json=at_night), 402, "insufficient_balance")
    assert db.session.scalar(sa.select(sa.func.count(Campaign.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


@pytest.mark.parametrize(
    "payload, status, code",
    [
        ({"body": "Hi", "to": NUMBERS}, 422, "invalid_name"),
        ({"name": "  ", "body": "Hi", "to": NUMBERS}, 422, "invalid_name"),
        ({"name": "X", "body": "Hi"}, 422, "no_recipients"),
        ({"name": "X", "body": "Hi", "to": "0712345601"}, 422, "invalid_to"),
        ({"name": "X", "body": "Hi", "to": NUMBERS, "channel": "fax"}, 422, "invalid_channel"),
        ({"name": "X", "body": "Hi", "to": NUMBERS, "template_id": 999999}, 404, "not_found"),
        (
            {"name": "X", "body": "Hi", "to": NUMBERS, "send": True, "scheduled_at": "tomorrow"},
            422,
            "invalid_scheduled_at",
        ),
        *(
            ({"name": "X", "to": NUMBERS, "send": True, "scheduled_at": when}, 422, "invalid_scheduled_at")
            for when in (
                "2001-01-01T00:00:00Z",  # the past
                "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
                "9999-12-31T23:59:59-12:00",  # after year 9999 in UTC
                "2099-01-01T00:00:00Z",  # more than 5 years ahead
                "²026-01-01T00:00:00Z",
            )
        ),
        ({"name": "X", "body": " ", "to": NUMBERS, "send": True}, 422, "empty_body"),
        ({"name": "X", "body": "Hi", "to": ["12", "34"], "send": True}, 422, "no_recipients"),
        ({"name": "X", "body": "Hi", "to": NUMBERS, "send": "yes"}, 422, "invalid_send"),
    ],
)
def test_bad_campaigns_are_refused_and_nothing_is_kept(api, payload, status, code):
    assert_error(api.post("/campaigns", json=_transactional(payload)), status, code)
    assert db.session.scalar(sa.select(sa.func.count(Campaign.id))) == 0


def test_another_tenants_campaign_is_404(api, other_api):
    body = api.post("/campaigns", json=_transactional({"name": "Mine", "body": "Hi", "to": NUMBERS})).get_json()
    assert_error(other_api.get(f"/campaigns/{body['id']}"), 404, "not_found")
    assert_error(api.get("/campaigns/99999999999999999999"), 404, "not_found")
    assert_error(api.get("/campaigns/2147483648"), 404, "not_found")


def test_a_repeated_launch_with_the_same_key_runs_once(api, tenant):
    headers = {"Idempotency-Key": "campaign-1"}
    payload = _transactional({"name": "Once", "body": "Hi", "to": NUMBERS, "send": True})
    first = api.post("/campaigns", json=payload, headers=headers)
    again = api.post("/campaigns", json=payload, headers=headers)
    assert first.status_code == again.status_code == 201 and again.get_json() == first.get_json()
    assert db.session.scalar(sa.select(sa.func.count(Campaign.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 3
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 0  # a campaign to numbers adds no contacts
