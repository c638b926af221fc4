"""The M-Pesa webhook endpoints: token, malformed bodies, replays, Daraja's answers, and the simulator
calling the app over real HTTP."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask import current_app

from bulkapp.extensions import db
from bulkapp.models import Client, Event, Notification, UnmatchedPayment, WalletTransaction
from bulkapp.providers import mpesa
from bulkapp.services.billing import paybill, topups, wallet
from tests.conftest import ledger_balance
from tests.simulators.daraja import DarajaSimulator, c2b_payload, configure

CALLBACK = "/webhooks/mpesa/callback"
VALIDATION = "/webhooks/mpesa/c2b/validation"
CONFIRMATION = "/webhooks/mpesa/c2b/confirmation"
ACCEPTED = {"ResultCode": 0, "ResultDesc": "Accepted"}


@pytest.fixture
def pending(tenant, daraja):
    """A pending KSh 400 STK top-up and the success callback M-Pesa sends for it."""
    tx = topups.start_stk_topup(tenant.id, "0708374100", 400)
    db.session.commit()
    daraja.wait_idle()
    return tx.id, copy.deepcopy(daraja.deliveries_of("stk")[0].payload)


def post(client, path: str, body, token: str | None = None):
    url = path + (f"?token={token}" if token is not None else "")
    if isinstance(body, str):
        return client.post(url, data=body, content_type="application/json", csrf=False)
    return client.post(url, json=body, csrf=False)


def state(client_id: int) -> tuple:
    """Everything a webhook could change for a tenant. Ends its read transaction, so the app serving
    requests on another thread is never kept waiting for SQLite's write lock."""
    db.session.expire_all()
    count = lambda model: db.session.scalar(  # noqa: E731
        sa.select(sa.func.count()).select_from(model).where(model.client_id == client_id)
    )
    statuses = tuple(
        db.session.scalars(
            sa.select(WalletTransaction.status)
            .where(WalletTransaction.client_id == client_id)
            .order_by(WalletTransaction.id)
        )
    )
    snapshot = db.session.get(Client, client_id).balance, statuses, count(Notification), count(Event)
    db.session.rollback()
    return snapshot


def assert_ledger_invariant(client_id: int) -> None:
    db.session.expire_all()
    assert db.session.get(Client, client_id).balance == ledger_balance(client_id)


# -- STK callback ----------------------------------------------------------------------------------


def test_a_wrong_or_missing_token_is_403_and_stores_nothing(app, client, tenant, pending, monkeypatch):
    configure(app, monkeypatch, MPESA_CALLBACK_TOKEN="install-secret")
    tx_id, payload = pending
    before = state(tenant.id)
    for token in (None, "", "wrong", "install-secre", "install-secret "):
        response = post(client, CALLBACK, payload, token)
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden"
    assert post(client, CALLBACK, "{not json", "wrong").status_code == 403  # the token is checked first
    assert state(tenant.id) == before
    assert db.session.get(WalletTransaction, tx_id).status == "pending"

    response = post(client, CALLBACK, payload, "install-secret")
    assert (response.status_code, response.get_json()) == (200, ACCEPTED)
    assert db.session.get(Client, tenant.id).balance == Decimal("500.00")


def test_without_a_configured_token_none_is_required(app, client, tenant, pending, monkeypatch):
    configure(app, monkeypatch, MPESA_CALLBACK_TOKEN=None)
    _, payload = pending
    assert post(client, CALLBACK, payload).get_json() == ACCEPTED
    assert state(tenant.id)[0] == Decimal("500.00")


def test_a_replayed_callback_is_acknowledged_without_a_second_effect(client, tenant, pending):
    tx_id, payload = pending
    assert post(client, CALLBACK, payload).get_json() == ACCEPTED
    after_first = state(tenant.id)
    for _ in range(3):
        response = post(client, CALLBACK, payload)
        assert (response.status_code, response.get_json()) == (200, ACCEPTED)
    assert state(tenant.id) == after_first
    assert after_first[0] == Decimal("500.00") and db.session.get(WalletTransaction, tx_id).status == "completed"
    assert_ledger_invariant(tenant.id)


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "",
        "[1, 2, 3]",
        '"Body"',
        {"Body": {}},
        {"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": 0}}},
    ],
)
def test_malformed_bodies_are_400_and_store_nothing(client, tenant, pending, body):
    before = state(tenant.id)
    response = post(client, CALLBACK, body)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "malformed"
    assert state(tenant.id) == before


def test_a_failure_callback_is_acknowledged_and_recorded(client, tenant, pending):
    tx_id, payload = pending
    callback = payload["Body"]["stkCallback"]
    callback.update(ResultCode=1032, ResultDesc="Request cancelled by user")
    del callback["CallbackMetadata"]
    assert post(client, CALLBACK, payload).get_json() == ACCEPTED
    tx = db.session.get(WalletTransaction, tx_id)
    assert tx.status == "failed" and topups.describe_topup(tx)[0] == "failed"
    assert state(tenant.id)[0] == Decimal("100.00")


def test_an_unknown_checkout_request_is_acknowledged_and_changes_nothing(client, tenant, pending):
    _, payload = pending
    payload["Body"]["stkCallback"]["CheckoutRequestID"] = "ws_CO_someone_else"
    before = state(tenant.id)
    assert post(client, CALLBACK, payload).get_json() == ACCEPTED
    assert state(tenant.id) == before


def test_only_post_is_allowed(client):
    assert client.get(CALLBACK).status_code == 405


# -- paybill (C2B) -----------------------------------------------------------------------------------


def test_c2b_validation_answers_in_darajas_shape(app, client, tenant, monkeypatch):
    configure(app, monkeypatch, MPESA_CALLBACK_TOKEN="install-secret")
    accepted = post(client, VALIDATION, c2b_payload(f" {tenant.account_number.lower()} "), "install-secret")
    assert (accepted.status_code, accepted.get_json()) == (200, {"ResultCode": "0", "ResultDesc": "Accepted"})
    rejected = post(client, VALIDATION, c2b_payload("BKNOSUCH"), "install-secret")
    assert (rejected.status_code, rejected.get_json()) == (200, {"ResultCode": "C2B00012", "ResultDesc": "Rejected"})
    assert post(client, VALIDATION, c2b_payload(tenant.account_number), "wrong").status_code == 403
    assert post(client, VALIDATION, "{nope", "install-secret").status_code == 400
    assert state(tenant.id)[0] == Decimal("100.00")


def test_c2b_duplicate_confirmations_credit_once(client, tenant):
    payload = c2b_payload(tenant.account_number, "250.00")
    for _ in range(3):
        response = post(client, CONFIRMATION, payload)
        assert (response.status_code, response.get_json()) == (200, {"ResultCode": 0, "ResultDesc": "Success"})
    balance, statuses, notifications, events = state(tenant.id)
    assert balance == Decimal("350.00") and notifications == 1 and events == 1
    assert_ledger_invariant(tenant.id)


def test_c2b_confirmation_with_a_wrong_token_or_bad_body_stores_nothing(app, client, tenant, monkeypatch):
    configure(app, monkeypatch, MPESA_CALLBACK_TOKEN="install-secret")
    before = state(tenant.id)
    assert post(client, CONFIRMATION, c2b_payload(tenant.account_number), "nope").status_code == 403
    assert post(client, CONFIRMATION, {"TransID": "X"}, "install-secret").status_code == 400
    assert state(tenant.id) == before


def kept_payments() -> list[tuple]:
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(UnmatchedPayment.trans_id, UnmatchedPayment.amount, UnmatchedPayment.reason).order_by(
            UnmatchedPayment.id
        )
    ).all()
    db.session.rollback()
    return [tuple(row) for row in rows]


@pytest.mark.parametrize(
    ("amount", "reason", "kept_amount"),
    [
        ("99999999999999999999", "above_maximum", None),  # was a 500 on PostgreSQL: Daraja resent forever
        ("900000000000000", "above_maximum", None),  # was credited on PostgreSQL
        ("150001", "above_maximum", Decimal("150001")),
        ("9", "below_minimum", Decimal("9")),
        ("10.001", "invalid_amount", None),
        ("-50", "invalid_amount", None),
        ("0", "invalid_amount", None),
        ("1e400", "above_maximum", None),
        ("NaN", "invalid_amount", None),
        ("abc", "invalid_amount", None),
        ("9" * 5000, "invalid_amount", None),
    ],
)
def test_c2b_amounts_that_cannot_be_credited_are_kept_and_acknowledged(client, tenant, amount, reason, kept_amount):
    response = post(client, CONFIRMATION, c2b_payload(tenant.account_number, amount))
    assert (response.status_code, response.get_json()) == (200, {"ResultCode": 0, "ResultDesc": "Success"})
    assert state(tenant.id)[0] == Decimal("100.00")
    assert kept_payments() == [("RKT9XYZ123", kept_amount, reason)]
    assert_ledger_invariant(tenant.id)
    validation = post(client, VALIDATION, c2b_payload(tenant.account_number, amount)).get_json()
    assert validation == {"ResultCode": "C2B00013", "ResultDesc": "Rejected"}


@pytest.mark.parametrize("amount", ["10", "150000", "1250.5", "1250.50", "1250.500", 1250])
def test_c2b_amounts_within_the_limits_are_credited_exactly(client, tenant, amount):
    response = post(client, CONFIRMATION, c2b_payload(tenant.account_number, amount))
    assert response.get_json() == {"ResultCode": 0, "ResultDesc": "Success"}
    assert state(tenant.id)[0] == Decimal("100.00") + Decimal(str(amount))
    assert kept_payments() == []


def test_c2b_payment_to_a_suspended_tenant_is_kept_not_credited(client, tenant):
    db.session.get(Client, tenant.id).status = False
    db.session.commit()
    assert post(client, CONFIRMATION, c2b_payload(tenant.account_number)).get_json()["ResultCode"] == 0
    assert post(client, CONFIRMATION, c2b_payload(tenant.account_number)).get_json()["ResultCode"] == 0  # resent: once
    assert kept_payments() == [("RKT9XYZ123", Decimal("250.00"), "suspended")]
    assert state(tenant.id)[0] == Decimal("100.00")


def test_a_paybill_reference_conflict_is_kept_not_credited(client, tenant):
    """The ledger reference ``mpesa:<TransID>`` already names another change: nothing is credited, no 5xx."""
    wallet.credit(tenant.id, "5.00", reference="mpesa:RKT9XYZ123", description="earlier manual entry")
    db.session.commit()
    response = post(client, CONFIRMATION, c2b_payload(tenant.account_number, "250.00"))
    assert (response.status_code, response.get_json()) == (200, {"ResultCode": 0, "ResultDesc": "Success"})
    assert state(tenant.id)[0] == Decimal("105.00")
    assert kept_payments() == [("RKT9XYZ123", Decimal("250.00"), "reference_conflict")]
    assert_ledger_invariant(tenant.id)


def test_a_confirmation_whose_recording_fails_is_kept_for_an_admin(client, tenant, monkeypatch, caplog):
    """An unexpected error while crediting: Daraja still gets Success (it was paid), nothing is credited, and
    the payment waits for an admin instead of living only in the log."""

    def broken_credit(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(paybill.wallet, "credit", broken_credit)
    response = post(client, CONFIRMATION, c2b_payload(tenant.account_number, "250.00"))
    assert (response.status_code, response.get_json()) == (200, {"ResultCode": 0, "ResultDesc": "Success"})
    assert kept_payments() == [("RKT9XYZ123", Decimal("250.00"), "not_recorded")]
    assert state(tenant.id)[0] == Decimal("100.00")
    assert "RKT9XYZ123" in caplog.text and "250.00" in caplog.text  # the whole payload is in the log
    monkeypatch.undo()
    resent = post(client, CONFIRMATION, c2b_payload(tenant.account_number, "250.00"))  # Daraja resends: once
    assert resent.get_json()["ResultCode"] == 0 and state(tenant.id)[0] == Decimal("100.00")
    assert kept_payments() == [("RKT9XYZ123", Decimal("250.00"), "not_recorded")]


@pytest.mark.parametrize("bad", ["\u0000", "\ud800"])
def test_c2b_confirmation_with_nul_or_lone_surrogates_is_kept_and_acknowledged(client, tenant, bad):
    payload = c2b_payload(f"BK{bad}NOSUCH", "250.00", trans_id=f"RKT{bad}1")
    payload["FirstName"] = f"Ja{bad}ne"
    body = json.dumps(payload)  # the escapes travel as JSON text, as a hostile sender would write them
    response = post(client, CONFIRMATION, body)
    assert (response.status_code, response.get_json()) == (200, {"ResultCode": 0, "ResultDesc": "Success"})
    assert kept_payments() == [("RKT\ufffd1", Decimal("250.00"), "unknown_account")]
    stk = {"Body": {"stkCallback": {"CheckoutRequestID": f"ws_CO_{bad}", "ResultCode": 1032, "ResultDesc": bad}}}
    assert post(client, CALLBACK, json.dumps(stk)).get_json() == ACCEPTED
    assert post(client, VALIDATION, body).get_json()["ResultCode"] == "C2B00012"


@pytest.fixture
def proxied_app(app):
    """The app behind one reverse proxy (PROXY_HOPS=1), accepting callbacks from Safaricom's addresses only."""
    from bulkapp import create_app
    from bulkapp.config import parse_networks
    from tests.conftest import CSRFClient, test_settings

    allowed = parse_networks("196.201.214.0/24, 2001:db8::/32")  # as Config reads MPESA_ALLOWED_IPS
    proxied = create_app(test_settings(PROXY_HOPS=1, MPESA_ALLOWED_IPS=allowed))
    proxied.test_client_class = CSRFClient
    return proxied


def test_callbacks_only_from_mpesa_allowed_ips_as_seen_through_the_proxy(proxied_app, tenant):
    client = proxied_app.test_client()
    payload = c2b_payload(tenant.account_number)
    forged = post_from(client, payload, "203.0.113.9")
    assert forged.status_code == 403 and forged.is_json
    # A spoofed header in front of the proxy's own entry does not help: only the last hop counts.
    assert post_from(client, payload, "196.201.214.200, 203.0.113.9").status_code == 403
    assert state(tenant.id)[0] == Decimal("100.00") and kept_payments() == []
    allowed = post_from(client, payload, "196.201.214.200")
    assert allowed.get_json() == {"ResultCode": 0, "ResultDesc": "Success"}
    assert post_from(client, c2b_payload(tenant.account_number, trans_id="RKT9V6"), "2001:db8::7").status_code == 200
    assert state(tenant.id)[0] == Decimal("600.00")


def post_from(client, body, forwarded_for: str):
    return client.post(CONFIRMATION, json=body, headers={"X-Forwarded-For": forwarded_for}, csrf=False)


# -- end to end: the simulator calls the app over HTTP -------------------------------------------------


@pytest.fixture
def daraja_live(app, live_server, monkeypatch):
    """A Daraja simulator whose callbacks reach the app served on loopback, with an install token."""
    with DarajaSimulator(callback_delay=0.3) as sim:
        configure(
            app,
            monkeypatch,
            **sim.app_settings(),
            MPESA_CALLBACK_BASE_URL=live_server,
            MPESA_CALLBACK_TOKEN="e2e-token",
        )
        sim.live_server = live_server
        yield sim


def test_stk_top_up_end_to_end_with_duplicate_deliveries(tenant, daraja_live):
    daraja_live.callback_copies = 2  # M-Pesa delivers the same callback twice, at the same moment
    tenant_id = tenant.id
    tx = topups.start_stk_topup(tenant_id, "+254 708 374 100", 900)
    tx_id = tx.id
    db.session.commit()
    daraja_live.wait_idle()

    deliveries = daraja_live.deliveries_of("stk")
    assert len(deliveries) == 2
    assert all(d.url.endswith("/webhooks/mpesa/callback?token=e2e-token") for d in deliveries)
    assert [(d.status, d.body) for d in deliveries] == [(200, ACCEPTED), (200, ACCEPTED)]
    balance, statuses, notifications, events = state(tenant_id)
    assert balance == Decimal("1000.00") and notifications == 1 and events == 1
    tx = db.session.get(WalletTransaction, tx_id)
    assert tx.status == "completed" and tx.mpesa_reference.startswith("SIM")
    assert topups.describe_topup(tx)[0] == "completed"
    assert_ledger_invariant(tenant_id)


def test_stk_cancellation_end_to_end(tenant, daraja_live):
    tx = topups.start_stk_topup(tenant.id, "0708374132", 900)
    tx_id, tenant_id = tx.id, tenant.id
    db.session.commit()
    daraja_live.wait_idle()
    assert [d.status for d in daraja_live.deliveries_of("stk")] == [200]
    state_, sentence = topups.describe_topup(db.session.get(WalletTransaction, tx_id))
    assert state_ == "failed" and sentence.startswith("You cancelled the M-Pesa prompt")
    assert state(tenant_id)[0] == Decimal("100.00")


def register_c2b(sim: DarajaSimulator) -> None:
    base = f"{sim.live_server}/webhooks/mpesa/c2b"
    mpesa.client_for(current_app).register_c2b_urls(
        confirmation_url=f"{base}/confirmation?token=e2e-token", validation_url=f"{base}/validation?token=e2e-token"
    )


def test_paybill_payment_end_to_end_with_duplicate_confirmations(tenant, daraja_live):
    register_c2b(daraja_live)
    tenant_id, account = tenant.id, tenant.account_number
    db.session.commit()
    trans_id = daraja_live.pay_bill(account.lower(), 300, confirmations=2)
    daraja_live.wait_idle()

    [validation] = daraja_live.deliveries_of("c2b_validation")
    assert validation.body == {"ResultCode": "0", "ResultDesc": "Accepted"}
    confirmations = daraja_live.deliveries_of("c2b_confirmation")
    assert [d.status for d in confirmations] == [200, 200]
    balance, _, notifications, events = state(tenant_id)
    assert balance == Decimal("400.00") and notifications == 1 and events == 1
    row = db.session.scalar(sa.select(WalletTransaction).where(WalletTransaction.mpesa_reference == trans_id))
    assert row.client_id == tenant_id and row.amount == Decimal("300")
    assert_ledger_invariant(tenant_id)


def test_paybill_payment_to_an_unknown_account_is_rejected_end_to_end(tenant, daraja_live):
    register_c2b(daraja_live)
    tenant_id = tenant.id
    before = state(tenant_id)
    daraja_live.pay_bill("BKNOSUCH", 300)
    daraja_live.wait_idle()
    [validation] = daraja_live.deliveries_of("c2b_validation")
    assert validation.body == {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
    assert daraja_live.deliveries_of("c2b_confirmation") == []
    assert state(tenant_id) == before
