"""Refunds, admin adjustments, campaign holds and low-balance alerts; a stateful model of the whole ledger."""

import itertools
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from bulkapp.extensions import db
from bulkapp.models import Client, Event, Notification, WalletTransaction
from bulkapp.services.accounts.users import create_client
from bulkapp.services.billing import wallet
from tests.conftest import ledger_balance


def balance(client_id: int) -> Decimal:
    return db.session.scalar(sa.select(Client.balance).where(Client.id == client_id))


def ledger_rows(client_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(WalletTransaction.client_id == client_id))


def alerts(client_id: int) -> tuple[int, int]:
    """(low_balance notifications, wallet.low_balance events) of a tenant."""
    notes = sa.select(sa.func.count()).where(Notification.client_id == client_id, Notification.type == "low_balance")
    events = sa.select(sa.func.count()).where(Event.client_id == client_id, Event.type == "wallet.low_balance")
    return db.session.scalar(notes), db.session.scalar(events)


def settled(client_id: int, expected: str) -> None:
    """Commit, then check the balance, the ledger invariant and that the balance is not negative."""
    db.session.commit()
    now = balance(client_id)
    assert now == Decimal(expected)
    assert ledger_balance(client_id) == now
    assert now >= 0


def set_threshold(client_id: int, value) -> None:
    client = db.session.get(Client, client_id)
    client.settings = {**client.settings, "low_balance_threshold": value}
    db.session.commit()


def test_refund_gives_back_once(tenant):
    wallet.debit(tenant.id, "12.40", reference="sms:7")
    row = wallet.refund(tenant.id, "12.40", reference="refund:message:7", description="Undelivered")
    again = wallet.refund(tenant.id, "12.40", reference="refund:message:7", description="Undelivered")
    assert again.id == row.id
    assert (row.type, row.amount, row.status, row.description) == (
        "refund",
        Decimal("12.40"),
        "completed",
        "Undelivered",
    )
    settled(tenant.id, "100.00")
    for bad in ("0", "-1"):
        with pytest.raises(ValueError):
            wallet.refund(tenant.id, bad, reference=f"refund:bad:{bad}")


def test_adjust_is_signed_and_records_reason_and_actor(tenant, admin_user):
    up = wallet.adjust(tenant.id, "25.00", reason=" Goodwill credit ", actor_id=admin_user.id, reference="adj:1")
    down = wallet.adjust(tenant.id, "-30.5", reason="Duplicate top-up", actor_id=admin_user.id, reference="adj:2")
    assert (up.type, up.amount, up.description) == ("adjustment", Decimal("25.00"), "Goodwill credit")
    assert up.meta == {"reason": "Goodwill credit", "actor_id": admin_user.id}
    assert (down.amount, down.balance_after) == (Decimal("-30.50"), Decimal("94.50"))
    replay = wallet.adjust(tenant.id, "25.00", reason="Goodwill credit", actor_id=admin_user.id, reference="adj:1")
    assert replay.id == up.id
    settled(tenant.id, "94.50")
    rows = ledger_rows(tenant.id)
    with pytest.raises(wallet.InsufficientBalance):
        wallet.adjust(tenant.id, "-94.5001", reason="Too much", actor_id=admin_user.id, reference="adj:3")
    for amount, reason in (("0", "Nothing"), ("5", ""), ("5", "   "), ("5", None)):
        with pytest.raises(ValueError):
            wallet.adjust(tenant.id, amount, reason=reason, actor_id=admin_user.id, reference="adj:4")
    settled(tenant.id, "94.50")
    assert ledger_rows(tenant.id) == rows


def test_hold_reserves_and_settling_releases_the_unused_part_once(tenant):
    held = wallet.hold(tenant.id, "60.00", "campaign:1:hold", "Campaign 1")
    assert (held.type, held.amount, held.status, held.balance_after) == ("hold", Decimal("-60"), "completed", 40)
    assert wallet.hold(tenant.id, "60.00", "campaign:1:hold", "Campaign 1").id == held.id
    settled(tenant.id, "40.00")
    release = wallet.settle_hold(tenant.id, "campaign:1:hold", "45.5")
    assert (release.type, release.amount, release.reference) == ("release", Decimal("14.50"), "campaign:1:hold:release")
    assert release.meta == {"hold_reference": "campaign:1:hold", "held": "60.0000", "spent": "45.5000"}
    settled(tenant.id, "54.50")
    rows = ledger_rows(tenant.id)
    for spent in ("45.5", "0", "60"):  # settling again changes nothing, whatever it claims
        assert wallet.settle_hold(tenant.id, "campaign:1:hold", spent).id == release.id
    settled(tenant.id, "54.50")
    assert ledger_rows(tenant.id) == rows


def test_fully_spent_and_unspent_holds(tenant):
    wallet.hold(tenant.id, "30", "campaign:2:hold")
    wallet.hold(tenant.id, "30", "campaign:3:hold")
    settled(tenant.id, "40.00")
    spent_all = wallet.settle_hold(tenant.id, "campaign:2:hold", "30")
    cancelled = wallet.settle_hold(tenant.id, "campaign:3:hold", "0")
    assert (spent_all.amount, cancelled.amount) == (Decimal("0"), Decimal("30"))
    settled(tenant.id, "70.00")


def test_hold_beyond_the_balance_writes_nothing(tenant):
    rows = ledger_rows(tenant.id)
    with pytest.raises(wallet.InsufficientBalance):
        wallet.hold(tenant.id, "100.0001", "campaign:4:hold")
    settled(tenant.id, "100.00")
    assert ledger_rows(tenant.id) == rows
    with pytest.raises(ValueError):
        wallet.hold(tenant.id, "0", "campaign:4:hold")
    with pytest.raises(ValueError):
        wallet.hold(tenant.id, "1", "h" * 113)


def test_settling_more_than_held_is_refused_and_a_correct_settlement_still_works(tenant):
    wallet.hold(tenant.id, "20", "campaign:5:hold")
    settled(tenant.id, "80.00")
    rows = ledger_rows(tenant.id)
    with pytest.raises(wallet.HoldExceeded):
        wallet.settle_hold(tenant.id, "campaign:5:hold", "20.0001")
    with pytest.raises(ValueError):
        wallet.settle_hold(tenant.id, "campaign:5:hold", "-1")
    settled(tenant.id, "80.00")
    assert ledger_rows(tenant.id) == rows
    assert wallet.settle_hold(tenant.id, "campaign:5:hold", "19.9999").amount == Decimal("0.0001")
    settled(tenant.id, "80.0001")


def test_only_this_tenants_holds_can_be_settled(tenant, other_tenant):
    wallet.hold(other_tenant.id, "10", "campaign:6:hold")
    wallet.debit(tenant.id, "10", reference="sms:not-a-hold")
    db.session.commit()
    for reference in ("campaign:6:hold", "sms:not-a-hold", "missing"):
        with pytest.raises(wallet.UnknownHold):
            wallet.settle_hold(tenant.id, reference, "0")
    settled(tenant.id, "90.00")
    settled(other_tenant.id, "90.00")


def test_a_reference_names_one_change(tenant, other_tenant):
    wallet.credit(tenant.id, "10", reference="mpesa:QAB1")
    db.session.commit()
    attempts = [
        lambda: wallet.credit(tenant.id, "11", reference="mpesa:QAB1"),  # another amount
        lambda: wallet.credit(other_tenant.id, "10", reference="mpesa:QAB1"),  # another tenant
        lambda: wallet.refund(tenant.id, "10", reference="mpesa:QAB1"),  # another type
        lambda: wallet.debit(other_tenant.id, "500", reference="mpesa:QAB1"),  # short AND reused
    ]
    for attempt in attempts:
        with pytest.raises(wallet.ReferenceConflict):
            attempt()
    settled(tenant.id, "110.00")
    settled(other_tenant.id, "100.00")


def test_the_reference_of_a_pending_row_is_not_a_replay(tenant):
    pending = WalletTransaction(
        client_id=tenant.id, type="topup", amount=Decimal("50"), reference="stk:1", status="pending"
    )
    db.session.add(pending)
    db.session.commit()
    with pytest.raises(wallet.ReferenceConflict):
        wallet.credit(tenant.id, "50", reference="stk:1")
    settled(tenant.id, "100.00")


def pending_topup(client_id: int, amount: str, reference: str, status: str = "pending") -> int:
    """A top-up row as the STK flow writes it before M-Pesa answers: not in the balance yet."""
    row = WalletTransaction(
        client_id=client_id, type="topup", amount=Decimal(amount), reference=reference, status=status
    )
    db.session.add(row)
    db.session.commit()
    return row.id


def test_a_pending_top_up_counts_once_completed(tenant):
    pending = pending_topup(tenant.id, "500", "topup:stk:1")
    failed = pending_topup(tenant.id, "700", "topup:stk:2", status="failed")
    settled(tenant.id, "100.00")
    row = wallet.complete_pending(pending, mpesa_reference="SGH1ABC", meta={"result_code": 0})
    assert (row.status, row.balance_before, row.balance_after) == ("completed", 100, 600)
    assert (row.mpesa_reference, row.meta) == ("SGH1ABC", {"result_code": 0})
    settled(tenant.id, "600.00")
    assert wallet.complete_pending(pending, mpesa_reference="SGH1ABC") is None
    assert wallet.complete_pending(failed) is None
    assert wallet.complete_pending(10_000) is None
    settled(tenant.id, "600.00")


def test_low_balance_alerts_once_per_crossing_and_rearms_after_a_top_up(tenant):
    wallet.debit(tenant.id, "0.80", reference="sms:1")  # 100.00 -> 99.20 crosses the default 100.00
    db.session.commit()
    assert alerts(tenant.id) == (1, 1)
    note = db.session.scalar(sa.select(Notification).where(Notification.client_id == tenant.id))
    event = db.session.scalar(sa.select(Event).where(Event.client_id == tenant.id))
    assert note.user_id is None and note.title == "Low balance"
    assert note.message == "Your balance is KSh 99.20, below your alert level of KSh 100.00. Top up to keep sending."
    assert note.data == {
        "balance": "99.20", "threshold": "100.00", "reference": "sms:1",
        "text": "low_balance", "params": {"balance": "99.20", "threshold": "100.00"},
    }  # fmt: skip
    assert event.data == {"balance": "99.20", "threshold": "100.00", "currency": "KES", "reference": "sms:1"}
    wallet.debit(tenant.id, "0.80", reference="sms:1")  # a replay does not alert again
    for i in range(2, 6):
        wallet.debit(tenant.id, "0.80", reference=f"sms:{i}")
    db.session.commit()
    assert alerts(tenant.id) == (1, 1)
    wallet.credit(tenant.id, "4.00", reference="mpesa:UP1")  # back to exactly 100.00: re-armed
    wallet.debit(tenant.id, "0.0001", reference="sms:6")
    settled(tenant.id, "99.9999")
    assert alerts(tenant.id) == (2, 2)
    assert db.session.scalar(sa.select(Event.data).order_by(Event.id.desc()).limit(1))["balance"] == "99.99"


def test_low_balance_uses_the_tenants_threshold(tenant):
    set_threshold(tenant.id, "20.00")
    wallet.debit(tenant.id, "80", reference="big:1")  # lands exactly on the threshold: not below
    db.session.commit()
    assert alerts(tenant.id) == (0, 0)
    wallet.hold(tenant.id, "0.01", "campaign:7:hold")  # a hold is a change like any other
    db.session.commit()
    assert alerts(tenant.id) == (1, 1)
    wallet.settle_hold(tenant.id, "campaign:7:hold", "0")  # back to 20.00: re-armed
    wallet.debit(tenant.id, "5", reference="big:2")
    settled(tenant.id, "15.00")
    assert alerts(tenant.id) == (2, 2)


@pytest.mark.parametrize(("value", "expected"), [("0", 0), (0, 0), ("50", 1), (50, 1), ("junk", 1), ("NaN", 1)])
def test_threshold_setting_values(tenant, value, expected):
    """0 turns the alert off; numbers and strings both work; an unreadable value means the default."""
    set_threshold(tenant.id, value)
    wallet.debit(tenant.id, "99.99", reference="all")
    settled(tenant.id, "0.01")
    assert alerts(tenant.id) == (expected, expected)


def test_a_failed_debit_alerts_nobody(tenant):
    with pytest.raises(wallet.InsufficientBalance):
        wallet.debit(tenant.id, "100.01", reference="too-much")
    db.session.commit()
    assert alerts(tenant.id) == (0, 0)


# ---------------------------------------------------------------------------------------------------------
# Stateful model: random operations and replays, the database checked against an in-memory model each step.

AMOUNTS = st.integers(1, 1_500_000).map(lambda n: Decimal(n) / 10_000)  # 0.0001 .. 150.0000 KSH
TENANTS = itertools.count()
THRESHOLD = Decimal("100.00")


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        client, _ = create_client(f"Ledger model {next(TENANTS)}", balance="100.00", price_per_unit="0.80")
        db.session.commit()
        self.client_id = client.id
        self.balance = Decimal("100.00")
        self.alerts = 0
        self.steps = itertools.count()
        self.done: list[tuple] = []  # (function, args, kwargs, row id) of every applied change
        self.holds: dict[str, Decimal] = {}
        self.closed: set[str] = set()
        self.pending: dict[int, Decimal] = {}
        self.completed: set[int] = set()

    def reference(self, kind: str) -> str:
        return f"model:{self.client_id}:{kind}:{next(self.steps)}"

    def apply(self, delta: Decimal, function, *args, **kwargs) -> bool:
        """Run a change the model expects to succeed (delta may be 0) or to be refused for the balance."""
        rows = ledger_rows(self.client_id)
        if self.balance + delta < 0:
            with pytest.raises(wallet.InsufficientBalance):
                function(*args, **kwargs)
            db.session.commit()
            assert ledger_rows(self.client_id) == rows
            return False
        row = function(*args, **kwargs)
        db.session.commit()
        if self.balance >= THRESHOLD > self.balance + delta:
            self.alerts += 1
        self.balance += delta
        assert row.amount == delta and ledger_rows(self.client_id) == rows + 1
        self.done.append((function, args, kwargs, row.id))
        return True

    @rule(amount=AMOUNTS)
    def top_up(self, amount):
        self.apply(amount, wallet.credit, self.client_id, amount, reference=self.reference("topup"))

    @rule(amount=AMOUNTS)
    def debit(self, amount):
        self.apply(-amount, wallet.debit, self.client_id, amount, reference=self.reference("debit"))

    @rule(hold=st.booleans(), extra=st.sampled_from([Decimal(0), Decimal("0.0001")]))
    def spend_exactly_the_balance_or_a_hair_more(self, hold, extra):
        amount = self.balance + extra
        if amount == 0:
            return
        if hold:
            self.place_hold(amount)
        else:
            self.apply(-amount, wallet.debit, self.client_id, amount, reference=self.reference("debit"))

    @rule(amount=AMOUNTS)
    def refund(self, amount):
        self.apply(amount, wallet.refund, self.client_id, amount, reference=self.reference("refund"))

    @rule(amount=AMOUNTS, sign=st.sampled_from([1, -1]))
    def adjust(self, amount, sign):
        delta, reference = sign * amount, self.reference("adjust")
        self.apply(delta, wallet.adjust, self.client_id, delta, reason="model", actor_id=1, reference=reference)

    @rule(amount=AMOUNTS)
    def hold(self, amount):
        self.place_hold(amount)

    def place_hold(self, amount: Decimal) -> None:
        reference = self.reference("hold")
        if self.apply(-amount, wallet.hold, self.client_id, amount, reference):
            self.holds[reference] = amount

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def settle(self, data):
        reference = data.draw(st.sampled_from(sorted(self.holds)))
        held = self.holds[reference]
        spent = Decimal(data.draw(st.integers(0, int(held * 10_000) + 5_000))) / 10_000
        if reference in self.closed:
            before = (balance(self.client_id), ledger_rows(self.client_id))
            wallet.settle_hold(self.client_id, reference, spent)
            db.session.commit()
            assert (balance(self.client_id), ledger_rows(self.client_id)) == before
        elif spent > held:
            with pytest.raises(wallet.HoldExceeded):
                wallet.settle_hold(self.client_id, reference, spent)
            db.session.commit()
        else:
            self.apply(held - spent, wallet.settle_hold, self.client_id, reference, spent)
            self.closed.add(reference)

    @rule(amount=AMOUNTS)
    def start_stk_top_up(self, amount):
        self.pending[pending_topup(self.client_id, str(amount), self.reference("stk"))] = amount

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def complete_stk_top_up(self, data):
        transaction_id = data.draw(st.sampled_from(sorted(self.pending)))
        row = wallet.complete_pending(transaction_id, mpesa_reference=f"R{transaction_id}")
        db.session.commit()
        if transaction_id in self.completed:
            assert row is None
            return
        assert row.amount == self.pending[transaction_id]
        if self.balance >= THRESHOLD > self.balance + row.amount:
            self.alerts += 1
        self.balance += row.amount
        self.completed.add(transaction_id)

    @precondition(lambda self: self.done)
    @rule(data=st.data())
    def replay(self, data):
        function, args, kwargs, row_id = data.draw(st.sampled_from(self.done))
        rows = ledger_rows(self.client_id)
        assert function(*args, **kwargs).id == row_id
        db.session.commit()
        assert ledger_rows(self.client_id) == rows

    @invariant()
    def balance_is_the_ledger_and_never_negative(self):
        now = balance(self.client_id)
        assert now == self.balance == ledger_balance(self.client_id)
        assert now >= 0
        assert alerts(self.client_id) == (self.alerts, self.alerts)


def test_random_operations_keep_the_ledger_invariant():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=30, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        ),
    )
