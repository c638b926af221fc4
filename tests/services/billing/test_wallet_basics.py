"""The foundation's exact-money guarantees: integer storage, conditional debits, one effect per reference."""

from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Client, WalletTransaction
from bulkapp.services.billing import wallet
from tests.conftest import ledger_balance


def test_ten_thousand_debits_of_a_hundredth_of_a_cent_are_exact(tenant):
    start = Decimal("100.0000")
    for i in range(10_000):
        wallet.debit(tenant.id, Decimal("0.0001"), reference=f"micro:{i}")
    db.session.commit()
    db.session.expire_all()
    client = db.session.get(Client, tenant.id)
    assert client.balance == start - Decimal("1.0000")
    assert ledger_balance(tenant.id) == client.balance
    raw = db.session.execute(sa.text("SELECT balance FROM clients WHERE id = :id"), {"id": tenant.id}).scalar()
    assert raw == 990_000  # integer ten-thousandths in storage, no float anywhere


def test_debit_beyond_balance_raises_and_writes_nothing(tenant):
    before = db.session.scalar(sa.select(sa.func.count(WalletTransaction.id)))
    with pytest.raises(wallet.InsufficientBalance):
        wallet.debit(tenant.id, Decimal("100.0001"), reference="too-much")
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Client, tenant.id).balance == Decimal("100.00")
    assert db.session.scalar(sa.select(sa.func.count(WalletTransaction.id))) == before


def test_same_reference_applies_once(tenant):
    first = wallet.credit(tenant.id, "25.50", reference="mpesa:ABC123")
    again = wallet.credit(tenant.id, "25.50", reference="mpesa:ABC123")
    db.session.commit()
    db.session.expire_all()
    assert first.id == again.id
    assert db.session.get(Client, tenant.id).balance == Decimal("125.50")
    assert ledger_balance(tenant.id) == Decimal("125.50")


def test_ledger_row_records_before_and_after(tenant):
    row = wallet.debit(tenant.id, "0.80", reference="sms:1", description="1 SMS unit")
    assert (row.balance_before, row.balance_after, row.amount) == (
        Decimal("100.00"),
        Decimal("99.20"),
        Decimal("-0.80"),
    )
    assert row.type == "deduction" and row.status == "completed"


def test_floats_are_refused(tenant):
    with pytest.raises(TypeError):
        wallet.credit(tenant.id, 0.1, reference="float")


def test_client_read_helpers_and_the_seeds_balance_changes_through_the_ledger(tenant):
    client = db.session.get(Client, tenant.id)
    assert client.getBalanceInUnits() == 125  # 100 / 0.80
    assert client.kshToUnits("1.60") == 2 and client.unitsToKsh(3) == Decimal("2.40")
    assert client.hasSufficientBalance("100.00") and not client.hasSufficientBalance("100.01")
    wallet.debit(client.id, "10.00", reference="helper:debit")  # the seed's deductBalance
    wallet.credit(client.id, "5.00", reference="helper:credit")  # the seed's addBalance
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Client, tenant.id).balance == Decimal("95.00") == ledger_balance(tenant.id)
