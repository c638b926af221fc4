"""Unmatched paybill payments: kept by the confirmation webhook, listed for platform admins, assigned once."""

from __future__ import annotations

import re
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Client, Notification, UnmatchedPayment, WalletTransaction
from bulkapp.services.billing import paybill
from tests.conftest import ledger_balance
from tests.simulators.daraja import c2b_payload

HX = {"HX-Request": "true"}
CONFIRMATION = "/webhooks/mpesa/c2b/confirmation"
PAGE = "/admin/payments/unmatched"


def keep(client, account: str = "BK-TYPO", amount: str = "250.00", trans_id: str = "RKT9XYZ123") -> int:
    response = client.post(CONFIRMATION, json=c2b_payload(account, amount, trans_id), csrf=False)
    assert response.get_json() == {"ResultCode": 0, "ResultDesc": "Success"}
    db.session.expire_all()
    return db.session.scalar(sa.select(UnmatchedPayment.id).where(UnmatchedPayment.trans_id == trans_id))


def balance(client_id: int) -> Decimal:
    db.session.expire_all()
    value = db.session.get(Client, client_id).balance
    assert value == ledger_balance(client_id)
    db.session.rollback()
    return value


def assign(client, payment_id: int, account: str, reason: str = "Payer called: typo in the account", **kw):
    prefix = f"payment-{payment_id}-"
    data = {prefix + "account_number": account, prefix + "reason": reason}
    return client.post(f"{PAGE}/{payment_id}/assign", data=data, **kw)


@pytest.fixture
def admin(login, admin_user):
    return login(admin_user)


def test_the_list_shows_payer_amount_and_reason_to_admins_only(client, admin, tenant, user, login):
    keep(client)
    keep(client, tenant.account_number, "900000", "RKT9BIG001")
    page = admin.get(PAGE).get_data(as_text=True)
    assert "Wanjiku Kamau" in page and "KSh 250.00" in page and "BK-TYPO" in page and "RKT9XYZ123" in page
    assert "No tenant has this account number" in page and "Above the largest top-up" in page
    assert "Waiting (2)" in page
    assert admin.get("/admin/").get_data(as_text=True).count(PAGE) == 1  # linked from the admin page
    client.post("/logout")
    tenant_owner = login(user)
    assert tenant_owner.get(PAGE).status_code == 404
    assert assign(tenant_owner, 1, tenant.account_number).status_code == 404


def test_assigning_credits_once_with_the_admin_and_reason(client, admin, admin_user, tenant):
    payment_id = keep(client)
    response = assign(admin, payment_id, f" {tenant.account_number.lower()} ", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and f'id="unmatched-{payment_id}"' in body
    assert "Credited KSh 250.00" in body and "Payer called: typo in the account" in body
    assert re.search(r'<nav id="unmatched-tabs"[^>]*hx-swap-oob="true"', body) and "Waiting (0)" in body
    assert balance(tenant.id) == Decimal("350.00")
    payment = db.session.get(UnmatchedPayment, payment_id)
    assert (payment.assigned_client_id, payment.assigned_by_id) == (tenant.id, admin_user.id)
    assert payment.assign_reason == "Payer called: typo in the account" and payment.assigned_at is not None
    tx = db.session.get(WalletTransaction, payment.wallet_transaction_id)
    assert (tx.client_id, tx.type, tx.amount, tx.mpesa_reference) == (tenant.id, "topup", Decimal("250"), "RKT9XYZ123")
    assert tx.meta["assigned_by"] == admin_user.id and tx.meta["kept_because"] == "unknown_account"
    notified = db.session.scalar(
        sa.select(sa.func.count()).where(Notification.client_id == tenant.id, Notification.type == "topup_success")
    )
    assert notified == 1
    db.session.rollback()

    again = assign(admin, payment_id, tenant.account_number, headers=HX)  # the double submit
    assert again.status_code == 422 and "already assigned" in again.get_data(as_text=True)
    assert balance(tenant.id) == Decimal("350.00")
    # A resent confirmation of the same payment changes nothing either.
    assert client.post(CONFIRMATION, json=c2b_payload("BK-TYPO"), csrf=False).status_code == 200
    assert balance(tenant.id) == Decimal("350.00")
    assigned = admin.get(PAGE + "?show=assigned").get_data(as_text=True)
    assert "Tenant A" in assigned and "root@platform.example" in assigned
    assert "Waiting (0)" in admin.get(PAGE).get_data(as_text=True)


def test_a_plain_form_post_works_without_javascript(client, admin, tenant):
    payment_id = keep(client)
    response = assign(admin, payment_id, tenant.account_number)
    assert response.status_code == 302 and response.headers["Location"].endswith(PAGE)
    assert "Credited KSh 250.00" in admin.get(PAGE).get_data(as_text=True)
    assert balance(tenant.id) == Decimal("350.00")


def test_a_plain_form_post_with_an_error_shows_the_whole_page_with_it(client, admin, tenant):
    """Without HTMX the list page comes back whole (200, as every plain form post), the error in place."""
    payment_id = keep(client)
    response = assign(admin, payment_id, "BKNOSUCH")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page and "Unmatched M-Pesa payments" in page
    assert "No tenant has this account number." in page and "BK-TYPO" in page
    assert balance(tenant.id) == Decimal("100.00")


@pytest.mark.parametrize(
    ("account", "reason", "message"),
    [
        ("BKNOSUCH", "typo", "No tenant has this account number."),
        ("", "typo", "Enter the account number of the tenant who paid."),
        ("{account}", "   ", "Say why this payment belongs to this tenant."),
        ("{account}", "x" * 501, "Field cannot be longer than 500 characters."),
        ("9" * 70, "typo", "Field cannot be longer than 64 characters."),
    ],
)
def test_a_bad_assignment_is_refused_with_a_clear_error(client, admin, tenant, account, reason, message):
    payment_id = keep(client)
    response = assign(admin, payment_id, account.format(account=tenant.account_number), reason, headers=HX)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert balance(tenant.id) == Decimal("100.00")
    assert db.session.get(UnmatchedPayment, payment_id).assigned_at is None


def test_a_payment_without_a_usable_amount_cannot_be_credited(client, admin, tenant):
    payment_id = keep(client, amount="10.001")
    page = admin.get(PAGE).get_data(as_text=True)
    assert "KSh 10.001" in page and "cannot be credited" in page
    response = assign(admin, payment_id, tenant.account_number, headers=HX)
    assert response.status_code == 422 and "no usable amount" in response.get_data(as_text=True)
    assert balance(tenant.id) == Decimal("100.00")


def test_unknown_or_huge_payment_ids_are_404(admin):
    assert assign(admin, 999, "BK1").status_code == 404
    assert assign(admin, 99999999999999, "BK1").status_code == 404
    assert admin.get(PAGE + "?before=99999999999999999999").status_code == 200
    assert admin.get(PAGE + "?before=²").status_code == 200


def test_concurrent_assignments_credit_once(app, client, admin_user, tenant, other_tenant):
    """Two admins (or one double click) at the same moment, to the same or another tenant: one credit."""
    payment_id = keep(client)
    admin_id = admin_user.id  # read here: the threads must not touch the test body's session
    accounts = [tenant.account_number, tenant.account_number, other_tenant.account_number]
    db.session.commit()
    barrier = threading.Barrier(3)
    results: list[str] = []

    def assign_as_admin(account: str) -> None:
        with app.app_context():
            barrier.wait()
            try:
                paybill.assign_unmatched(payment_id, account, actor_id=admin_id, reason="matched by phone")
                db.session.commit()
                results.append("credited")
            except paybill.AssignError:
                db.session.rollback()
                results.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=assign_as_admin, args=(account,)) for account in accounts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["credited", "refused", "refused"]
    assert balance(tenant.id) + balance(other_tenant.id) == Decimal("450.00")
    credits = db.session.scalar(
        sa.select(sa.func.count()).where(WalletTransaction.reference == f"unmatched:{payment_id}")
    )
    assert credits == 1


def test_nul_in_the_form_is_refused_without_a_500_and_nothing_is_credited(client, admin, tenant):
    payment_id = keep(client)
    for account, reason in ((f"BK\x00{tenant.account_number}", "typo"), (tenant.account_number, "phoned\x00in")):
        response = assign(admin, payment_id, account, reason, headers=HX)
        assert 400 <= response.status_code < 500
    assert balance(tenant.id) == Decimal("100.00")
    assert paybill.find_client_by_account(f"{tenant.account_number}\x00") is None  # never reaches the database
    with pytest.raises(paybill.AssignError):
        paybill.assign_unmatched(payment_id, "BK\ud800", actor_id=1, reason="typo")
