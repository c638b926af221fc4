"""M-Pesa top-ups: STK requests, every callback outcome, paybill payments, reconciliation, simulated M-Pesa."""

from __future__ import annotations

import copy
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db, rq
from bulkapp.jobs.topups import reconcile_pending_topups, simulate_stk_callback
from bulkapp.models import Client, Event, Notification, UnmatchedPayment, WalletTransaction
from bulkapp.services.billing import paybill, topups
from bulkapp.services.billing import reconcile as topup_reconcile
from tests.conftest import ledger_balance
from tests.simulators.daraja import DEAD_BASE_URL, DarajaSimulator, c2b_payload, configure


def balance(client_id: int) -> Decimal:
    db.session.expire_all()
    return db.session.get(Client, client_id).balance


def assert_ledger_invariant(client_id: int) -> None:
    assert balance(client_id) == ledger_balance(client_id)


def counts() -> tuple[int, int, int]:
    db.session.expire_all()
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (WalletTransaction, Notification, Event)
    )


def reload(tx: WalletTransaction) -> WalletTransaction:
    db.session.expire_all()
    return db.session.get(WalletTransaction, tx.id)


def start(tenant, daraja: DarajaSimulator, suffix: str = "00", amount: int = 100) -> tuple[WalletTransaction, dict]:
    """Start a top-up from a phone whose last digits pick the customer's behaviour; returns the row and
    the callback the simulator sent (or would have sent)."""
    tx = topups.start_stk_topup(tenant.id, f"07083741{suffix}", amount, user_id=tenant.test_user.id)
    db.session.commit()
    daraja.wait_idle()
    sent = daraja.deliveries_of("stk")
    return tx, (copy.deepcopy(sent[-1].payload) if sent else None)


def topup_notifications(client_id: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(Notification.id)).where(
            Notification.client_id == client_id, Notification.type == "topup_success"
        )
    )


def topup_events(client_id: int) -> list[Event]:
    return list(db.session.scalars(sa.select(Event).where(Event.client_id == client_id, Event.type == "wallet.topup")))


# -- starting ----------------------------------------------------------------------------------------


def test_start_records_a_pending_request_that_does_not_count(tenant, daraja):
    tx, _ = start(tenant, daraja, amount=250)
    tx = reload(tx)
    assert (tx.status, tx.type, tx.amount) == ("pending", "topup", Decimal("250"))
    assert tx.checkout_request_id in daraja.pushes
    assert tx.meta["phone"] == "+254708374100" and tx.meta["user_id"] == tenant.test_user.id
    push = daraja.pushes[tx.checkout_request_id]
    assert push.account_reference == tenant.account_number
    assert push.callback_url == DEAD_BASE_URL + "/webhooks/mpesa/callback"
    assert balance(tenant.id) == Decimal("100.00")
    assert_ledger_invariant(tenant.id)
    assert topups.describe_topup(tx) == (
        "pending",
        "Check +254708374100 and enter your M-Pesa PIN to pay KSh 250.00. This page updates by itself.",
    )


def test_callback_url_carries_the_install_token(app, tenant, daraja, monkeypatch):
    configure(app, monkeypatch, MPESA_CALLBACK_TOKEN="s3cret/&")
    tx, _ = start(tenant, daraja)
    assert daraja.pushes[tx.checkout_request_id].callback_url.endswith("/webhooks/mpesa/callback?token=s3cret%2F%26")


@pytest.mark.parametrize(
    ("phone", "amount", "field", "words"),
    [
        ("12345", 100, "phone", "M-Pesa number"),
        ("", 100, "phone", "empty"),
        ("+447911123456", 100, "phone", "Kenyan mobile"),
        ("0712345678", "10.50", "amount", "whole shillings"),
        ("0712345678", "lots", "amount", "whole shillings"),
        ("0712345678", 9, "amount", "smallest top-up is KSh 10"),
        ("0712345678", 150_001, "amount", "largest top-up is KSh 150,000"),
    ],
)
def test_bad_input_is_refused_with_a_sentence_and_writes_nothing(tenant, daraja, phone, amount, field, words):
    before = counts()
    with pytest.raises(topups.TopupError) as caught:
        topups.start_stk_topup(tenant.id, phone, amount)
    assert caught.value.field == field and words in caught.value.message
    assert counts() == before and daraja.pushes == {}


def test_a_suspended_tenant_cannot_top_up(tenant, daraja):
    db.session.get(Client, tenant.id).status = False
    db.session.commit()
    with pytest.raises(topups.TopupError, match="suspended"):
        topups.start_stk_topup(tenant.id, "0712345678", 100)
    assert daraja.pushes == {}


def test_a_refused_push_is_recorded_as_failed_with_a_reason(tenant, daraja):
    tx, _ = start(tenant, daraja, suffix="98")
    tx = reload(tx)
    assert tx.status == "failed" and tx.checkout_request_id is None
    assert topups.describe_topup(tx) == (
        "failed",
        "M-Pesa is not available right now. Nothing was charged; try again in a few minutes.",
    )
    assert balance(tenant.id) == Decimal("100.00")
    assert_ledger_invariant(tenant.id)


def test_a_misconfigured_shortcode_or_passkey_fails_without_blaming_the_customer(app, tenant, daraja, monkeypatch):
    configure(app, monkeypatch, MPESA_PASSKEY="not-our-passkey")
    tx, _ = start(tenant, daraja)
    assert topups.describe_topup(reload(tx)) == (
        "failed",
        "M-Pesa top-ups are not working right now because of a problem on our side. Nothing was charged.",
    )


def test_a_push_without_an_answer_warns_about_a_late_prompt(app, tenant, daraja, monkeypatch):
    configure(app, monkeypatch, MPESA_READ_TIMEOUT=0.3)
    daraja.slow_seconds = 1.0
    tx, _ = start(tenant, daraja)
    state, sentence = topups.describe_topup(reload(tx))
    assert state == "failed" and sentence.startswith("M-Pesa did not answer in time.")


def test_a_double_submit_does_not_prompt_the_phone_twice(tenant, daraja):
    first, payload = start(tenant, daraja)
    with pytest.raises(topups.TopupError, match="just sent") as caught:
        topups.start_stk_topup(tenant.id, "0708374100", 100)
    assert caught.value.field == "phone" and len(daraja.pushes) == 1
    topups.start_stk_topup(tenant.id, "0708374132", 100)  # another phone is fine
    payload["Body"]["stkCallback"].update(ResultCode=1032, ResultDesc="Request cancelled by user")
    topups.handle_stk_callback(payload)  # once the prompt is answered, a new one may be sent
    assert topups.start_stk_topup(tenant.id, "0708374100", 100).status == "pending"
    assert len(daraja.pushes) == 3


# -- callbacks -----------------------------------------------------------------------------------------


def test_a_successful_callback_credits_once_and_replays_change_nothing(tenant, daraja):
    tx, payload = start(tenant, daraja, amount=500)
    outcome = topups.handle_stk_callback(payload)
    db.session.commit()
    assert outcome.status == "credited"
    tx = reload(tx)
    receipt = payload["Body"]["stkCallback"]["CallbackMetadata"]["Item"][1]["Value"]
    assert (tx.status, tx.mpesa_reference) == ("completed", receipt)
    assert (tx.balance_before, tx.balance_after) == (Decimal("100.00"), Decimal("600.00"))
    assert balance(tenant.id) == Decimal("600.00")
    assert topup_notifications(tenant.id) == 1
    [event] = topup_events(tenant.id)
    assert event.data["amount"] == "500.00" and event.data["mpesa_reference"] == receipt
    assert topups.describe_topup(tx) == ("completed", f"KSh 500.00 was added to your wallet. M-Pesa receipt {receipt}.")

    before = counts()
    for _ in range(3):
        assert topups.handle_stk_callback(copy.deepcopy(payload)).status == "duplicate"
        db.session.commit()
    assert counts() == before and balance(tenant.id) == Decimal("600.00")
    assert_ledger_invariant(tenant.id)


@pytest.mark.parametrize(
    ("suffix", "code", "words"),
    [
        ("32", 1032, "You cancelled the M-Pesa prompt"),
        ("37", 1037, "Your phone could not be reached"),
        ("01", 2001, "PIN entered was wrong"),
        ("11", 1, "Your M-Pesa balance was not enough"),
    ],
)
def test_failed_payments_are_marked_failed_with_plain_words(tenant, daraja, suffix, code, words):
    tx, payload = start(tenant, daraja, suffix=suffix)
    assert payload["Body"]["stkCallback"]["ResultCode"] == code
    assert topups.handle_stk_callback(payload).status == "failed"
    db.session.commit()
    tx = reload(tx)
    state, sentence = topups.describe_topup(tx)
    assert (tx.status, state) == ("failed", "failed") and words in sentence
    assert tx.meta["result_code"] == code
    assert balance(tenant.id) == Decimal("100.00") and topup_notifications(tenant.id) == 0
    assert topups.handle_stk_callback(copy.deepcopy(payload)).status == "duplicate"
    # "Paid" for a request that already failed is contradictory: flagged for a person, never credited.
    success = copy.deepcopy(payload)
    items = [{"Name": "Amount", "Value": 100}, {"Name": "MpesaReceiptNumber", "Value": "LATE000001"}]
    success["Body"]["stkCallback"].update(ResultCode=0, CallbackMetadata={"Item": items})
    assert topups.handle_stk_callback(success).status == "flagged"
    assert topups.handle_stk_callback(copy.deepcopy(success)).status == "duplicate"
    db.session.commit()
    tx = reload(tx)
    assert tx.status == "failed" and tx.meta["flag"] == "paid_after_failure" and tx.meta["receipt"] == "LATE000001"
    assert "our team will review it" in topups.describe_topup(tx)[1]
    assert balance(tenant.id) == Decimal("100.00") and topup_notifications(tenant.id) == 0
    assert_ledger_invariant(tenant.id)


def test_an_unlisted_failure_code_keeps_m_pesas_description(tenant, daraja):
    tx, payload = start(tenant, daraja, suffix="32")
    payload["Body"]["stkCallback"].update(ResultCode=4242, ResultDesc="Something unusual")
    topups.handle_stk_callback(payload)
    db.session.commit()
    assert topups.describe_topup(reload(tx)) == (
        "failed",
        "M-Pesa did not complete the payment: Something unusual.",
    )


def test_an_unknown_checkout_request_changes_nothing(tenant, daraja):
    tx, payload = start(tenant, daraja)
    payload["Body"]["stkCallback"]["CheckoutRequestID"] = "ws_CO_not_ours"
    before = counts()
    assert topups.handle_stk_callback(payload).status == "unknown"
    db.session.commit()
    assert counts() == before and reload(tx).status == "pending"
    assert balance(tenant.id) == Decimal("100.00")


def test_a_different_amount_is_flagged_and_not_credited(tenant, daraja):
    tx, payload = start(tenant, daraja, suffix="77", amount=300)
    outcome = topups.handle_stk_callback(payload)
    db.session.commit()
    assert outcome.status == "flagged"
    tx = reload(tx)
    assert tx.status == "failed" and tx.meta["flag"] == "amount_mismatch"
    assert tx.meta["reported_amount"] == "301.0000" and tx.mpesa_reference is None
    assert topups.describe_topup(tx)[1] == (
        "M-Pesa reported KSh 301.00 for this KSh 300.00 request, so it was not added automatically. "
        "Our team will review it."
    )
    assert balance(tenant.id) == Decimal("100.00") and topup_notifications(tenant.id) == 0
    assert topups.handle_stk_callback(copy.deepcopy(payload)).status == "duplicate"
    db.session.commit()
    assert reload(tx).meta["flag"] == "amount_mismatch"
    assert_ledger_invariant(tenant.id)


def deliver_twice_at_once(app, handle, payload: dict) -> list[str]:
    """``handle`` two copies of ``payload`` on two threads released together, each committing; the sorted
    outcome statuses."""
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def deliver():
        with app.app_context():
            barrier.wait()
            outcome = handle(copy.deepcopy(payload))
            db.session.commit()
            outcomes.append(outcome.status)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return sorted(outcomes)


def test_concurrent_duplicate_callbacks_credit_once(app, tenant, daraja):
    tx, payload = start(tenant, daraja, amount=700)
    tenant_id, tx_id = tenant.id, tx.id
    db.session.commit()  # the test thread holds no transaction while the two deliveries race
    assert deliver_twice_at_once(app, topups.handle_stk_callback, payload) == ["credited", "duplicate"]
    assert balance(tenant_id) == Decimal("800.00") and topup_notifications(tenant_id) == 1
    assert len(topup_events(tenant_id)) == 1 and db.session.get(WalletTransaction, tx_id).status == "completed"
    assert_ledger_invariant(tenant_id)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"Body": {}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1"}}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": "zero"}}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "", "ResultCode": 1032}}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": 0}}},  # success, no metadata
        ["not", "an", "object"],
    ],
)
def test_malformed_callbacks_are_refused(tenant, payload):
    with pytest.raises(topups.MalformedPayload):
        topups.handle_stk_callback(payload)


def test_a_receipt_already_credited_by_paybill_is_not_credited_again(tenant, daraja):
    paybill.confirm_c2b(c2b_payload(tenant.account_number, "200.00", trans_id="SHARED0001"))
    db.session.commit()
    tx, payload = start(tenant, daraja, amount=200)
    payload["Body"]["stkCallback"]["CallbackMetadata"]["Item"][1]["Value"] = "SHARED0001"
    assert topups.handle_stk_callback(payload).status == "flagged"
    db.session.commit()
    assert reload(tx).meta["flag"] == "duplicate_receipt"
    assert balance(tenant.id) == Decimal("300.00")
    assert_ledger_invariant(tenant.id)


# -- paybill (C2B) -----------------------------------------------------------------------------------


def test_validation_accepts_a_tenants_account_number_in_any_case_and_padding(tenant):
    for typed in (
        tenant.account_number,
        f"  {tenant.account_number.lower()} ",
        tenant.account_number[:4] + " " + tenant.account_number[4:],
    ):
        assert paybill.validate_c2b(c2b_payload(typed, "100.00")) == {"ResultCode": "0", "ResultDesc": "Accepted"}


def test_validation_rejects_unknown_or_suspended_accounts_and_bad_amounts(tenant):
    rejected_account = {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
    assert paybill.validate_c2b(c2b_payload("BKNOSUCH", "100.00")) == rejected_account
    assert paybill.validate_c2b(c2b_payload("", "100.00")) == rejected_account
    assert paybill.validate_c2b(c2b_payload(tenant.account_number, "0.00"))["ResultCode"] == "C2B00013"
    db.session.get(Client, tenant.id).status = False
    db.session.commit()
    assert paybill.validate_c2b(c2b_payload(tenant.account_number, "100.00")) == rejected_account
    with pytest.raises(topups.MalformedPayload):
        paybill.validate_c2b({"TransID": "X"})


def test_a_confirmation_credits_once_per_trans_id(tenant):
    payload = c2b_payload(f" {tenant.account_number.lower()}", "1250.00")
    outcome = paybill.confirm_c2b(payload)
    db.session.commit()
    assert outcome.status == "credited"
    row = reload(outcome.transaction)
    assert (row.status, row.type, row.mpesa_reference, row.amount) == (
        "completed",
        "topup",
        "RKT9XYZ123",
        Decimal("1250"),
    )
    assert row.meta["channel"] == "c2b"
    assert topups.describe_topup(row) == (
        "completed",
        "KSh 1,250.00 was added to your wallet. M-Pesa receipt RKT9XYZ123.",
    )
    before = counts()
    assert paybill.confirm_c2b(copy.deepcopy(payload)).status == "duplicate"
    db.session.commit()
    assert counts() == before
    assert balance(tenant.id) == Decimal("1350.00") and topup_notifications(tenant.id) == 1
    assert_ledger_invariant(tenant.id)


def test_concurrent_duplicate_confirmations_credit_once(app, tenant):
    payload = c2b_payload(tenant.account_number, "400.00")
    tenant_id = tenant.id
    db.session.commit()
    assert deliver_twice_at_once(app, paybill.confirm_c2b, payload) == ["credited", "duplicate"]
    assert balance(tenant_id) == Decimal("500.00") and topup_notifications(tenant_id) == 1
    assert_ledger_invariant(tenant_id)


def test_a_payment_to_an_unknown_account_is_not_credited_but_kept(tenant):
    before = counts()
    assert paybill.confirm_c2b(c2b_payload("BKNOSUCH", "100.00")).status == "kept"
    db.session.commit()
    assert counts() == before
    kept = db.session.scalars(sa.select(UnmatchedPayment)).one()
    assert (kept.trans_id, kept.amount, kept.bill_ref, kept.reason) == (
        "RKT9XYZ123",
        Decimal("100.00"),
        "BKNOSUCH",
        "unknown_account",
    )


def test_a_confirmation_credits_the_right_tenant_only(tenant, other_tenant):
    paybill.confirm_c2b(c2b_payload(other_tenant.account_number, "50.00"))
    db.session.commit()
    assert balance(tenant.id) == Decimal("100.00") and balance(other_tenant.id) == Decimal("150.00")
    assert_ledger_invariant(tenant.id)
    assert_ledger_invariant(other_tenant.id)


@pytest.mark.parametrize(
    "payload",
    [
        {"BillRefNumber": "BK1"},
        {"BillRefNumber": "BK1", "TransAmount": "10", "TransID": ""},
        {"BillRefNumber": "BK1", "TransAmount": "10", "TransID": "R" * 41},
        "text",
    ],
)
def test_malformed_confirmations_are_refused(tenant, payload):
    with pytest.raises(topups.MalformedPayload):
        paybill.confirm_c2b(payload)


# -- reconciliation ------------------------------------------------------------------------------------


def age(tx: WalletTransaction, **delta) -> None:
    db.session.execute(
        sa.update(WalletTransaction)
        .where(WalletTransaction.id == tx.id)
        .values(created_at=utcnow() - timedelta(**delta))
    )
    db.session.commit()


def test_the_reconciler_leaves_young_requests_alone(tenant, daraja):
    tx, _ = start(tenant, daraja, suffix="99")
    assert topup_reconcile.pending_topups_due() == []
    assert reconcile_pending_topups() == {}
    assert reload(tx).status == "pending"


def test_the_reconciler_completes_a_paid_request_whose_callback_was_lost(tenant, daraja):
    tx, payload = start(tenant, daraja, suffix="99", amount=120)
    assert payload is None  # the simulator paid but never called back
    age(tx, minutes=5)
    assert reconcile_pending_topups() == {"credited": 1}
    tx = reload(tx)
    assert tx.status == "completed" and tx.meta["settled_by"] == "status_query" and tx.mpesa_reference is None
    assert balance(tenant.id) == Decimal("220.00") and topup_notifications(tenant.id) == 1
    assert reconcile_pending_topups() == {}  # nothing left to do
    # The callback turning up late only brings the receipt.
    late = {
        "Body": {
            "stkCallback": {
                "CheckoutRequestID": tx.checkout_request_id,
                "ResultCode": 0,
                "ResultDesc": "ok",
                "CallbackMetadata": {
                    "Item": [{"Name": "Amount", "Value": 120}, {"Name": "MpesaReceiptNumber", "Value": "LATE12345"}]
                },
            }
        }
    }
    assert topups.handle_stk_callback(late).status == "duplicate"
    db.session.commit()
    assert reload(tx).mpesa_reference == "LATE12345" and balance(tenant.id) == Decimal("220.00")
    assert_ledger_invariant(tenant.id)


def test_the_reconciler_fails_a_cancelled_request(tenant, daraja):
    tx, _ = start(tenant, daraja, suffix="32")  # the callback went to a dead URL
    age(tx, minutes=5)
    assert reconcile_pending_topups() == {"failed": 1}
    tx = reload(tx)
    assert tx.status == "failed" and "You cancelled" in topups.describe_topup(tx)[1]
    assert_ledger_invariant(tenant.id)


def test_the_reconciler_waits_while_m_pesa_is_still_processing_then_expires(tenant, daraja):
    tx, _ = start(tenant, daraja, suffix="88")
    age(tx, hours=2)
    assert reconcile_pending_topups() == {"pending": 1}
    assert reload(tx).status == "pending"
    age(tx, days=1, minutes=1)
    assert reconcile_pending_topups() == {"expired": 1}
    tx = reload(tx)
    assert tx.status == "failed" and topups.describe_topup(tx) == ("failed", topups.EXPIRED_REASON)
    assert balance(tenant.id) == Decimal("100.00")
    assert_ledger_invariant(tenant.id)


def test_the_reconciler_keeps_requests_pending_while_m_pesa_is_unreachable(app, tenant, daraja, monkeypatch):
    tx, _ = start(tenant, daraja, suffix="99")
    age(tx, minutes=5)
    configure(app, monkeypatch, MPESA_BASE_URL="http://127.0.0.1:9")
    assert reconcile_pending_topups() == {"pending": 1}
    assert reload(tx).status == "pending"


# -- the simulated M-Pesa (MPESA_ENV=simulated) ---------------------------------------------------------


def test_the_simulated_m_pesa_completes_the_top_up(tenant, simulated_mpesa):
    tx = topups.start_stk_topup(tenant.id, "0712 345 678", 1000)
    db.session.commit()
    tx = reload(tx)
    assert tx.status == "completed" and tx.meta["simulated"] is True and tx.simulated is True
    assert tx.mpesa_reference.startswith("SIM") and tx.checkout_request_id.startswith("ws_CO_SIM_")
    assert balance(tenant.id) == Decimal("1100.00") and topup_notifications(tenant.id) == 1
    assert_ledger_invariant(tenant.id)


def test_the_simulated_m_pesa_runs_on_the_embedded_worker(app, tenant, simulated_mpesa, monkeypatch):
    monkeypatch.setattr(rq.backend(), "mode", "thread")
    configure(app, monkeypatch, MPESA_SIMULATED_DELAY_SECONDS=0.2)
    tx = topups.start_stk_topup(tenant.id, "0712345678", 100)
    assert reload(tx).status == "pending"
    db.session.commit()
    rq.join()
    assert reload(tx).status == "completed" and balance(tenant.id) == Decimal("200.00")
    assert_ledger_invariant(tenant.id)


def test_the_simulation_never_settles_a_request_sent_to_real_daraja(app, tenant, daraja, monkeypatch):
    tx, _ = start(tenant, daraja, suffix="88")
    age(tx, minutes=5)
    configure(app, monkeypatch, MPESA_ENV="simulated", MPESA_CONSUMER_KEY=None, MPESA_SIMULATED_DELAY_SECONDS=0)
    assert simulate_stk_callback(tx.id) is None
    assert reconcile_pending_topups() == {"pending": 1}
    assert reload(tx).status == "pending" and balance(tenant.id) == Decimal("100.00")


def test_simulated_m_pesa_in_production_top_ups_are_unavailable(app, tenant, simulated_mpesa, monkeypatch):
    configure(app, monkeypatch, ENV_NAME="production")
    with pytest.raises(topups.TopupError, match="not set up"):
        topups.start_stk_topup(tenant.id, "0712345678", 100)


def test_without_credentials_and_without_simulation_top_ups_say_they_are_not_set_up(app, tenant, monkeypatch):
    configure(app, monkeypatch, MPESA_ENV="sandbox", MPESA_CONSUMER_KEY=None, MPESA_CONSUMER_SECRET=None)
    with pytest.raises(topups.TopupError, match="not set up"):
        topups.start_stk_topup(tenant.id, "0712345678", 100)
    assert counts() == (1, 0, 0) and balance(tenant.id) == Decimal("100.00")  # only the opening balance row


def pending_simulated_topup(client_id: int, amount: str, name: str, *, column: bool = True) -> WalletTransaction:
    """A pending top-up the simulated M-Pesa accepted, committed; ``column=False``: one written before the
    ``simulated`` column, which says so only in ``meta``."""
    tx = WalletTransaction(
        client_id=client_id,
        type="topup",
        amount=Decimal(amount),
        reference=f"topup:sim-{name}",
        status="pending",
        checkout_request_id=f"ws_CO_SIM_{name}",
        simulated=column,
        meta={"simulated": True, "phone": "+254712345678", "merchant_request_id": f"SIM-{name}"},
    )
    db.session.add(tx)
    db.session.commit()
    return tx


def test_the_simulated_callback_is_never_produced_in_production(app, tenant, simulated_mpesa, monkeypatch):
    tx = pending_simulated_topup(tenant.id, "100", "guard")
    configure(app, monkeypatch, ENV_NAME="production")
    assert topup_reconcile.simulated_callback(tx.id) is None
    assert simulate_stk_callback(tx.id) is None
    assert reload(tx).status == "pending" and balance(tenant.id) == Decimal("100.00")
    configure(app, monkeypatch, ENV_NAME="development")
    assert topup_reconcile.simulated_callback(tx.id) is not None  # the same row outside production: the guard decided


def test_a_simulated_request_written_before_the_simulated_column_is_still_settled(tenant, simulated_mpesa):
    """Rows from before the ``simulated`` column say so only in ``meta``: the simulation still completes them."""
    tx = pending_simulated_topup(tenant.id, "150", "legacy", column=False)
    assert reload(tx).simulated is False
    assert topup_reconcile.simulated_callback(tx.id) is not None
    age(tx, minutes=5)
    assert topup_reconcile.reconcile_topup(tx.id, tx.checkout_request_id).status == "credited"
    db.session.commit()
    assert reload(tx).status == "completed" and balance(tenant.id) == Decimal("250.00")
    assert_ledger_invariant(tenant.id)
