"""Paybill payments against an in-memory model (Hypothesis state machine): random confirmations (good, resent,
to unknown or suspended accounts, with hostile amounts) and admin assignments, the database checked each step.

Invariants: a tenant's balance is its ledger and what the model credited; a TransID is credited at most once,
by a confirmation or by an assignment, never both; every payment not credited is kept exactly once.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from bulkapp.extensions import db
from bulkapp.models import Client, UnmatchedPayment, WalletTransaction
from bulkapp.services.accounts.users import create_client, create_user
from bulkapp.services.billing import paybill
from tests.conftest import ledger_balance

RUNS = itertools.count()
GOOD = st.sampled_from(["10", "10.50", "149999.99", "150000", "2500.00"])
BAD = st.sampled_from(["9.99", "150000.01", "10.001", "0", "-20", "abc", "1e400", "99999999999999999999", ""])
ACCOUNTS = ("active", "suspended", "unknown")


class PaybillMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        run = next(RUNS)
        active, _ = create_client(f"Paybill model {run}", balance="0", price_per_unit="0.80")
        suspended, _ = create_client(f"Paybill suspended {run}", balance="0", price_per_unit="0.80")
        suspended.status = False
        admin = create_user(f"admin{run}@model.example", "model-password-1", name="Model admin", admin=True)
        db.session.commit()
        self.accounts = {"active": active.account_number, "suspended": suspended.account_number, "unknown": "BKNONE"}
        self.ids = {"active": active.id, "suspended": suspended.id}
        self.admin_id = admin.id
        self.balances = {"active": Decimal(0), "suspended": Decimal(0)}
        self.recorded: set[str] = set()  # TransIDs credited or kept
        self.kept: dict[str, Decimal | None] = {}  # TransID -> usable amount of a kept payment
        self.assigned: set[str] = set()
        self.prefix = f"M{run}X"

    def trans_id(self, n: int) -> str:
        return f"{self.prefix}{n}"

    @rule(n=st.integers(0, 12), account=st.sampled_from(ACCOUNTS), amount=st.one_of(GOOD, BAD))
    def confirm(self, n, account, amount):
        trans_id = self.trans_id(n)
        outcome = paybill.confirm_c2b(
            {"TransID": trans_id, "TransAmount": amount, "BillRefNumber": self.accounts[account], "MSISDN": "2547"}
        )
        db.session.commit()
        if trans_id in self.recorded:
            assert outcome.status == "duplicate"
            return
        self.recorded.add(trans_id)
        read = paybill.read_amount(amount)
        if account == "active" and read.problem is None:
            assert outcome.status == "credited"
            self.balances["active"] += read.value
        else:
            assert outcome.status == "kept"
            self.kept[trans_id] = read.value

    @precondition(lambda self: self.kept)
    @rule(data=st.data(), account=st.sampled_from(ACCOUNTS))
    def assign(self, data, account):
        trans_id = data.draw(st.sampled_from(sorted(self.kept)))
        payment_id = db.session.scalar(sa.select(UnmatchedPayment.id).where(UnmatchedPayment.trans_id == trans_id))
        db.session.rollback()
        amount = self.kept[trans_id]
        if trans_id in self.assigned or amount is None or account == "unknown":
            with pytest.raises(paybill.AssignError):
                paybill.assign_unmatched(payment_id, self.accounts[account], actor_id=self.admin_id, reason="model")
            db.session.rollback()
            return
        row = paybill.assign_unmatched(payment_id, self.accounts[account], actor_id=self.admin_id, reason="model")
        db.session.commit()
        assert row.amount == amount and row.client_id == self.ids[account]
        self.balances[account] += amount
        self.assigned.add(trans_id)

    @invariant()
    def balances_are_the_ledger_and_each_payment_counts_once(self):
        db.session.rollback()
        for name, client_id in self.ids.items():
            assert db.session.get(Client, client_id).balance == self.balances[name] == ledger_balance(client_id)
        kept = db.session.scalar(
            sa.select(sa.func.count()).where(UnmatchedPayment.trans_id.startswith(self.prefix, autoescape=True))
        )
        assert kept == len(self.kept)
        references = db.session.scalars(
            sa.select(WalletTransaction.meta).where(WalletTransaction.client_id.in_(self.ids.values()))
        ).all()
        assert len(references) == len(self.recorded) - len(self.kept) + len(self.assigned)
        db.session.rollback()


def test_random_paybill_traffic_keeps_every_invariant():
    run_state_machine_as_test(
        PaybillMachine,
        settings=settings(
            max_examples=15, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        ),
    )
