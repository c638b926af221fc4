"""One Idempotency-Key sent by several clients at the same moment, over real HTTP (separate connections and
database sessions): exactly one message and one charge, and every caller gets the same answer."""

from __future__ import annotations

import threading

import requests
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import ApiIdempotencyKey, Message, WalletTransaction
from tests.conftest import ledger_balance

SENDERS = 6


def test_concurrent_sends_with_one_key_create_one_message_and_one_debit(live_server, tenant):
    tenant_id, key = tenant.id, tenant.test_api_key
    db.session.commit()
    barrier = threading.Barrier(SENDERS)
    answers: list[tuple[int, dict, str | None]] = []

    def send() -> None:
        with requests.Session() as http:
            barrier.wait()
            response = http.post(
                f"{live_server}/api/v1/messages",
                json={"to": "0712345678", "body": "Your order is ready"},
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "order-7781"},
                timeout=60,
            )
            answers.append((response.status_code, response.json(), response.headers.get("Idempotent-Replayed")))

    threads = [threading.Thread(target=send) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert len(answers) == SENDERS
    assert {status for status, _, _ in answers} == {202}, answers
    bodies = {str(body) for _, body, _ in answers}
    assert len(bodies) == 1  # every caller sees the one message
    assert sum(1 for *_, replayed in answers if replayed != "true") == 1

    db.session.expire_all()
    messages = db.session.scalars(sa.select(Message).where(Message.client_id == tenant_id)).all()
    charges = db.session.scalars(
        sa.select(WalletTransaction).where(
            WalletTransaction.client_id == tenant_id, WalletTransaction.type == "deduction"
        )
    ).all()
    keys = db.session.scalar(sa.select(sa.func.count(ApiIdempotencyKey.id)))
    assert len(messages) == 1 and len(charges) == 1 and keys == 1
    assert charges[0].amount == -messages[0].cost
    assert ledger_balance(tenant_id) == 100 - messages[0].cost
