"""M-Pesa paybill (C2B): Daraja's validation question, confirmations, and the payments kept for an admin.

A confirmation credits the tenant its account number names, once per TransID (ledger reference
``mpesa:<TransID>``, receipt in ``mpesa_reference``). A payment that cannot be credited automatically (an
unknown account, a suspended tenant, an amount that is not a positive number of at most two decimals within
``TOPUP_MIN_AMOUNT..TOPUP_MAX_AMOUNT``, or a reference the ledger already used for something else) is kept,
once per TransID, in ``unmatched_payments``: the money has left the payer, so nothing is dropped. A platform
admin may assign a kept payment to a tenant once (:func:`assign_unmatched`). Invariant: a TransID is credited
at most once, by a confirmation or by an assignment, never both.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql, sqlite

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Client, UnmatchedPayment, User, WalletTransaction
from bulkapp.parsing import scrub_unstorable, storable_text
from bulkapp.services.billing import wallet
from bulkapp.services.billing.topups import MalformedPayload, Outcome, announce_topup, topup_limits

log = logging.getLogger(__name__)

C2B_ACCEPT = {"ResultCode": "0", "ResultDesc": "Accepted"}
C2B_INVALID_ACCOUNT = "C2B00012"
C2B_INVALID_AMOUNT = "C2B00013"
LARGEST_STORABLE = Decimal(10) ** 12  # Money keeps ten-thousandths in a BIGINT: far above any real payment
RAW_AMOUNT_MAX = 64
ASSIGN_REASON_MAX = 500

# Why a payment was kept instead of credited (unmatched_payments.reason), as the admin page says it.
REASONS = {
    "unknown_account": _l("No tenant has this account number"),
    "suspended": _l("The tenant is suspended"),
    "invalid_amount": _l("Not a positive amount with at most two decimals"),
    "below_minimum": _l("Below the smallest top-up"),
    "above_maximum": _l("Above the largest top-up"),
    "reference_conflict": _l("The ledger already used this M-Pesa reference for another change"),
    "not_recorded": _l("Recording it failed: check it against the M-Pesa statement before crediting"),
}


class AssignError(ValueError):
    """An assignment that cannot be made; ``message`` is a sentence for the admin, ``field`` the input."""

    def __init__(self, message, field: str | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field


@dataclass(frozen=True)
class PaybillAmount:
    """A confirmation's ``TransAmount``: ``value`` when it is a storable number, ``problem`` when it cannot be
    credited automatically (a key of :data:`REASONS`), ``raw`` as sent (cut to 64 characters)."""

    value: Decimal | None
    problem: str | None
    raw: str


def read_amount(raw: Any) -> PaybillAmount:
    """Check ``TransAmount`` exactly (no float, no rounding): positive, at most two decimals, within the
    top-up limits. Any text, however long or large, gives an answer and never an exception."""
    text = "" if raw is None or isinstance(raw, bool) else str(raw).strip()
    shown = text[:RAW_AMOUNT_MAX]
    try:
        value = Decimal(text) if len(text) <= RAW_AMOUNT_MAX else None
    except (InvalidOperation, ValueError):
        value = None
    if value is None or not value.is_finite() or value <= 0 or not _two_decimals(value):
        return PaybillAmount(None, "invalid_amount", shown)
    low, high = topup_limits()
    storable = value if value < LARGEST_STORABLE else None
    if value < low:
        return PaybillAmount(storable, "below_minimum", shown)
    if value > high:
        return PaybillAmount(storable, "above_maximum", shown)
    return PaybillAmount(value, None, shown)


def _two_decimals(value: Decimal) -> bool:
    """At most two significant decimals, decided on the digits (``10.500`` yes, ``10.001`` no)."""
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent >= -2:
        return True
    extra = -2 - exponent
    return all(digit == 0 for digit in digits[-extra:]) if extra <= len(digits) else not any(digits)


def validate_c2b(payload: Any) -> dict[str, str]:
    """Daraja's validation question: accept a payment to an active tenant's account number with an amount
    that would be credited, else reject with the documented code (C2B00012 account, C2B00013 amount).
    Stores nothing."""
    fields = _c2b_fields(payload)
    client = find_client_by_account(fields["bill_ref"])
    if client is None or not client.status:
        return {"ResultCode": C2B_INVALID_ACCOUNT, "ResultDesc": "Rejected"}
    if read_amount(fields["amount"]).problem is not None:
        return {"ResultCode": C2B_INVALID_AMOUNT, "ResultDesc": "Rejected"}
    return dict(C2B_ACCEPT)


def confirm_c2b(payload: Any) -> Outcome:
    """Record a completed paybill payment: credit it to the active tenant it names, once per TransID, or keep
    it in ``unmatched_payments`` with the reason (``kept``).

    A TransID already credited or already kept changes nothing (``duplicate``). Raises
    :class:`MalformedPayload` when there is no usable TransID. Flushes; the caller commits.
    """
    fields = _c2b_fields(payload)
    trans_id = fields["trans_id"]
    if not trans_id or len(trans_id) > 40:
        raise MalformedPayload("a C2B confirmation needs a TransID of at most 40 characters")
    amount = read_amount(fields["amount"])
    client = find_client_by_account(fields["bill_ref"])
    if client is not None:
        # Tenant row first (the lock order of every wallet path): concurrent copies of one payment queue here.
        db.session.execute(sa.select(Client.id).where(Client.id == client.id).with_for_update())
    credited = _receipt_row(trans_id)
    if credited is not None or _is_kept(trans_id):
        return Outcome("duplicate", credited)
    reason = amount.problem
    if reason is None and client is None:
        reason = "unknown_account"
    if reason is None and not client.status:
        reason = "suspended"
    if reason is not None:
        return _keep(trans_id, amount, fields, payload, reason)
    try:
        row = wallet.credit(
            client.id,
            amount.value,
            reference=f"mpesa:{trans_id}",
            mpesa_reference=trans_id,
            description=wallet.PAYBILL_PAYMENT % {"receipt": trans_id},
            meta={"channel": "c2b", **_payer(fields, payload)},
        )
    except wallet.ReferenceConflict as exc:  # the reference names a different change: keep it for a person
        log.warning("paybill payment %s conflicts with the ledger: %s", trans_id, exc)
        return _keep(trans_id, amount, fields, payload, "reference_conflict")
    announce_topup(row, channel="c2b")
    return Outcome("credited", row)


def keep_unrecorded(payload: Any) -> Outcome:
    """Keep a confirmation whose recording failed with an unexpected error (the caller rolled it back), so a
    payment Daraja was told we have is never lost: an admin sees it with the reason ``not_recorded`` and may
    credit it once. Flushes; the caller commits."""
    fields = _c2b_fields(payload)
    return _keep(fields["trans_id"], read_amount(fields["amount"]), fields, payload, "not_recorded")


def _is_kept(trans_id: str) -> bool:
    return db.session.scalar(sa.select(UnmatchedPayment.id).where(UnmatchedPayment.trans_id == trans_id)) is not None


def _receipt_row(trans_id: str) -> WalletTransaction | None:
    return db.session.scalar(sa.select(WalletTransaction).where(WalletTransaction.mpesa_reference == trans_id))


def _payer(fields: dict[str, Any], payload: dict[str, Any]) -> dict[str, str]:
    names = (payload.get(key) for key in ("FirstName", "MiddleName", "LastName"))
    return {
        "bill_ref_number": fields["bill_ref"][:64],
        "msisdn": str(payload.get("MSISDN") or "")[:64],
        "payer": " ".join(str(name).strip() for name in names if name and str(name).strip())[:200],
        "trans_time": str(payload.get("TransTime") or "")[:32],
    }


def _keep(trans_id: str, amount: PaybillAmount, fields: dict, payload: dict, reason: str) -> Outcome:
    """Insert the payment into ``unmatched_payments`` unless its TransID is there already (a concurrent copy)."""
    payer = _payer(fields, payload)
    log.warning("paybill payment %s (KSh %s to %r) kept: %s", trans_id, amount.raw, fields["bill_ref"], reason)
    values = {
        "trans_id": trans_id,
        "amount": amount.value,
        "raw_amount": amount.raw,
        "bill_ref": payer["bill_ref_number"],
        "payer": payer["payer"],
        "msisdn": payer["msisdn"],
        "reason": reason,
        "meta": {"trans_time": payer["trans_time"], "short_code": str(payload.get("BusinessShortCode") or "")[:16]},
        "created_at": utcnow(),
    }
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    inserted = db.session.execute(
        insert(UnmatchedPayment).values(**values).on_conflict_do_nothing(index_elements=["trans_id"])
    )
    return Outcome("kept" if inserted.rowcount else "duplicate")


def find_client_by_account(account_number: str) -> Client | None:
    """The tenant whose paybill account number this is (case, spaces and padding ignored)."""
    wanted = re.sub(r"\s+", "", account_number or "").upper()
    if not wanted or len(wanted) > 64 or not storable_text(wanted):
        return None
    return db.session.scalar(sa.select(Client).where(sa.func.upper(Client.account_number) == wanted))


def _c2b_fields(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) or "BillRefNumber" not in payload or "TransAmount" not in payload:
        raise MalformedPayload("not a C2B request: BillRefNumber and TransAmount are required")
    return {
        "trans_id": str(payload.get("TransID") or "").strip(),
        "amount": payload.get("TransAmount"),
        "bill_ref": str(payload.get("BillRefNumber") or ""),
    }


# -- the admin's side ----------------------------------------------------------------------------------


def _unmatched_select() -> sa.Select:
    tenant, admin = sa.orm.aliased(Client), sa.orm.aliased(User)
    return (
        sa.select(UnmatchedPayment, tenant.name, tenant.account_number, admin.email)
        .outerjoin(tenant, tenant.id == UnmatchedPayment.assigned_client_id)
        .outerjoin(admin, admin.id == UnmatchedPayment.assigned_by_id)
    )


def unmatched_page(*, assigned: bool, before: int | None = None, limit: int = 50) -> tuple[list, int | None]:
    """Kept payments, newest first: the open ones (``assigned=False``) or the assigned ones, each as
    ``(payment, tenant name, tenant account number, admin email)``. Keyset by id; returns the rows and the
    cursor of the next page."""
    query = (
        _unmatched_select()
        .where(UnmatchedPayment.assigned_at.is_not(None) if assigned else UnmatchedPayment.assigned_at.is_(None))
        .order_by(UnmatchedPayment.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(UnmatchedPayment.id < before)
    rows = db.session.execute(query).all()
    next_cursor = rows[limit - 1][0].id if len(rows) > limit else None
    return rows[:limit], next_cursor


def unmatched_row(payment_id: int):
    """One kept payment as :func:`unmatched_page` gives it, or ``None``."""
    return db.session.execute(_unmatched_select().where(UnmatchedPayment.id == payment_id)).one_or_none()


def unmatched_count() -> int:
    """How many kept payments wait for an admin."""
    return db.session.scalar(sa.select(sa.func.count()).where(UnmatchedPayment.assigned_at.is_(None))) or 0


def assign_unmatched(payment_id: int, account_number: str, *, actor_id: int, reason: str) -> WalletTransaction:
    """Credit a kept payment to the tenant with ``account_number``, once, recording the admin and reason.

    The ``assigned_at IS NULL -> now`` UPDATE is conditional, so of two submits (or two admins at once) only
    one credits; the other raises :class:`AssignError`. The credit goes through the wallet ledger (reference
    ``unmatched:<id>``), the tenant is notified as for any top-up. Flushes; the caller commits.
    """
    reason = scrub_unstorable(reason or "").strip()
    if not reason:
        raise AssignError(_l("Say why this payment belongs to this tenant."), "reason")
    if len(reason) > ASSIGN_REASON_MAX:
        raise AssignError(_l("Keep the reason under %(count)s characters.", count=ASSIGN_REASON_MAX), "reason")
    payment = db.session.get(UnmatchedPayment, payment_id)
    if payment is None:
        raise AssignError(_l("This payment does not exist."))
    if payment.amount is None:
        raise AssignError(_l("This payment has no usable amount, so it cannot be credited."))
    client = find_client_by_account(account_number)
    if client is None:
        raise AssignError(_l("No tenant has this account number."), "account_number")
    db.session.execute(sa.select(Client.id).where(Client.id == client.id).with_for_update())
    now = utcnow()
    claimed = db.session.execute(
        sa.update(UnmatchedPayment)
        .where(UnmatchedPayment.id == payment_id, UnmatchedPayment.assigned_at.is_(None))
        .values(assigned_client_id=client.id, assigned_by_id=actor_id, assigned_at=now, assign_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:
        raise AssignError(_l("This payment was already assigned; it was not credited again."))
    receipt = payment.trans_id if _receipt_row(payment.trans_id) is None else None
    row = wallet.credit(
        client.id,
        payment.amount,
        reference=f"unmatched:{payment.id}",
        mpesa_reference=receipt,
        description=wallet.PAYBILL_PAYMENT % {"receipt": payment.trans_id},
        meta={
            "channel": "c2b",
            "unmatched_payment_id": payment.id,
            "assigned_by": actor_id,
            "assign_reason": reason,
            "kept_because": payment.reason,
        },
    )
    db.session.execute(
        sa.update(UnmatchedPayment)
        .where(UnmatchedPayment.id == payment_id)
        .values(wallet_transaction_id=row.id)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(payment)
    announce_topup(row, channel="c2b")
    current_app.logger.info("unmatched payment %s assigned to client %s by user %s", payment.id, client.id, actor_id)
    return row
