"""The wallet ledger: the only code that changes a tenant's balance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from bulkapp.columns import to_decimal
from bulkapp.extensions import db
from bulkapp.models import Client, WalletTransaction


class WalletError(Exception):
    """Base class of wallet domain errors."""


class InsufficientBalance(WalletError):
    def __init__(self, client_id: int, amount: Decimal) -> None:
        super().__init__(f"insufficient balance: {amount} KSH needed")
        self.client_id = client_id
        self.amount = amount


def find_transaction(reference: str) -> WalletTransaction | None:
    return db.session.scalar(sa.select(WalletTransaction).where(WalletTransaction.reference == reference))


def _insert_ignoring_duplicates(values: dict[str, Any]) -> WalletTransaction | None:
    """INSERT the ledger row unless its reference exists (ON CONFLICT DO NOTHING on both backends)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(WalletTransaction)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["reference"])
        .returning(WalletTransaction)
    )
    return db.session.scalars(statement).one_or_none()


def apply_change(
    client_id: int,
    delta,
    *,
    type: str,
    reference: str,
    description: str = "",
    mpesa_reference: str | None = None,
    meta: dict[str, Any] | None = None,
) -> WalletTransaction:
    """Move ``delta`` KSH (signed) into the balance and write its ledger row, exactly once per reference.

    One conditional UPDATE (``balance + delta >= 0``) and one ``wallet_transactions`` row in the caller's
    transaction. A reference seen before returns the existing row and leaves the balance as it was. A
    debit larger than the balance raises :class:`InsufficientBalance` and writes nothing.
    """
    delta = to_decimal(delta)
    after = db.session.execute(
        sa.update(Client)
        .where(Client.id == client_id, Client.balance + delta >= Decimal(0))
        .values(balance=Client.balance + delta)
        .returning(Client.balance)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if after is None:
        existing = find_transaction(reference)
        if existing is not None:
            return existing
        raise InsufficientBalance(client_id, -delta)
    row = _insert_ignoring_duplicates(
        {
            "client_id": client_id,
            "type": type,
            "amount": delta,
            "balance_before": after - delta,
            "balance_after": after,
            "reference": reference,
            "mpesa_reference": mpesa_reference,
            "description": description,
            "status": "completed",
            "meta": meta or {},
        }
    )
    if row is None:
        # The reference was recorded before (or by a concurrent writer, whose commit we waited for):
        # undo our change inside this same transaction, so the one effect is theirs.
        after = db.session.execute(
            sa.update(Client)
            .where(Client.id == client_id)
            .values(balance=Client.balance - delta)
            .returning(Client.balance)
            .execution_options(synchronize_session=False)
        ).scalar_one()
        row = find_transaction(reference)
    _sync_cached_balance(client_id, after)
    return row


def _sync_cached_balance(client_id: int, balance: Decimal) -> None:
    """Keep a loaded Client's balance attribute in step without another query."""
    client = db.session.identity_map.get(identity_key(Client, client_id))
    if client is not None:
        set_committed_value(client, "balance", balance)


def credit(client_id: int, amount, *, reference: str, description: str = "", type: str = "topup", **kw):
    """Add a positive amount (top-up, refund, release, credit adjustment)."""
    amount = to_decimal(amount)
    if amount <= 0:
        raise ValueError("credit amount must be positive")
    return apply_change(client_id, amount, type=type, reference=reference, description=description, **kw)


def debit(client_id: int, amount, *, reference: str, description: str = "", type: str = "deduction", **kw):
    """Take a positive amount off the balance, or raise InsufficientBalance."""
    amount = to_decimal(amount)
    if amount <= 0:
        raise ValueError("debit amount must be positive")
    return apply_change(client_id, -amount, type=type, reference=reference, description=description, **kw)


def ledger_sum(client_id: int) -> Decimal:
    """Sum of the completed ledger rows; always equals the balance."""
    rows = db.session.scalars(
        sa.select(WalletTransaction.amount).where(
            WalletTransaction.client_id == client_id, WalletTransaction.status == "completed"
        )
    )
    return sum(rows, Decimal("0.0000"))
