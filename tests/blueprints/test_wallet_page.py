"""The wallet page: balance, M-Pesa top-ups and their live row, the alert level, history, CSV export."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Client, Notification, User, WalletTransaction
from bulkapp.services.billing import ledger_views, topups, wallet
from tests.conftest import ledger_balance
from tests.simulators.daraja import configure

HX = {"HX-Request": "true"}


@pytest.fixture
def wallet_client(login, user):
    db.session.get(User, user.id).phone = "+254712345678"
    db.session.commit()
    return login(user)


def balance(client_id: int) -> Decimal:
    db.session.expire_all()
    value = db.session.get(Client, client_id).balance
    db.session.rollback()
    return value


def assert_ledger_invariant(client_id: int) -> None:
    db.session.expire_all()
    assert db.session.get(Client, client_id).balance == ledger_balance(client_id)
    db.session.rollback()


def topup_rows(client_id: int) -> list[WalletTransaction]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(WalletTransaction)
            .where(WalletTransaction.client_id == client_id, WalletTransaction.type == "topup")
            .order_by(WalletTransaction.id)
        )
    )


def row_html(body: str, tx_id: int) -> str:
    match = re.search(rf'<tr id="tx-{tx_id}".*?</tr>', body, re.S)
    assert match, f"row tx-{tx_id} not in the response"
    return match.group(0)


def input_value(body: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', body)
    assert match, f"no input {name}"
    return match.group(1)


# -- the page --------------------------------------------------------------------------------------------


def test_the_page_shows_balance_units_paybill_and_a_prefilled_form(app, tenant, wallet_client):
    body = wallet_client.get("/wallet/").get_data(as_text=True)
    assert "<h1>Wallet</h1>" in body and 'href="/wallet/"' in body  # the nav shows Wallet
    balance_card = re.search(r'<article id="wallet-balance".*?</article>', body, re.S).group(0)
    assert "KSh 100.00" in balance_card and "125 SMS units at KSh 0.80 per unit" in balance_card
    paybill = app.config["MPESA_PAYBILL"]
    assert (
        f'paybill <strong class="code">{paybill}</strong>, account <strong class="code">{tenant.account_number}' in body
    )
    assert input_value(body, "phone") == "0712 345 678"  # the user's own phone, as people type it
    assert 'hx-post="/wallet/topup"' in body and 'hx-target="this"' in body
    assert "KSh 500</button>" in body and "from KSh 10 to KSh 150,000" in body  # quick picks within the limits
    assert input_value(body, "threshold") == "100.00"
    assert "Opening balance" in body and "+100.00" in body  # the first ledger row


def test_signed_out_users_go_to_the_login_page(client):
    response = client.get("/wallet/")
    assert response.status_code == 302 and "/login" in response.location


def test_a_platform_admin_has_no_wallet(login, admin_user):
    response = login(admin_user).get("/wallet/")
    assert response.status_code == 302 and response.location.endswith("/admin/")


def test_quick_pick_fills_the_amount_and_keeps_the_phone(wallet_client):
    response = wallet_client.get("/wallet/topup?amount=2500&phone=0799+000+111", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<form id="topup-form"')
    assert input_value(body, "amount") == "2500" and input_value(body, "phone") == "0799 000 111"
    assert wallet_client.get("/wallet/topup?amount=500").status_code == 302  # only a fragment


# -- top-ups ---------------------------------------------------------------------------------------------


def test_top_up_through_the_simulated_m_pesa(tenant, wallet_client, simulated_mpesa):
    response = wallet_client.post("/wallet/topup", data={"phone": "0712 345 678", "amount": "500"}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    (tx,) = topup_rows(tenant.id)
    assert tx.status == "completed" and tx.mpesa_reference.startswith("SIM") and tx.amount == Decimal("500")
    assert body.lstrip().startswith('<form id="topup-form"')
    assert "KSh 500.00 was added to your wallet." in body
    assert re.search(r'<hx-partial hx-target="#history-rows" hx-swap="afterbegin">\s*<tr id="tx-', body)
    assert '<hx-partial hx-target="#history-empty" hx-swap="innerHTML"></hx-partial>' in body
    row = row_html(body, tx.id)
    assert "Completed" in row and "every 2s" not in row and tx.mpesa_reference in row
    assert "100.00 → 600.00" in row and "+500.00" in row
    assert re.search(r'id="balance-badge"[^>]*hx-swap-oob="true"', body) and "KSh 600.00" in body
    assert '<article id="wallet-balance" class="card wallet-balance" hx-swap-oob="true">' in body
    assert json.loads(response.headers["HX-Trigger"]) == {"notifications-changed": True}
    assert input_value(body, "amount") == "" and input_value(body, "phone") == "0712 345 678"
    assert balance(tenant.id) == Decimal("600.00")
    notes = db.session.scalars(sa.select(Notification.type).where(Notification.client_id == tenant.id)).all()
    assert notes == ["topup_success"]
    assert_ledger_invariant(tenant.id)


def test_a_pending_top_up_row_polls_until_m_pesa_answers_then_updates_the_balance(tenant, wallet_client, daraja):
    response = wallet_client.post("/wallet/topup", data={"phone": "0708374100", "amount": "400"}, headers=HX)
    body = response.get_data(as_text=True)
    (tx,) = topup_rows(tenant.id)
    assert response.status_code == 200 and tx.status == "pending"
    row = row_html(body, tx.id)
    assert f'hx-get="/wallet/topups/{tx.id}" hx-trigger="every 2s" hx-target="this" hx-swap="outerHTML"' in row
    assert "Pending" in row and "Check +254708374100 and enter your M-Pesa PIN" in row
    assert "balance-badge" not in body and "HX-Trigger" not in response.headers
    assert "Check +254708374100" in body.split("</form>")[0]  # the form says what to do next

    poll = wallet_client.get(f"/wallet/topups/{tx.id}", headers=HX)
    assert poll.status_code == 200 and poll.get_data(as_text=True).lstrip().startswith(f'<tr id="tx-{tx.id}"')
    assert "every 2s" in poll.get_data(as_text=True) and "HX-Trigger" not in poll.headers
    assert "topup-status" not in poll.get_data(as_text=True)  # the form's line changes only at the end
    assert "balance-badge" not in poll.get_data(as_text=True)

    daraja.wait_idle()
    payload = copy.deepcopy(daraja.deliveries_of("stk")[0].payload)
    assert topups.handle_stk_callback(payload).status == "credited"
    db.session.commit()

    done = wallet_client.get(f"/wallet/topups/{tx.id}", headers=HX)
    body = done.get_data(as_text=True)
    row = row_html(body, tx.id)
    assert "Completed" in row and "hx-trigger" not in row and "KSh 400.00 was added to your wallet." in row
    status = re.search(r'<div id="topup-status" hx-swap-oob="true">.*?</div>\s*</div>', body, re.S).group(0)
    assert "alert-success" in status and "KSh 400.00 was added to your wallet." in status
    assert re.search(r'id="balance-badge"[^>]*hx-swap-oob="true"', body) and "KSh 500.00" in body
    assert 'id="wallet-balance" class="card wallet-balance" hx-swap-oob="true"' in body
    assert json.loads(done.headers["HX-Trigger"]) == {"notifications-changed": True}
    assert balance(tenant.id) == Decimal("500.00")
    assert_ledger_invariant(tenant.id)


def test_a_cancelled_prompt_stops_polling_and_says_why(tenant, wallet_client, daraja):
    wallet_client.post("/wallet/topup", data={"phone": "0708374132", "amount": "400"}, headers=HX)
    (tx,) = topup_rows(tenant.id)
    daraja.wait_idle()
    assert topups.handle_stk_callback(copy.deepcopy(daraja.deliveries_of("stk")[0].payload)).status == "failed"
    db.session.commit()
    done = wallet_client.get(f"/wallet/topups/{tx.id}", headers=HX)
    body = done.get_data(as_text=True)
    row = row_html(body, tx.id)
    assert "Failed" in row and "You cancelled the M-Pesa prompt. Nothing was charged" in row
    assert "hx-trigger" not in row and "balance-badge" not in body and "HX-Trigger" not in done.headers
    assert re.search(r'<div id="topup-status" hx-swap-oob="true">\s*<div class="alert alert-error"', body)
    assert balance(tenant.id) == Decimal("100.00")
    assert_ledger_invariant(tenant.id)


def test_a_prompt_m_pesa_refuses_shows_a_failed_row_at_once(tenant, wallet_client, daraja):
    response = wallet_client.post("/wallet/topup", data={"phone": "0708374198", "amount": "400"}, headers=HX)
    body = response.get_data(as_text=True)
    (tx,) = topup_rows(tenant.id)
    assert response.status_code == 200 and tx.status == "failed"
    row = row_html(body, tx.id)
    assert "Failed" in row and "hx-trigger" not in row
    assert re.search(r'<div id="topup-status" >\s*<div class="alert alert-error"', body)
    assert "HX-Trigger" not in response.headers and balance(tenant.id) == Decimal("100.00")
    assert_ledger_invariant(tenant.id)


def test_the_same_prompt_twice_is_refused_as_a_double_submit(tenant, wallet_client, daraja):
    data = {"phone": "0708374100", "amount": "400"}
    assert wallet_client.post("/wallet/topup", data=data, headers=HX).status_code == 200
    again = wallet_client.post("/wallet/topup", data=data, headers=HX)
    assert again.status_code == 422 and "A payment prompt was just sent to this number" in again.get_data(as_text=True)
    assert len(topup_rows(tenant.id)) == 1


@pytest.mark.parametrize(
    ("phone", "amount", "field", "message"),
    [
        ("12345", "500", "phone", "Enter your M-Pesa number, for example 0712 345 678."),
        ("020 123 4567", "500", "phone", "not a mobile number"),
        ("", "500", "phone", "The number is empty."),
        ("0712345678", "12.50", "amount", "Enter the amount in whole shillings"),
        ("0712345678", "abc", "amount", "Enter the amount in whole shillings"),
        ("0712345678", "", "amount", "Enter the amount in whole shillings"),
        ("0712345678", "5", "amount", "The smallest top-up is KSh 10."),
        ("0712345678", "150001", "amount", "The largest top-up is KSh 150,000."),
        ("0712345678", "NaN", "amount", "Enter the amount in whole shillings"),
        ("0712345678", "9" * 30, "amount", "Enter the amount in whole shillings"),
    ],
)
def test_bad_phone_or_amount_re_renders_the_form_with_422_and_keeps_the_input(
    tenant, wallet_client, simulated_mpesa, phone, amount, field, message
):
    response = wallet_client.post("/wallet/topup", data={"phone": phone, "amount": amount}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and body.lstrip().startswith('<form id="topup-form"')
    error = re.search(
        rf'<label class="field has-error">\s*<span>[^<]*</span>\s*<input[^>]*name="{field}".*?</label>', body, re.S
    )
    assert error and message in error.group(0), body
    assert input_value(body, "phone") == phone and input_value(body, "amount") == amount
    assert topup_rows(tenant.id) == []
    assert balance(tenant.id) == Decimal("100.00")


def test_a_plain_form_post_works_without_javascript(tenant, wallet_client, simulated_mpesa):
    bad = wallet_client.post("/wallet/topup", data={"phone": "0712345678", "amount": "1"})
    assert bad.status_code == 200 and "<html" in bad.get_data(as_text=True)
    assert "The smallest top-up is KSh 10." in bad.get_data(as_text=True)
    good = wallet_client.post("/wallet/topup", data={"phone": "0712345678", "amount": "50"})
    assert good.status_code == 302 and good.location.endswith("/wallet/")
    assert "KSh 50.00 was added to your wallet." in wallet_client.get("/wallet/").get_data(as_text=True)
    assert_ledger_invariant(tenant.id)


def test_a_suspended_account_cannot_top_up(tenant, wallet_client, simulated_mpesa):
    db.session.get(Client, tenant.id).status = False
    db.session.commit()
    response = wallet_client.post("/wallet/topup", data={"phone": "0712345678", "amount": "500"}, headers=HX)
    assert response.status_code == 422
    assert "This account is suspended" in response.get_data(as_text=True) and topup_rows(tenant.id) == []


def test_top_ups_need_the_csrf_token(tenant, wallet_client, simulated_mpesa):
    response = wallet_client.post("/wallet/topup", data={"phone": "0712345678", "amount": "500"}, csrf=False)
    assert response.status_code == 400 and topup_rows(tenant.id) == []


def test_top_ups_are_rate_limited_per_tenant(tenant, wallet_client, simulated_mpesa):
    for _ in range(10):
        wallet_client.post("/wallet/topup", data={"phone": "0712345678", "amount": "1"}, headers=HX)
    response = wallet_client.post("/wallet/topup", data={"phone": "0712345678", "amount": "100"}, headers=HX)
    assert response.status_code == 429 and response.headers["HX-Retarget"] == "#flash"
    assert topup_rows(tenant.id) == []


def test_another_tenants_top_up_row_is_404(tenant, other_tenant, login, simulated_mpesa):
    theirs = topups.start_stk_topup(other_tenant.id, "0712345678", 100)
    db.session.commit()
    client = login(tenant.test_user)
    assert client.get(f"/wallet/topups/{theirs.id}", headers=HX).status_code == 404
    assert client.get("/wallet/topups/999999", headers=HX).status_code == 404
    opening = db.session.scalar(sa.select(WalletTransaction.id).where(WalletTransaction.client_id == tenant.id))
    assert client.get(f"/wallet/topups/{opening}", headers=HX).status_code == 404  # not a top-up


def test_opening_a_top_up_row_url_in_the_browser_goes_to_the_wallet(tenant, wallet_client, simulated_mpesa):
    tx = topups.start_stk_topup(tenant.id, "0712345678", 100)
    db.session.commit()
    response = wallet_client.get(f"/wallet/topups/{tx.id}")
    assert response.status_code == 302 and response.location.endswith("/wallet/")


# -- low-balance alert -----------------------------------------------------------------------------------


def threshold_setting(client_id: int):
    db.session.expire_all()
    value = db.session.get(Client, client_id).settings.get("low_balance_threshold")
    db.session.rollback()
    return value


def test_setting_the_low_balance_threshold(tenant, wallet_client):
    response = wallet_client.post("/wallet/threshold", data={"threshold": "1,250.5"}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<form id="low-balance-form"')
    assert "Saved. We will alert you below KSh 1,250.50." in body and input_value(body, "threshold") == "1250.50"
    assert threshold_setting(tenant.id) == "1250.50"
    assert wallet.low_balance_threshold({"low_balance_threshold": threshold_setting(tenant.id)}) == Decimal("1250.50")

    off = wallet_client.post("/wallet/threshold", data={"threshold": "0"}, headers=HX).get_data(as_text=True)
    assert "Saved. Low-balance alerts are off." in off and threshold_setting(tenant.id) == "0.00"
    # With the alert off, going to a tiny balance notifies nobody.
    wallet.debit(tenant.id, "99.50", reference="t:spend")
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0
    assert_ledger_invariant(tenant.id)


def test_the_threshold_alerts_below_the_new_level(tenant, wallet_client):
    wallet_client.post("/wallet/threshold", data={"threshold": "60"}, headers=HX)
    wallet.debit(tenant.id, "30", reference="t:one")  # 70: above 60
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0
    wallet.debit(tenant.id, "15", reference="t:two")  # 55: crosses 60
    db.session.commit()
    assert db.session.scalars(sa.select(Notification.type)).all() == ["low_balance"]
    assert_ledger_invariant(tenant.id)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5", "cannot be negative"),
        ("abc", "Enter the amount in shillings"),
        ("", "Enter the amount in shillings"),
        ("1.234", "at most two decimal places"),
        ("1e3", "Enter the amount in shillings"),
        ("Infinity", "Enter the amount in shillings"),
        ("2000000", "at most KSh 1,000,000"),
    ],
)
def test_a_bad_threshold_is_refused_with_422_and_the_input_kept(tenant, wallet_client, value, message):
    response = wallet_client.post("/wallet/threshold", data={"threshold": value}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and message in body, body
    assert input_value(body, "threshold") == value
    assert threshold_setting(tenant.id) == "100.00"


def test_the_threshold_keeps_other_settings(tenant, wallet_client):
    client = db.session.get(Client, tenant.id)
    client.settings = {**client.settings, "onfon": {"api_key": "x"}}
    db.session.commit()
    wallet_client.post("/wallet/threshold", data={"threshold": "42"}, headers=HX)
    db.session.expire_all()
    assert db.session.get(Client, tenant.id).settings == {"low_balance_threshold": "42.00", "onfon": {"api_key": "x"}}


# -- history: filters, pages, export ---------------------------------------------------------------------


def at(tx: WalletTransaction, when: datetime) -> WalletTransaction:
    tx.created_at = when
    return tx


@pytest.fixture
def ledger(tenant, other_tenant):
    """A varied ledger (opening 100.00 first): a charge, a refund, an adjustment, a failed top-up."""
    day = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)  # 2 March 00:30 in Nairobi
    rows = {
        "charge": at(wallet.debit(tenant.id, "0.875", reference="msg:1", description="SMS to +254712345678"),
                     day - timedelta(days=1)),
        "refund": at(wallet.refund(tenant.id, "0.875", reference="refund:msg:1", description="=HYPERLINK(evil)"),
                     day),
        "adjustment": at(wallet.adjust(tenant.id, "-20", reason="Duplicate credit", actor_id=1, reference="adj:1"),
                         day + timedelta(days=1)),
    }  # fmt: skip
    failed = WalletTransaction(
        client_id=tenant.id, type="topup", amount=Decimal("50"), reference="topup:failed", status="failed",
        description="M-Pesa top-up", meta={"reason": "You cancelled the M-Pesa prompt."},
        checkout_request_id="ws_CO_failed", created_at=day + timedelta(days=2),
    )  # fmt: skip
    db.session.add(failed)
    wallet.credit(other_tenant.id, "999", reference="theirs:1", description="Other tenant's money")
    db.session.commit()
    rows["failed"] = failed
    return {name: row.id for name, row in rows.items()}


def history_ids(client, query: str = "", headers=None) -> list[int]:
    response = client.get(f"/wallet/?{query}", headers=headers or HX)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [int(i) for i in re.findall(r'<tr id="tx-(\d+)"', response.get_data(as_text=True))]


def test_history_rows_show_type_signed_amount_balances_reference_and_status(tenant, wallet_client, ledger):
    body = wallet_client.get("/wallet/", headers=HX).get_data(as_text=True)
    assert body.lstrip().startswith('<section id="wallet-history"')
    charge = row_html(body, ledger["charge"])
    assert "Message charge" in charge and 'class="num amount amount-out">-0.875<' in charge
    assert "100.00 → 99.125" in charge and "msg:1" in charge and "Completed" in charge
    assert "02 Mar 2026" not in charge and "01 Mar 2026, 00:30" in charge  # Nairobi time
    adjustment = row_html(body, ledger["adjustment"])
    assert "Adjustment" in adjustment and "Duplicate credit" in adjustment and "-20.00" in adjustment
    failed = row_html(body, ledger["failed"])
    assert "Failed" in failed and "You cancelled the M-Pesa prompt." in failed and "—" in failed
    assert "hx-trigger" not in failed
    assert "Other tenant" not in body
    assert "=HYPERLINK(evil)" in row_html(body, ledger["refund"])  # shown as text (autoescaped)


def test_history_filters(tenant, wallet_client, ledger):
    opening = min(history_ids(wallet_client))
    assert history_ids(wallet_client) == [
        ledger["failed"],
        ledger["adjustment"],
        ledger["refund"],
        ledger["charge"],
        opening,
    ]
    assert history_ids(wallet_client, "type=deduction") == [ledger["charge"]]
    assert history_ids(wallet_client, "type=adjustment") == [ledger["adjustment"], opening]
    assert history_ids(wallet_client, "status=failed") == [ledger["failed"]]
    assert history_ids(wallet_client, "type=topup&status=completed") == []
    # Days are the user's (Nairobi): the refund at 21:30 UTC on 1 March belongs to 2 March.
    assert history_ids(wallet_client, "date_from=2026-03-02&date_to=2026-03-02") == [ledger["refund"]]
    assert history_ids(wallet_client, "date_to=2026-03-01") == [ledger["charge"]]
    assert history_ids(wallet_client, "date_from=2026-03-03&date_to=2026-03-31") == [
        ledger["failed"],
        ledger["adjustment"],
    ]
    empty = wallet_client.get("/wallet/?type=refund&status=pending", headers=HX).get_data(as_text=True)
    assert "No transactions match these filters." in empty


def test_dates_follow_the_users_own_timezone(tenant, wallet_client, ledger):
    db.session.get(User, tenant.test_user.id).timezone = "UTC"
    db.session.commit()
    assert history_ids(wallet_client, "date_from=2026-03-01&date_to=2026-03-01") == [ledger["refund"]]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("type=bogus", "Not a valid choice"),
        ("status=lost", "Not a valid choice"),
        ("date_from=2026-13-45", "Use a date like 2026-03-31."),
        ("date_to=yesterday", "Use a date like 2026-03-31."),
        ("date_from=2026-03-05&date_to=2026-03-01", "The end date is before the start date."),
    ],
)
def test_bad_filters_say_what_is_wrong_and_show_nothing(tenant, wallet_client, ledger, query, message):
    response = wallet_client.get(f"/wallet/?{query}", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and message in body
    assert 'id="tx-' not in body and "Fix the filter above" in body
    page = wallet_client.get(f"/wallet/?{query}")
    assert page.status_code == 200 and message in page.get_data(as_text=True)
    export = wallet_client.get(f"/wallet/history.csv?{query}")
    assert export.status_code == 400 and message in export.get_data(as_text=True)


def fill_ledger(client_id: int, count: int) -> list[int]:
    """``count`` one-shilling charges; returns their ids, oldest first."""
    ids = [wallet.debit(client_id, "1", reference=f"fill:{n}").id for n in range(count)]
    db.session.commit()
    return ids


def test_exactly_one_page_has_no_older_link(tenant, wallet_client):
    fill_ledger(tenant.id, ledger_views.PAGE_SIZE - 1)  # + the opening row = one full page
    body = wallet_client.get("/wallet/", headers=HX).get_data(as_text=True)
    assert body.count('<tr id="tx-') == ledger_views.PAGE_SIZE and "Older →" not in body and "Newest" not in body


def test_keyset_pages_walk_the_whole_ledger_once(tenant, wallet_client):
    ids = fill_ledger(tenant.id, ledger_views.PAGE_SIZE)  # + opening = one page and one row
    opening = ids[0] - 1
    body = wallet_client.get("/wallet/", headers=HX).get_data(as_text=True)
    first = [int(i) for i in re.findall(r'<tr id="tx-(\d+)"', body)]
    assert first == list(reversed(ids))
    older = re.search(r'<a href="(/wallet/\?cursor=(\d+))"', body)
    assert older and int(older.group(2)) == ids[0]
    second = wallet_client.get(older.group(1), headers=HX).get_data(as_text=True)
    assert [int(i) for i in re.findall(r'<tr id="tx-(\d+)"', second)] == [opening]
    assert "Older →" not in second and "← Newest" in second
    assert history_ids(wallet_client, f"cursor={opening}") == []
    beyond = wallet_client.get(f"/wallet/?cursor={opening}", headers=HX).get_data(as_text=True)
    assert "No older transactions." in beyond


def test_older_links_keep_the_filters(tenant, wallet_client):
    fill_ledger(tenant.id, ledger_views.PAGE_SIZE + 2)
    body = wallet_client.get("/wallet/?type=deduction", headers=HX).get_data(as_text=True)
    link = re.search(r'<a href="(/wallet/\?[^"]*cursor=[^"]*)"', body).group(1).replace("&amp;", "&")
    assert "type=deduction" in link
    assert len(history_ids(wallet_client, link.split("?", 1)[1])) == 2


@pytest.mark.parametrize("cursor", ["abc", "-5", "0", "1e9", "99999999999999999999999", "²", "١٢"])
def test_a_mangled_cursor_shows_the_newest_page(tenant, wallet_client, cursor):
    fill_ledger(tenant.id, 2)
    assert len(history_ids(wallet_client, f"cursor={cursor}")) == 3


def test_history_page_service_boundaries(tenant):
    ids = fill_ledger(tenant.id, 4)
    filters = ledger_views.HistoryFilters()
    page = ledger_views.history_page(tenant.id, filters, limit=5)
    assert len(page.rows) == 5 and page.next_cursor is None
    page = ledger_views.history_page(tenant.id, filters, limit=2)
    assert [r.id for r in page.rows] == [ids[3], ids[2]] and page.next_cursor == ids[2]
    page = ledger_views.history_page(tenant.id, filters, cursor=page.next_cursor, limit=2)
    assert [r.id for r in page.rows] == [ids[1], ids[0]] and page.next_cursor == ids[0]
    page = ledger_views.history_page(tenant.id, filters, cursor=page.next_cursor, limit=2)
    assert len(page.rows) == 1 and page.next_cursor is None
    with pytest.raises(ValueError):
        ledger_views.HistoryFilters(type="bogus")


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_csv_export_is_exact_and_filtered(tenant, wallet_client, ledger):
    account_number = tenant.account_number
    response = wallet_client.get("/wallet/history.csv")
    # Read the stream before the test body touches the database: until it is consumed, the test client
    # keeps the request's app context pushed.
    assert response.is_streamed
    rows = read_csv(response)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith(f'attachment; filename="wallet-{account_number}-') and disposition.endswith('.csv"')
    assert rows[0] == list(ledger_views.CSV_HEADER)
    by_id = {int(row[0]): row for row in rows[1:]}
    assert list(by_id) == [ledger["failed"], ledger["adjustment"], ledger["refund"], ledger["charge"], min(by_id)]
    assert by_id[ledger["charge"]] == [
        str(ledger["charge"]), "2026-03-01T00:30:00+03:00", "deduction", "completed",
        "-0.875", "100.00", "99.125", "msg:1", "", "SMS to +254712345678", "",
    ]  # fmt: skip
    assert by_id[ledger["refund"]][4:7] == ["0.875", "99.125", "100.00"]
    assert by_id[ledger["refund"]][9] == "'=HYPERLINK(evil)"  # never a formula in a spreadsheet
    assert by_id[ledger["adjustment"]][2:7] == ["adjustment", "completed", "-20.00", "100.00", "80.00"]
    assert by_id[ledger["adjustment"]][9] == "Duplicate credit"
    assert by_id[ledger["failed"]][3:10] == [
        "failed",
        "50.00",
        "",
        "",
        "topup:failed",
        "",
        "You cancelled the M-Pesa prompt.",
    ]
    assert sum(Decimal(row[4]) for row in rows[1:] if row[3] == "completed") == ledger_balance(tenant.id)
    assert "Other tenant" not in response.get_data(as_text=True)

    only = read_csv(wallet_client.get("/wallet/history.csv?type=deduction&date_to=2026-03-01"))
    assert [int(row[0]) for row in only[1:]] == [ledger["charge"]]


def test_csv_export_streams_in_chunks_without_losing_rows(tenant):
    ids = fill_ledger(tenant.id, 7)
    text = "".join(ledger_views.history_csv(tenant.id, ledger_views.HistoryFilters(), chunk=3))
    rows = list(csv.reader(io.StringIO(text)))
    assert [int(row[0]) for row in rows[1:]] == list(reversed(ids)) + [ids[0] - 1]


def test_csv_export_of_nothing_is_just_the_header(tenant, wallet_client):
    rows = read_csv(wallet_client.get("/wallet/history.csv?status=pending"))
    assert rows == [list(ledger_views.CSV_HEADER)]


def test_exact_amounts():
    assert ledger_views.exact_amount(Decimal("500.0000")) == "500.00"
    assert ledger_views.exact_amount(Decimal("-0.8750")) == "-0.875"
    assert ledger_views.exact_amount(Decimal("0.0625")) == "0.0625"
    assert ledger_views.signed_amount(Decimal("1250.5")) == "+1,250.50"
    assert ledger_views.ksh_exact(Decimal("-1234567.1234")) == "KSh -1,234,567.1234"
    assert ledger_views.HistoryFilters(date_from=date(2026, 3, 2), date_to=date(2026, 3, 2)).utc_range() == (
        datetime(2026, 3, 1, 21, 0, tzinfo=UTC),
        datetime(2026, 3, 2, 21, 0, tzinfo=UTC),
    )


# -- the whole statement, streamed after its request (issue 12, item 11) ------------------------------


def bulk_topups(client_id: int, count: int) -> None:
    """``count`` completed STK top-ups (every tenth simulated), inserted in one Core statement."""
    when = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        {
            "client_id": client_id,
            "type": "topup",
            "amount": Decimal("10"),
            "balance_before": Decimal("100"),
            "balance_after": Decimal("110"),
            "reference": f"topup:bulk{n}",
            "mpesa_reference": f"RKB{n:07d}",
            "checkout_request_id": f"ws_CO_bulk{n}",
            "description": wallet.MPESA_TOPUP,
            "status": "completed",
            "simulated": n % 10 == 0,
            "meta": {"channel": "stk", "phone": "+254712345678"},
            "created_at": when,
            "updated_at": when,
        }
        for n in range(count)
    ]
    db.session.execute(sa.insert(WalletTransaction), rows)
    db.session.commit()


def test_the_whole_statement_streams_in_the_readers_language(tenant, user, wallet_client):
    """100,000 top-ups: every row arrives, described in Swahili for a Swahili reader."""
    bulk_topups(tenant.id, 100_000)
    db.session.get(User, user.id).language = "sw"
    db.session.commit()
    started = time.monotonic()
    response = wallet_client.get("/wallet/history.csv")
    rows = read_csv(response)
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and len(rows) == 1 + 100_000 + 1  # header, top-ups, opening balance
    first = rows[1]
    assert first[2:5] == ["topup", "completed", "10.00"] and first[8] == "RKB0099999"
    assert first[9] == "KSh 10.00 zimeongezwa kwenye pochi yako. Risiti ya M-Pesa RKB0099999."
    assert sum(1 for row in rows[1:] if row[10] == "yes") == 10_000
    assert rows[-1][9] == "Salio la mwanzo"  # a stored English sentence, translated too
    print(f"history.csv: 100,001 rows in {elapsed:.1f}s")


def test_the_csv_stream_needs_nothing_from_its_request(app, tenant, user):
    """Production servers run the stream after the request's teardown removed its session: the signed-in
    user is then detached and expired. The stream must not look at it (nor at any other loaded object)."""
    from flask_login import login_user

    bulk_topups(tenant.id, 3)
    tenant_id, user_id = tenant.id, user.id
    db.session.commit()  # the test body's own read ends: the app's session below writes
    with app.test_request_context("/wallet/history.csv"):
        stale = db.session.get(User, user_id)
        login_user(stale)
        db.session.commit()  # expires the user, as the export view's commit does
        db.session.remove()  # the request's teardown: the user is now detached
        text = "".join(ledger_views.history_csv(tenant_id, ledger_views.HistoryFilters(), chunk=2, language="sw"))
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + 3 + 1 and "zimeongezwa kwenye pochi yako" in rows[1][9]


# -- simulated M-Pesa on the page (issue 12, item 13) --------------------------------------------------


def test_the_wallet_says_when_m_pesa_is_simulated(tenant, user, wallet_client, simulated_mpesa):
    page = wallet_client.get("/wallet/").get_data(as_text=True)
    assert "Simulated M-Pesa: no money moved." in page
    wallet_client.post("/wallet/topup", data={"phone": "0712 345 678", "amount": "500"}, headers=HX)
    (tx,) = topup_rows(tenant.id)
    assert tx.simulated is True and tx.status == "completed"
    row = row_html(wallet_client.get("/wallet/").get_data(as_text=True), tx.id)
    assert '<span class="badge simulated"' in row and "Simulated" in row
    db.session.get(User, user.id).language = "sw"
    db.session.commit()
    page = wallet_client.get("/wallet/").get_data(as_text=True)
    assert "M-Pesa ya majaribio: hakuna pesa iliyohamishwa." in page
    assert '<span class="badge simulated"' in row_html(page, tx.id)


def test_without_daraja_keys_or_simulation_top_ups_say_they_are_not_set_up(app, tenant, wallet_client, monkeypatch):
    configure(app, monkeypatch, MPESA_ENV="sandbox", MPESA_CONSUMER_KEY=None, MPESA_CONSUMER_SECRET=None)
    page = wallet_client.get("/wallet/").get_data(as_text=True)
    assert "M-Pesa top-ups are not set up on this installation yet." in page
    assert "Simulated M-Pesa" not in page
    response = wallet_client.post("/wallet/topup", data={"phone": "0712 345 678", "amount": "500"}, headers=HX)
    assert response.status_code == 422 and "not set up" in response.get_data(as_text=True)
    assert topup_rows(tenant.id) == [] and balance(tenant.id) == Decimal("100.00")


def test_real_daraja_shows_no_simulation_notice(tenant, wallet_client, daraja):
    page = wallet_client.get("/wallet/").get_data(as_text=True)
    assert "Simulated M-Pesa" not in page and "not set up" not in page
