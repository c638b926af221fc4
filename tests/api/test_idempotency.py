"""Idempotency-Key on POSTs: same key and body -> same answer and one effect; another body -> 409."""

from __future__ import annotations

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import ApiIdempotencyKey, Contact, Message, WalletTransaction
from tests.api.conftest import assert_error
from tests.conftest import ledger_balance


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count(model.id)))


def test_a_repeated_send_returns_the_same_message_and_charges_once(api, tenant):
    headers = {"Idempotency-Key": "order-1234"}
    first = api.post("/messages", json={"to": "0712345678", "body": "Hi"}, headers=headers)
    again = api.post("/messages", json={"body": "Hi", "to": "0712345678"}, headers=headers)  # same body, other order
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert _count(Message) == 1
    assert _count(WalletTransaction) == 2  # the opening balance and one charge
    assert ledger_balance(tenant.id) == 100 - db.session.scalar(sa.select(Message.cost))


def test_the_same_key_with_another_body_is_409(api):
    headers = {"Idempotency-Key": "k1"}
    api.post("/messages", json={"to": "0712345678", "body": "Hi"}, headers=headers)
    assert_error(
        api.post("/messages", json={"to": "0712345678", "body": "Hello"}, headers=headers), 409, "idempotency_conflict"
    )
    assert_error(api.post("/contacts", json={"contact": "0712345678"}, headers=headers), 409, "idempotency_conflict")
    assert _count(Message) == 1 and _count(Contact) == 1  # the send created its contact; nothing more


def test_keys_are_per_tenant(api, other_api):
    headers = {"Idempotency-Key": "shared"}
    assert api.post("/contacts", json={"contact": "0712345678"}, headers=headers).status_code == 201
    other = other_api.post("/contacts", json={"contact": "0799999999"}, headers=headers)
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers


def test_a_replayed_contact_create_is_201_not_409(api):
    headers = {"Idempotency-Key": "contact-1"}
    first = api.post("/contacts", json={"contact": "0712345678"}, headers=headers)
    again = api.post("/contacts", json={"contact": "0712345678"}, headers=headers)
    assert first.status_code == again.status_code == 201 and again.get_json() == first.get_json()
    assert_error(api.post("/contacts", json={"contact": "0712345678"}), 409, "duplicate_contact")  # without a key


def test_failed_requests_are_not_remembered(api, tenant):
    from bulkapp.services.billing import wallet

    wallet.debit(tenant.id, "100.00", reference="test:drain")
    db.session.commit()
    headers = {"Idempotency-Key": "retry-me"}
    assert_error(api.post("/messages", json={"to": "0712345678", "body": "Hi"}, headers=headers), 402)
    assert _count(ApiIdempotencyKey) == 0
    wallet.credit(tenant.id, "10.00", reference="test:topup")
    db.session.commit()
    assert api.post("/messages", json={"to": "0712345678", "body": "Hi"}, headers=headers).status_code == 202


def test_invalid_keys_are_422(api):
    assert_error(
        api.post("/contacts", json={"contact": "0712345678"}, headers={"Idempotency-Key": "k" * 256}),
        422,
        "invalid_idempotency_key",
    )
    assert _count(Contact) == 0
