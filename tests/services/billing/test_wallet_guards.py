"""The ledger's sign guards: a debit or credit of zero or less is refused and writes nothing (without the guard,
``debit(-5)`` would credit 5)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Client, WalletTransaction
from bulkapp.services.billing import wallet
from tests.conftest import ledger_balance


def snapshot(client_id: int) -> tuple[Decimal, int]:
    db.session.expire_all()
    rows = db.session.scalar(
        sa.select(sa.func.count(WalletTransaction.id)).where(WalletTransaction.client_id == client_id)
    )
    return db.session.get(Client, client_id).balance, rows


@pytest.mark.parametrize("amount", ["-5", "0", "-0.0001", "0.00", -5, Decimal("-100")])
def test_debit_refuses_amounts_of_zero_or_less_and_writes_nothing(tenant, amount):
    before = snapshot(tenant.id)
    with pytest.raises(ValueError, match="debit amount must be positive"):
        wallet.debit(tenant.id, amount, reference=f"guard:debit:{amount}")
    db.session.commit()
    assert snapshot(tenant.id) == before == (Decimal("100.00"), 1)
    assert wallet.find_transaction(f"guard:debit:{amount}") is None
    assert ledger_balance(tenant.id) == Decimal("100.00")


@pytest.mark.parametrize("amount", ["-5", "0", -1])
def test_credit_refuses_amounts_of_zero_or_less_and_writes_nothing(tenant, amount):
    before = snapshot(tenant.id)
    with pytest.raises(ValueError, match="credit amount must be positive"):
        wallet.credit(tenant.id, amount, reference=f"guard:credit:{amount}")
    db.session.commit()
    assert snapshot(tenant.id) == before


def test_a_positive_debit_still_works(tenant):
    row = wallet.debit(tenant.id, "5", reference="guard:ok")
    db.session.commit()
    assert (row.amount, row.balance_after) == (Decimal("-5.0000"), Decimal("95.0000"))
    assert snapshot(tenant.id) == (Decimal("95.00"), 2)
