"""The admin money tools: create a client, edit it, adjust its balance once per form, read its ledger."""

from __future__ import annotations

import re
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Client, User, WalletTransaction
from bulkapp.services.billing import wallet
from tests.conftest import PASSWORD, ledger_balance

HX = {"HX-Request": "true"}


@pytest.fixture
def admin(login, admin_user):
    return login(admin_user)


def fresh_client(client_id: int) -> Client:
    db.session.expire_all()
    found = db.session.get(Client, client_id)
    db.session.rollback()
    return found


def assert_ledger_invariant(client_id: int) -> None:
    db.session.expire_all()
    assert db.session.get(Client, client_id).balance == ledger_balance(client_id)
    db.session.rollback()


def input_value(body: str, name: str) -> str:
    match = re.search(rf'<(?:input|textarea)[^>]*name="{name}"[^>]*?(?:value="([^"]*)"|>([^<]*)</textarea>)', body)
    assert match, f"no input {name}"
    return match.group(1) if match.group(1) is not None else match.group(2)


def adjustments(client_id: int) -> list[WalletTransaction]:
    db.session.expire_all()
    rows = db.session.scalars(
        sa.select(WalletTransaction)
        .where(WalletTransaction.client_id == client_id, WalletTransaction.type == "adjustment")
        .where(WalletTransaction.reference.like("adjust:%"))
        .order_by(WalletTransaction.id)
    ).all()
    db.session.rollback()
    return rows


# -- access ----------------------------------------------------------------------------------------------


def admin_requests(client_id: int):
    return [
        ("GET", "/admin/", None),
        ("POST", "/admin/clients", {"name": "Sneaky", "price_per_unit": "0.5"}),
        ("GET", f"/admin/clients/{client_id}", None),
        ("POST", f"/admin/clients/{client_id}/edit", {"name": "Hacked", "price_per_unit": "0.01", "tier": "free",
                                                      "status": "active"}),
        ("POST", f"/admin/clients/{client_id}/adjust", {"direction": "credit", "amount": "1000", "reason": "free",
                                                        "reference": "adjust:" + "a" * 32}),
    ]  # fmt: skip


def test_tenant_users_get_404_everywhere_in_admin(tenant, login):
    client = login(tenant.test_user)
    for method, path, data in admin_requests(tenant.id):
        assert client.open(path, method=method, data=data).status_code == 404, path
        assert client.open(path, method=method, data=data, headers=HX).status_code == 404, path
    after = fresh_client(tenant.id)
    assert (after.name, after.balance, after.price_per_unit) == ("Tenant A", Decimal("100.00"), Decimal("0.80"))
    assert db.session.scalar(sa.select(sa.func.count(Client.id))) == 1


def test_signed_out_visitors_are_sent_to_login(tenant, client):
    for method, path, data in admin_requests(tenant.id):
        response = client.open(path, method=method, data=data)
        assert response.status_code == 302 and "/login" in response.location, path
        assert client.open(path, method=method, data=data, headers=HX).status_code == 401, path
    assert fresh_client(tenant.id).balance == Decimal("100.00")


def test_an_unknown_client_is_404_for_the_admin(admin):
    assert admin.get("/admin/clients/999999").status_code == 404
    assert admin.post("/admin/clients/999999/edit", data={"name": "x"}).status_code == 404
    assert admin.post("/admin/clients/999999/adjust", data={"amount": "1"}).status_code == 404


# -- create ----------------------------------------------------------------------------------------------


def test_create_a_client_with_its_first_user(admin, client):
    page = admin.get("/admin/").get_data(as_text=True)
    assert 'id="create-client-form"' in page and input_value(page, "price_per_unit") == "0.80"
    response = admin.post(
        "/admin/clients",
        data={"name": "Duka la Mama", "sender_id": "DUKA_MAMA", "price_per_unit": "0.7525",
              "opening_balance": "1,250.50", "test_mode": "y", "owner_name": "Grace",
              "owner_email": "Grace@Duka.example", "owner_password": "first-pass-1"},
        headers=HX,
    )  # fmt: skip
    assert response.status_code == 204, response.get_data(as_text=True)
    created = db.session.scalar(sa.select(Client).where(Client.name == "Duka la Mama"))
    assert response.headers["HX-Redirect"] == f"/admin/clients/{created.id}"
    assert (created.sender_id, created.price_per_unit, created.balance, created.is_test_mode) == (
        "DUKA_MAMA", Decimal("0.7525"), Decimal("1250.50"), True,
    )  # fmt: skip
    assert created.account_number.startswith("BK")
    assert_ledger_invariant(created.id)
    detail = admin.get(f"/admin/clients/{created.id}").get_data(as_text=True)
    assert f"paybill account {created.account_number}" in detail and "grace@duka.example" in detail
    assert "Opening balance" in detail
    owner = db.session.scalar(sa.select(User).where(User.email == "grace@duka.example"))
    assert owner.client_id == created.id and owner.role == "user"
    signed_in = client.post("/login", data={"email": "grace@duka.example", "password": "first-pass-1"})
    assert signed_in.status_code == 302


def test_create_a_client_without_a_user_and_without_javascript(admin):
    response = admin.post("/admin/clients", data={"name": "Kibanda", "price_per_unit": "1"})
    created = db.session.scalar(sa.select(Client).where(Client.name == "Kibanda"))
    assert response.status_code == 302 and response.location.endswith(f"/admin/clients/{created.id}")
    assert created.balance == Decimal("0") and created.is_test_mode is False  # the box was not ticked
    assert db.session.scalar(sa.select(sa.func.count(User.id)).where(User.client_id == created.id)) == 0


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "price_per_unit": "0.8"}, "name", "This field is required."),
        ({"name": "X", "price_per_unit": "abc"}, "price_per_unit", "Enter an amount in shillings"),
        ({"name": "X", "price_per_unit": "0"}, "price_per_unit", "must be above 0"),
        ({"name": "X", "price_per_unit": "0.12345"}, "price_per_unit", "at most 4 decimal places"),
        ({"name": "X", "price_per_unit": "0.8", "opening_balance": "-5"}, "opening_balance", "between 0 and"),
        ({"name": "X", "price_per_unit": "0.8", "sender_id": "A"}, "sender_id", "3 to 11 letters"),
        ({"name": "X", "price_per_unit": "0.8", "sender_id": "BAD<ID>"}, "sender_id", "3 to 11 letters"),
        ({"name": "X", "price_per_unit": "0.8", "owner_email": "not-an-email"}, "owner_email", "Invalid email"),
        ({"name": "X", "price_per_unit": "0.8", "owner_email": "a@b.example"}, "owner_password", "at least 8"),
        (
            {"name": "X", "price_per_unit": "0.8", "owner_email": "owner@a.example", "owner_password": "long-enough"},
            "owner_email",
            "already exists",
        ),
    ],
)
def test_create_errors_re_render_the_form_with_422_and_create_nothing(admin, tenant, data, field, message):
    response = admin.post("/admin/clients", data=data, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and body.lstrip().startswith('<form id="create-client-form"')
    error = re.search(rf'name="{field}".*?</label>', body, re.S)
    assert error and message in error.group(0), body
    if data["name"]:
        assert input_value(body, "name") == data["name"]
    assert db.session.scalar(sa.select(sa.func.count(Client.id))) == 1  # only the tenant fixture
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 2


# -- edit ------------------------------------------------------------------------------------------------


EDIT = {"name": "Tenant A Ltd", "sender_id": "TENANT_A", "price_per_unit": "0.65", "tier": "premium",
        "status": "suspended", "auto_sync_balance": "y"}  # fmt: skip


def test_edit_a_client(admin, tenant):
    page = admin.get(f"/admin/clients/{tenant.id}").get_data(as_text=True)
    assert input_value(page, "name") == "Tenant A" and input_value(page, "price_per_unit") == "0.80"
    assert re.search(r'<option selected value="active">', page)
    response = admin.post(f"/admin/clients/{tenant.id}/edit", data=EDIT, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith('<section id="admin-client"')
    assert "Saved the account settings of Tenant A Ltd." in body and "Suspended" in body
    after = fresh_client(tenant.id)
    assert (after.name, after.sender_id, after.price_per_unit, after.tier, after.status) == (
        "Tenant A Ltd", "TENANT_A", Decimal("0.65"), "premium", False,
    )  # fmt: skip
    assert after.is_test_mode is False and after.auto_sync_balance is True
    assert after.balance == Decimal("100.00")  # editing never touches money
    # Clearing the sender id and going back to test mode.
    admin.post(f"/admin/clients/{tenant.id}/edit", data={**EDIT, "sender_id": " ", "is_test_mode": "y"}, headers=HX)
    after = fresh_client(tenant.id)
    assert after.sender_id is None and after.is_test_mode is True


def test_an_account_goes_live_only_with_a_confirmed_owner(admin, tenant):
    owner = db.session.get(User, tenant.test_user.id)
    owner.email_verified_at = None
    db.session.commit()
    response = admin.post(f"/admin/clients/{tenant.id}/edit", data=EDIT, headers=HX)
    assert response.status_code == 422
    assert "cannot go live until its owner has confirmed" in response.get_data(as_text=True)
    assert fresh_client(tenant.id).is_test_mode is True  # nothing saved
    owner = db.session.get(User, tenant.test_user.id)
    owner.email_verified_at, owner.is_active_user = utcnow(), False  # confirmed, but disabled by an admin
    db.session.commit()
    assert admin.post(f"/admin/clients/{tenant.id}/edit", data=EDIT, headers=HX).status_code == 422
    assert fresh_client(tenant.id).is_test_mode is True
    db.session.get(User, tenant.test_user.id).is_active_user = True
    db.session.commit()
    assert admin.post(f"/admin/clients/{tenant.id}/edit", data=EDIT, headers=HX).status_code == 200
    assert fresh_client(tenant.id).is_test_mode is False


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"tier": "platinum"}, "tier", "Not a valid choice"),
        ({"status": "deleted"}, "status", "Not a valid choice"),
        ({"price_per_unit": "-1"}, "price_per_unit", "must be above 0"),
        ({"price_per_unit": "1e3"}, "price_per_unit", "Enter an amount in shillings"),
        ({"price_per_unit": "5000"}, "price_per_unit", "at most KSh 1,000"),
        ({"name": ""}, "name", "This field is required."),
        ({"name": "x" * 121}, "name", "cannot be longer than 120"),
        ({"sender_id": "TOO_LONG_SENDER"}, "sender_id", "cannot be longer than 11"),
    ],
)
def test_bad_edits_are_refused_with_422_and_change_nothing(admin, tenant, change, field, message):
    response = admin.post(f"/admin/clients/{tenant.id}/edit", data={**EDIT, **change}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and body.lstrip().startswith('<section id="admin-client"')
    assert message in re.search(rf'name="{field}".*?</label>', body, re.S).group(0), body
    after = fresh_client(tenant.id)
    assert (after.name, after.tier, after.status, after.price_per_unit) == ("Tenant A", "free", True, Decimal("0.80"))


# -- manual adjustment -----------------------------------------------------------------------------------


def form_reference(admin, client_id: int) -> str:
    page = admin.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    reference = input_value(page, "reference")
    assert re.fullmatch(r"adjust:[0-9a-f]{32}", reference)
    return reference


def test_a_credit_adjustment_shows_in_the_tenants_own_history_with_its_reason(admin, admin_user, tenant, login):
    reference = form_reference(admin, tenant.id)
    response = admin.post(
        f"/admin/clients/{tenant.id}/adjust",
        data={"direction": "credit", "amount": "250", "reason": "Goodwill credit for Tuesday's outage",
              "reference": reference},
        headers=HX,
    )  # fmt: skip
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    assert "Added KSh 250.00. The balance is now KSh 350.00." in body
    assert "Goodwill credit for Tuesday&#39;s outage" in body  # the read-only ledger on the same page
    assert input_value(body, "reference") != reference  # a fresh form for the next adjustment
    (row,) = adjustments(tenant.id)
    assert (row.amount, row.balance_before, row.balance_after, row.reference) == (
        Decimal("250"), Decimal("100"), Decimal("350"), reference,
    )  # fmt: skip
    assert row.meta["actor_id"] == admin_user.id and row.meta["actor_email"] == admin_user.email
    assert fresh_client(tenant.id).balance == Decimal("350.00")
    assert_ledger_invariant(tenant.id)

    admin.post("/logout")
    own = login(tenant.test_user).get("/wallet/?type=adjustment", headers=HX).get_data(as_text=True)
    assert "Goodwill credit for Tuesday&#39;s outage" in own and "+250.00" in own and "100.00 → 350.00" in own


def test_a_double_submit_applies_once(admin, tenant):
    reference = form_reference(admin, tenant.id)
    data = {"direction": "debit", "amount": "40", "reason": "Refund sent by bank", "reference": reference}
    first = admin.post(f"/admin/clients/{tenant.id}/adjust", data=data, headers=HX)
    second = admin.post(f"/admin/clients/{tenant.id}/adjust", data=data, headers=HX)
    assert "Took off KSh 40.00. The balance is now KSh 60.00." in first.get_data(as_text=True)
    assert second.status_code == 200
    assert "already applied (the form was sent twice); nothing changed" in second.get_data(as_text=True)
    assert len(adjustments(tenant.id)) == 1 and fresh_client(tenant.id).balance == Decimal("60.00")
    # The same form sent again with other values is refused, not applied.
    changed = admin.post(f"/admin/clients/{tenant.id}/adjust", data={**data, "amount": "41"}, headers=HX)
    assert changed.status_code == 422 and "already submitted with different values" in changed.get_data(as_text=True)
    assert len(adjustments(tenant.id)) == 1 and fresh_client(tenant.id).balance == Decimal("60.00")
    assert_ledger_invariant(tenant.id)


def test_two_simultaneous_submits_of_one_form_apply_once(app, work_app, admin, admin_user, tenant):
    """Two browsers tabs (or a double click racing itself) post the same form at the same moment."""
    reference = form_reference(admin, tenant.id)
    data = {"direction": "credit", "amount": "75", "reason": "Promo", "reference": reference}
    clients = []
    for _ in range(2):
        tab = app.test_client()
        tab.post("/login", data={"email": admin_user.email, "password": PASSWORD})
        clients.append(tab)
    url = f"/admin/clients/{tenant.id}/adjust"
    db.session.commit()
    barrier = threading.Barrier(2)
    statuses = []

    def submit(tab):
        with work_app.app_context():  # the test client ends the test body's transaction first
            barrier.wait()
            statuses.append(tab.post(url, data=data, headers=HX).status_code)

    threads = [threading.Thread(target=submit, args=(tab,)) for tab in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200, 200]
    assert len(adjustments(tenant.id)) == 1 and fresh_client(tenant.id).balance == Decimal("175.00")
    assert_ledger_invariant(tenant.id)


def test_a_debit_larger_than_the_balance_is_refused_clearly(admin, tenant):
    reference = form_reference(admin, tenant.id)
    data = {"direction": "debit", "amount": "100.01", "reason": "Chargeback", "reference": reference}
    response = admin.post(f"/admin/clients/{tenant.id}/adjust", data=data, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "The balance is only KSh 100.00, so KSh 100.01 cannot be taken off" in body
    assert input_value(body, "amount") == "100.01" and input_value(body, "reference") == reference
    assert adjustments(tenant.id) == [] and fresh_client(tenant.id).balance == Decimal("100.00")
    # The whole balance can be taken, leaving exactly zero.
    ok = admin.post(f"/admin/clients/{tenant.id}/adjust", data={**data, "amount": "100"}, headers=HX)
    assert "The balance is now KSh 0.00." in ok.get_data(as_text=True)
    assert fresh_client(tenant.id).balance == Decimal("0")
    assert_ledger_invariant(tenant.id)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reason": "   "}, "Say why"),
        ({"reason": ""}, "Say why"),
        ({"amount": ""}, "Enter the amount."),
        ({"amount": "0"}, "Enter an amount above 0"),
        ({"amount": "-5"}, "Enter an amount above 0"),
        ({"amount": "abc"}, "Enter an amount in shillings"),
        ({"amount": "1.005"}, "at most 2 decimal places"),
        ({"amount": "99999999"}, "at most KSh 10,000,000"),
        ({"direction": "steal"}, "Not a valid choice"),
        ({"reference": "adjust:not-a-uuid"}, "This form is out of date"),
        ({"reference": "topup:" + "a" * 32}, "This form is out of date"),
        ({"reference": ""}, "This form is out of date"),
        ({"reason": "x" * 501}, "cannot be longer than 500"),
    ],
)
def test_bad_adjustments_are_refused_with_422_and_write_nothing(admin, tenant, change, message):
    data = {
        "direction": "credit",
        "amount": "10",
        "reason": "Correction",
        "reference": form_reference(admin, tenant.id),
    }
    response = admin.post(f"/admin/clients/{tenant.id}/adjust", data={**data, **change}, headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and message in body, body
    assert adjustments(tenant.id) == [] and fresh_client(tenant.id).balance == Decimal("100.00")


def test_adjustments_need_the_csrf_token(admin, tenant):
    data = {"direction": "credit", "amount": "10", "reason": "x", "reference": form_reference(admin, tenant.id)}
    assert admin.post(f"/admin/clients/{tenant.id}/adjust", data=data, csrf=False).status_code == 400
    assert adjustments(tenant.id) == []


def test_a_plain_form_post_redirects_back_with_the_outcome(admin, tenant):
    data = {"direction": "credit", "amount": "5", "reason": "Test", "reference": form_reference(admin, tenant.id)}
    response = admin.post(f"/admin/clients/{tenant.id}/adjust", data=data)
    assert response.status_code == 302 and response.location.endswith(f"/admin/clients/{tenant.id}")
    assert "Added KSh 5.00. The balance is now KSh 105.00." in admin.get(response.location).get_data(as_text=True)


def test_the_admin_ledger_is_read_only_and_paged(admin, tenant):
    for n in range(30):
        wallet.debit(tenant.id, "0.5", reference=f"fill:{n}", description=f"charge {n}")
    db.session.commit()
    page = admin.get(f"/admin/clients/{tenant.id}").get_data(as_text=True)
    ledger = re.search(r'<article class="card" id="admin-ledger">.*?</article>', page, re.S).group(0)
    assert ledger.count('<tr id="tx-') == 25 and "hx-get" not in ledger and "<form" not in ledger
    assert "charge 29" in ledger and "-0.50" in ledger and "85.50 → 85.00" in ledger
    older = re.search(r'href="(/admin/clients/\d+\?cursor=\d+)"', ledger).group(1)
    rest = admin.get(older).get_data(as_text=True)
    assert (
        re.search(r'<article class="card" id="admin-ledger">.*?</article>', rest, re.S).group(0).count("<tr id=") == 6
    )
    assert "Opening balance" in rest and "← Newest" in rest
    for mangled in ("abc", "²", "-1", "9" * 40):
        again = admin.get(f"/admin/clients/{tenant.id}?cursor={mangled}").get_data(as_text=True)
        assert "charge 29" in again  # the newest page
    assert_ledger_invariant(tenant.id)


def test_the_admin_index_still_lists_and_searches(admin, tenant, other_tenant):
    page = admin.get("/admin/").get_data(as_text=True)
    assert "Tenant A" in page and "Tenant B" in page and "2 clients" in page
    found = admin.get("/admin/?q=Tenant B", headers=HX).get_data(as_text=True)
    assert found.lstrip().startswith('<section id="admin-clients"') and "Tenant A" not in found


def test_the_owner_of_a_new_client_can_top_up_with_the_created_account(admin, client):
    admin.post("/admin/clients", data={"name": "Soko", "price_per_unit": "0.8", "owner_email": "soko@x.example",
                                       "owner_password": PASSWORD})  # fmt: skip
    created = db.session.scalar(sa.select(Client).where(Client.name == "Soko"))
    client.post("/logout")  # the same test client: sign the admin out first
    client.post("/login", data={"email": "soko@x.example", "password": PASSWORD})
    page = client.get("/wallet/").get_data(as_text=True)
    assert created.account_number in page and "KSh 0.00" in page
