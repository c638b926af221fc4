"""M-Pesa wallet top-ups by STK push: the requests, their callbacks and reconciliation (paybill: paybill.py).

An STK top-up is one ``wallet_transactions`` row (type ``topup``): created ``pending`` (not counted in the
balance), then completed exactly once (the balance is credited and the row gets before/after and the
M-Pesa receipt) or marked ``failed`` with a reason in plain words. A top-up through the simulated M-Pesa
(``MPESA_ENV=simulated``, never in production) has ``simulated`` set: no money moved.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import current_app
from flask_babel import LazyString, gettext
from flask_babel import lazy_gettext as _l

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.i18n import N_, lazy_stored, stored_sentences, stored_text
from bulkapp.models import Client, WalletTransaction
from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.providers import mpesa
from bulkapp.public_url import public_base_url
from bulkapp.services.billing import wallet
from bulkapp.services.notifications.events import record_event
from bulkapp.services.notifications.notify import notify

log = logging.getLogger(__name__)

CALLBACK_PATH = "/webhooks/mpesa/callback"
REPEAT_PROMPT_SECONDS = 60  # a second prompt to a phone that is still showing one is a double submit

# Plain-words reasons for the STK result codes a customer can cause or fix.
FAILURE_REASONS = {
    1: N_("Your M-Pesa balance was not enough for this payment. Top up M-Pesa or choose a smaller amount."),
    17: N_("M-Pesa was busy and could not take the payment. Nothing was charged; try again in a minute."),
    26: N_("M-Pesa was busy and could not take the payment. Nothing was charged; try again in a minute."),
    1001: N_("Another M-Pesa payment was in progress on your phone. Wait a minute, then try again."),
    1019: N_("The M-Pesa prompt expired before it was answered. Nothing was charged; try again."),
    1025: N_("M-Pesa could not send the prompt to your phone. Nothing was charged; try again."),
    1032: N_("You cancelled the M-Pesa prompt. Nothing was charged; start again when you are ready."),
    1037: N_(
        "Your phone could not be reached, or the prompt timed out before the PIN was entered. Make sure "
        "the phone is on and unlocked, then try again."
    ),
    2001: N_("The M-Pesa PIN entered was wrong. Nothing was charged; try again."),
    9999: N_("M-Pesa could not send the prompt to your phone. Nothing was charged; try again."),
}
EXPIRED_REASON = N_(
    "M-Pesa never confirmed this payment. If money left your M-Pesa account, contact support with the "
    "M-Pesa message you received."
)
# A failed top-up's reason is stored in English (meta["reason"]); the wallet page shows it in the reader's
# language (describe_topup).
stored_sentences(*FAILURE_REASONS.values(), EXPIRED_REASON)
(
    PUSH_TIMEOUT,
    PUSH_UNAVAILABLE,
    PUSH_REFUSED,
    PUSH_BROKEN,
    NOT_COMPLETED,
    AMOUNT_MISMATCH,
    RECEIPT_TAKEN,
    PAID_AFTER_FAILURE,
) = stored_sentences(
    N_(
        "M-Pesa did not answer in time. If a payment prompt still reaches your phone, cancel it and start a new top-up."
    ),
    N_("M-Pesa is not available right now. Nothing was charged; try again in a few minutes."),
    N_("M-Pesa refused the request (%(problem)s). Check the M-Pesa number and try again."),
    N_("M-Pesa top-ups are not working right now because of a problem on our side. Nothing was charged."),
    N_("M-Pesa did not complete the payment: %(problem)s."),
    N_(
        "M-Pesa reported KSh %(reported)s for this KSh %(requested)s request, so it was not "
        "added automatically. Our team will review it."
    ),
    N_("M-Pesa receipt %(receipt)s was already credited to a wallet, so it was not added again."),
    N_(
        "M-Pesa reported this payment as made after the request had been closed as failed. It was not added "
        "automatically; our team will review it and credit it if the money arrived."
    ),
)


class TopupError(ValueError):
    """A top-up request that cannot be made; ``message`` is a sentence for the user (lazy: it reads in the
    viewer's language when shown), ``field`` the input."""

    def __init__(self, message: str | LazyString, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class MalformedPayload(ValueError):
    """A webhook body that is not the shape Daraja sends."""


@dataclass(frozen=True)
class Outcome:
    """What a callback, confirmation or status check did: ``credited``, ``failed``, ``flagged`` (money
    reported but not credited automatically), ``kept`` (a paybill payment kept for an admin), ``duplicate``
    (nothing new), ``unknown`` (no matching request) or, for reconciliation, ``pending``/``expired``."""

    status: str
    transaction: WalletTransaction | None = None


@dataclass(frozen=True)
class StkResult:
    checkout_request_id: str
    result_code: int
    result_desc: str
    amount: Decimal | None = None
    receipt: str | None = None


# -- starting an STK top-up ----------------------------------------------------------------------------


def topup_limits() -> tuple[int, int]:
    """The smallest and largest top-up in whole shillings (``TOPUP_MIN_AMOUNT``/``TOPUP_MAX_AMOUNT``)."""
    return int(current_app.config["TOPUP_MIN_AMOUNT"]), int(current_app.config["TOPUP_MAX_AMOUNT"])


def topup_mode() -> str:
    """How top-ups run here: ``simulated`` (MPESA_ENV=simulated: no money moves), ``daraja`` (real M-Pesa)
    or ``off`` (not configured: no Daraja credentials and no simulation)."""
    daraja = mpesa.client_for(current_app)
    if daraja is None:
        return "off"
    return "simulated" if daraja.simulated else "daraja"


def callback_url() -> str:
    """The STK callback URL given to Daraja, carrying the install's token."""
    config = current_app.config
    base = config.get("MPESA_CALLBACK_BASE_URL") or public_base_url()
    token = config.get("MPESA_CALLBACK_TOKEN")
    return base.rstrip("/") + CALLBACK_PATH + (f"?token={quote(token, safe='')}" if token else "")


def start_stk_topup(client_id: int, phone: str, amount: Any, user_id: int | None = None) -> WalletTransaction:
    """Send an M-Pesa prompt to ``phone`` for ``amount`` whole shillings and record the request.

    Returns the ``topup`` row: ``pending`` (waiting for the customer's PIN; the callback or the
    reconciler completes it) or already ``failed`` when M-Pesa refused or did not answer (its reason is
    in ``describe_topup``). Raises :class:`TopupError` with a sentence for the user, and writes nothing,
    for a bad phone number or amount, a suspended account, or when top-ups are not set up (no Daraja
    credentials and no ``MPESA_ENV=simulated``). The simulated M-Pesa completes the row after
    ``MPESA_SIMULATED_DELAY_SECONDS`` and marks it ``simulated``. Flushes; the caller commits.
    """
    shillings = _whole_shillings(amount)
    msisdn = _mpesa_phone(phone)
    client = db.session.get(Client, client_id)
    if client is None or not client.status:
        raise TopupError(_l("This account is suspended, so it cannot be topped up. Contact support."))
    daraja = mpesa.client_for(current_app)
    if daraja is None:
        raise TopupError(_l("M-Pesa top-ups are not set up on this installation yet."))
    if _prompt_just_sent(client_id, msisdn):
        raise TopupError(
            _l(
                "A payment prompt was just sent to this number. Answer it on the phone, or wait a minute and try again."
            ),
            "phone",
        )
    meta: dict[str, Any] = {"channel": "stk", "phone": msisdn, "user_id": user_id, "simulated": daraja.simulated}
    row = WalletTransaction(
        client_id=client_id,
        type="topup",
        amount=Decimal(shillings),
        reference=f"topup:{uuid.uuid4().hex}",
        description=wallet.MPESA_TOPUP,
        simulated=daraja.simulated,
    )
    try:
        push = daraja.stk_push(
            phone=msisdn,
            amount=shillings,
            account_reference=client.account_number or f"BK{client.id}",
            description="Wallet top-up",
            callback_url=callback_url(),
        )
    except mpesa.MpesaError as exc:
        log.warning("STK push for client %s failed: %s (%s)", client_id, exc.message, exc.code)
        row.status = "failed"
        row.meta = {**meta, "error_code": exc.code, "reason": _push_failure_reason(exc)}
        db.session.add(row)
        db.session.flush()
        return row
    row.status = "pending"
    row.checkout_request_id = push.checkout_request_id
    row.meta = {**meta, "merchant_request_id": push.merchant_request_id}
    db.session.add(row)
    db.session.flush()
    if daraja.simulated:
        from bulkapp.extensions import rq

        rq.enqueue("bulkapp.jobs.topups.simulate_stk_callback", row.id, queue="high")
    return row


def _prompt_just_sent(client_id: int, msisdn: str) -> bool:
    """A pending prompt to the same phone younger than ``REPEAT_PROMPT_SECONDS`` (a double submit)."""
    since = utcnow() - timedelta(seconds=REPEAT_PROMPT_SECONDS)
    recent = db.session.scalars(
        sa.select(WalletTransaction.meta).where(
            WalletTransaction.client_id == client_id,
            WalletTransaction.type == "topup",
            WalletTransaction.status == "pending",
            WalletTransaction.created_at >= since,
        )
    )
    return any((meta or {}).get("phone") == msisdn for meta in recent)


def _whole_shillings(amount: Any) -> int:
    low, high = topup_limits()
    try:
        value = Decimal(str(amount).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        value = None
    if isinstance(amount, bool) or value is None or not value.is_finite() or value != value.to_integral_value():
        raise TopupError(_l("Enter the amount in whole shillings, for example 500."), "amount")
    if value < low:
        raise TopupError(_l("The smallest top-up is KSh %(amount)s.", amount=f"{low:,}"), "amount")
    if value > high:
        raise TopupError(_l("The largest top-up is KSh %(amount)s.", amount=f"{high:,}"), "amount")
    return int(value)


def _mpesa_phone(phone: str) -> str:
    try:
        msisdn = normalise_msisdn(phone)
    except InvalidNumber as exc:
        reason = lazy_stored(exc.reason)
        message = _l("%(reason)s Enter your M-Pesa number, for example 0712 345 678.", reason=reason)
        raise TopupError(message, "phone") from None
    if not mpesa.MSISDN.fullmatch(msisdn.lstrip("+")):
        raise TopupError(_l("M-Pesa prompts only reach Kenyan mobile numbers, for example 0712 345 678."), "phone")
    return msisdn


def _push_failure_reason(exc: mpesa.MpesaError) -> str:
    if isinstance(exc, mpesa.MpesaTimeout):
        return PUSH_TIMEOUT
    if exc.transient:
        return PUSH_UNAVAILABLE
    if exc.code == "400.002.02":  # Daraja's "invalid field": in practice the phone number
        return PUSH_REFUSED % {"problem": exc.message}
    log.error("M-Pesa refused our STK push (configuration?): %s (%s)", exc.message, exc.code)
    return PUSH_BROKEN


# -- STK results: callbacks and status queries ---------------------------------------------------------


def parse_stk_callback(payload: Any) -> StkResult:
    """Read Daraja's ``{"Body": {"stkCallback": ...}}``; raises :class:`MalformedPayload`."""
    try:
        callback = payload["Body"]["stkCallback"]
        checkout_id = callback["CheckoutRequestID"]
        code = int(callback["ResultCode"])
    except (KeyError, TypeError, ValueError):
        raise MalformedPayload("not an STK callback: Body.stkCallback with CheckoutRequestID and ResultCode") from None
    if not isinstance(checkout_id, str) or not checkout_id.strip():
        raise MalformedPayload("CheckoutRequestID is empty")
    metadata = callback.get("CallbackMetadata")
    items = metadata.get("Item") if isinstance(metadata, dict) else None
    items = items if isinstance(items, list) else []
    values = {item["Name"]: item.get("Value") for item in items if isinstance(item, dict) and "Name" in item}
    amount, receipt = None, None
    if code == 0:
        amount = _money(values.get("Amount"))
        receipt = str(values.get("MpesaReceiptNumber") or "").strip()
        if amount is None or not receipt or len(receipt) > 40:
            raise MalformedPayload("a successful STK callback needs Amount and MpesaReceiptNumber")
    return StkResult(checkout_id.strip(), code, str(callback.get("ResultDesc") or ""), amount, receipt)


def handle_stk_callback(payload: Any) -> Outcome:
    """Apply an STK callback to its pending top-up, exactly once.

    Success with the requested amount credits the wallet (row completed with the M-Pesa receipt,
    ``topup_success`` notification, ``wallet.topup`` event). Failure codes mark the row failed with a
    reason. A different amount, or a receipt already credited, is ``flagged``: the row fails with the
    reason and nothing is credited. Replays and unknown CheckoutRequestIDs change nothing. Raises
    :class:`MalformedPayload`. Flushes; the caller commits.
    """
    result = parse_stk_callback(payload)
    outcome = apply_stk_result(result, source="callback")
    if outcome.status == "unknown":
        log.warning(
            "STK callback for unknown CheckoutRequestID %s (ResultCode %s, receipt %s, amount %s)",
            result.checkout_request_id,
            result.result_code,
            result.receipt,
            result.amount,
        )
    return outcome


def apply_stk_result(result: StkResult, *, source: str) -> Outcome:
    """The one path that settles an STK top-up, from a callback or from a status query (``source``)."""
    found = db.session.execute(
        sa.select(WalletTransaction.id, WalletTransaction.client_id).where(
            WalletTransaction.checkout_request_id == result.checkout_request_id, WalletTransaction.type == "topup"
        )
    ).one_or_none()
    if found is None:
        return Outcome("unknown")
    row = lock_topup(*found)
    seen = row.meta or {}
    success_seen = seen.get("result_code") == 0 or seen.get("paid_after_failure")
    if row.status == "failed" and result.result_code == 0 and not success_seen:
        return _flag_paid_after_failure(row, result)
    if row.status != "pending":
        if row.status == "completed" and result.receipt and row.mpesa_reference is None:
            _note_late_receipt(row, result.receipt)
        return Outcome("duplicate", row)
    details = {"result_code": result.result_code, "result_desc": result.result_desc, "settled_by": source}
    if result.result_code != 0:
        reason = FAILURE_REASONS.get(result.result_code) or (
            NOT_COMPLETED % {"problem": result.result_desc or "no reason given"}
        )
        fail_topup(row, reason, **details)
        return Outcome("failed", row)
    if result.amount is not None and result.amount != row.amount:
        reason = AMOUNT_MISMATCH % {"reported": _ksh(result.amount), "requested": _ksh(row.amount)}
        fail_topup(
            row, reason, flag="amount_mismatch", reported_amount=str(result.amount), receipt=result.receipt, **details
        )
        return Outcome("flagged", row)
    if result.receipt and _receipt_taken(result.receipt):
        reason = RECEIPT_TAKEN % {"receipt": result.receipt}
        fail_topup(row, reason, flag="duplicate_receipt", receipt=result.receipt, **details)
        return Outcome("flagged", row)
    if wallet.complete_pending(row.id, mpesa_reference=result.receipt, meta=details) is None:
        return Outcome("duplicate", row)
    announce_topup(row, channel="stk")
    return Outcome("credited", row)


def lock_topup(tx_id: int, client_id: int) -> WalletTransaction:
    """Lock the tenant row, then the top-up row (the order every top-up path uses), and reload it.

    Concurrent deliveries for one tenant queue here, so each sees what the one before committed.
    SQLite ignores FOR UPDATE; its write transactions are serialised by BEGIN IMMEDIATE.
    """
    db.session.execute(sa.select(Client.id).where(Client.id == client_id).with_for_update())
    return db.session.scalars(
        sa.select(WalletTransaction)
        .where(WalletTransaction.id == tx_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _receipt_taken(receipt: str) -> bool:
    return (
        db.session.scalar(sa.select(WalletTransaction.id).where(WalletTransaction.mpesa_reference == receipt))
        is not None
    )


def _flag_paid_after_failure(row: WalletTransaction, result: StkResult) -> Outcome:
    """M-Pesa says "paid" for a request already closed as failed: money may have moved, so a person
    looks at it. Nothing is credited automatically (a failed row stays failed)."""
    log.error("STK top-up %s reported paid after it failed (receipt %s)", row.id, result.receipt)
    previous = {"previous_reason": (row.meta or {}).get("reason")}
    fail_topup(
        row, PAID_AFTER_FAILURE, flag="paid_after_failure", paid_after_failure=True, receipt=result.receipt, **previous
    )
    return Outcome("flagged", row)


def _note_late_receipt(row: WalletTransaction, receipt: str) -> None:
    """A callback after the status query completed the row brings the receipt: keep it, credit nothing."""
    if not _receipt_taken(receipt):
        row.mpesa_reference = receipt
        db.session.flush()


def fail_topup(row: WalletTransaction, reason: str, **details: Any) -> None:
    row.status = "failed"
    row.meta = {**(row.meta or {}), **details, "reason": reason, "failed_at": utcnow().isoformat()}
    db.session.flush()


def announce_topup(row: WalletTransaction, *, channel: str) -> None:
    """Tell the tenant (notification) and its webhooks (``wallet.topup``) that money was credited."""
    receipt = row.mpesa_reference
    notify(
        row.client_id,
        "topup_success",
        "topup_received_with_receipt" if receipt else "topup_received",
        {"amount": _plain(row.amount), "balance": _plain(row.balance_after), "receipt": receipt},
        data={"transaction_id": row.id, "amount": _plain(row.amount), "mpesa_reference": receipt},
    )
    record_event(
        row.client_id,
        "wallet.topup",
        {
            "transaction_id": row.id,
            "amount": _plain(row.amount),
            "currency": "KES",
            "balance": _plain(row.balance_after),
            "mpesa_reference": receipt,
            "channel": channel,
        },
    )


def describe_topup(tx: WalletTransaction) -> tuple[str, str]:
    """``(state, sentence)`` for the wallet page: state is ``pending`` (keep polling), ``completed`` or
    ``failed``; the sentence says what happened in plain words, in the reader's language."""
    amount = _ksh(tx.amount)
    meta = tx.meta or {}
    if tx.status == "completed":
        added = gettext("KSh %(amount)s was added to your wallet.", amount=amount)
        if tx.mpesa_reference:
            added += " " + gettext("M-Pesa receipt %(receipt)s.", receipt=tx.mpesa_reference)
        return "completed", added
    if tx.status == "failed":
        reason = stored_text(meta.get("reason"))
        return "failed", reason or gettext("This top-up did not go through. Nothing was charged.")
    phone = meta.get("phone") or gettext("your phone")
    return "pending", gettext(
        "Check %(phone)s and enter your M-Pesa PIN to pay KSh %(amount)s. This page updates by itself.",
        phone=phone,
        amount=amount,
    )


def _money(value: Any) -> Decimal | None:
    """Daraja sends amounts as numbers or strings ("10.00"); ``None`` when absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip())
        return amount.quantize(Decimal("0.0001")) if amount.is_finite() else None
    except (InvalidOperation, ValueError):
        return None


def _ksh(amount: Decimal | None) -> str:
    """KSh for people: ``1,250.00``."""
    return f"{Decimal(amount or 0):,.2f}"


def _plain(amount: Decimal | None) -> str:
    """KSh for machines (events, notification data): ``1250.00``."""
    return f"{Decimal(amount or 0):.2f}"
