"""Real threads, real sessions, one wallet: no lost update, no overdraft, one effect per reference."""

import threading
from decimal import Decimal

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Client, Event, Notification, WalletTransaction
from bulkapp.services.billing import wallet
from tests.conftest import ledger_balance

THREADS = 8


def run_threads(app, work) -> list:
    """Run ``work(n)`` in THREADS threads, each in its own app context (its own session), started together."""
    barrier = threading.Barrier(THREADS)
    results: list = [None] * THREADS
    errors: list[BaseException] = []

    def target(n: int) -> None:
        try:
            with app.app_context():
                barrier.wait()
                results[n] = work(n)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=target, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    assert errors == []
    return results


def count(*where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(*where))


def test_concurrent_debits_lose_nothing_and_never_overdraw(app, tenant):
    client_id, amount, per_thread = tenant.id, Decimal("0.0700"), 200
    db.session.rollback()  # end the main session's transaction: on SQLite it would hold the write lock

    def debit_many(n: int) -> tuple[int, int]:
        succeeded = refused = 0
        for i in range(per_thread):
            try:
                wallet.debit(client_id, amount, reference=f"race:{n}:{i}")
                db.session.commit()
                succeeded += 1
            except wallet.InsufficientBalance:
                db.session.rollback()
                refused += 1
        return succeeded, refused

    results = run_threads(app, debit_many)
    succeeded = sum(ok for ok, _ in results)
    refused = sum(no for _, no in results)
    # 100.00 / 0.07 = 1428 debits fit (99.96); the other 172 of the 1600 must be refused.
    assert (succeeded, refused) == (1428, 172)
    final = db.session.scalar(sa.select(Client.balance).where(Client.id == client_id))
    assert final == Decimal("0.0400") == ledger_balance(client_id)
    assert count(WalletTransaction.client_id == client_id, WalletTransaction.type == "deduction") == 1428
    # The first debit took 100.00 below the 100.00 threshold: exactly one alert, whichever thread it was.
    assert count(Notification.client_id == client_id, Notification.type == "low_balance") == 1
    assert count(Event.client_id == client_id, Event.type == "wallet.low_balance") == 1


def test_the_same_top_up_delivered_concurrently_credits_once(app, tenant):
    client_id = tenant.id
    db.session.rollback()

    def credit(n: int) -> int:
        row = wallet.credit(client_id, "250.00", reference="mpesa:SGH7RACE", mpesa_reference="SGH7RACE")
        db.session.commit()
        return row.id

    assert len(set(run_threads(app, credit))) == 1
    assert db.session.scalar(sa.select(Client.balance).where(Client.id == client_id)) == Decimal("350.00")
    assert ledger_balance(client_id) == Decimal("350.00")
    assert count(WalletTransaction.client_id == client_id, WalletTransaction.type == "topup") == 1


def test_concurrent_settlements_of_one_hold_release_once(app, tenant):
    client_id = tenant.id
    wallet.hold(client_id, "50.00", "campaign:9:hold")
    db.session.commit()

    def settle(n: int) -> int:
        row = wallet.settle_hold(client_id, "campaign:9:hold", Decimal(n))  # each claims a different spend
        db.session.commit()
        return row.id

    ids = run_threads(app, settle)
    assert len(set(ids)) == 1
    release = db.session.get(WalletTransaction, ids[0])
    spent = Decimal(release.meta["spent"])
    assert release.amount == Decimal("50.00") - spent and spent in {Decimal(n) for n in range(THREADS)}
    final = db.session.scalar(sa.select(Client.balance).where(Client.id == client_id))
    assert final == Decimal("100.00") - spent == ledger_balance(client_id)
    assert count(WalletTransaction.client_id == client_id, WalletTransaction.type == "release") == 1


def test_a_pending_top_up_completed_concurrently_credits_once(app, tenant):
    client_id = tenant.id
    row = WalletTransaction(
        client_id=client_id, type="topup", amount=Decimal("500"), reference="topup:race", status="pending"
    )
    db.session.add(row)
    db.session.flush()
    transaction_id = row.id
    db.session.commit()  # and no new transaction in the main thread: on SQLite it would hold the write lock

    def complete(n: int) -> bool:
        done = wallet.complete_pending(transaction_id, mpesa_reference="SGH8RACE")
        db.session.commit()
        return done is not None

    assert sorted(run_threads(app, complete)) == [False] * (THREADS - 1) + [True]
    assert db.session.scalar(sa.select(Client.balance).where(Client.id == client_id)) == Decimal("600.00")
    assert ledger_balance(client_id) == Decimal("600.00")
