"""M-Pesa STK top-ups whose callback has not come: asking Daraja, expiring them, and the simulated M-Pesa's callback."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import WalletTransaction
from bulkapp.providers import mpesa
from bulkapp.services.billing import topups

log = logging.getLogger(__name__)


def pending_topups_due(now: datetime | None = None, limit: int = 200) -> list[tuple[int, str]]:
    """``(id, CheckoutRequestID)`` of pending STK top-ups older than ``MPESA_RECONCILE_AFTER_SECONDS``."""
    cutoff = (now or utcnow()) - timedelta(seconds=int(current_app.config["MPESA_RECONCILE_AFTER_SECONDS"]))
    rows = db.session.execute(
        sa.select(WalletTransaction.id, WalletTransaction.checkout_request_id)
        .where(
            WalletTransaction.status == "pending",
            WalletTransaction.type == "topup",
            WalletTransaction.checkout_request_id.is_not(None),
            WalletTransaction.created_at <= cutoff,
        )
        .order_by(WalletTransaction.created_at)
        .limit(limit)
    )
    return [(row.id, row.checkout_request_id) for row in rows]


def reconcile_topup(tx_id: int, checkout_request_id: str, now: datetime | None = None) -> topups.Outcome:
    """Ask M-Pesa about one pending top-up and settle it through ``topups.apply_stk_result``.

    A final answer completes or fails the row; "still being processed" or an unreachable M-Pesa leaves
    it pending, unless it is older than ``MPESA_PENDING_EXPIRY_SECONDS``: then it fails as expired.
    Daraja is asked before any row is locked. Flushes; the caller commits.
    """
    daraja = mpesa.client_for(current_app)
    answer = None
    if daraja is not None and daraja.simulated and not _is_simulated(tx_id):
        daraja = None  # the simulation must never vouch for a request that went to real Daraja
    if daraja is not None:
        try:
            answer = daraja.stk_query(checkout_request_id)
        except mpesa.MpesaError as exc:
            log.warning("STK query for top-up %s failed: %s (%s)", tx_id, exc.message, exc.code)
    if answer is not None and answer.state != "pending":
        result = topups.StkResult(checkout_request_id, int(answer.result_code), answer.result_desc)
        return topups.apply_stk_result(result, source="status_query")
    row = db.session.get(WalletTransaction, tx_id)
    if row is None or row.status != "pending":
        return topups.Outcome("duplicate", row)
    expiry = timedelta(seconds=int(current_app.config["MPESA_PENDING_EXPIRY_SECONDS"]))
    if row.created_at > (now or utcnow()) - expiry:
        return topups.Outcome("pending", row)
    row = topups.lock_topup(row.id, row.client_id)
    if row.status != "pending":
        return topups.Outcome("duplicate", row)
    topups.fail_topup(row, topups.EXPIRED_REASON, flag="expired", settled_by="reconciler")
    return topups.Outcome("expired", row)


def _is_simulated(tx_id: int) -> bool:
    row = db.session.get(WalletTransaction, tx_id)
    return bool(row is not None and (row.simulated or (row.meta or {}).get("simulated")))


def simulated_callback(tx_id: int) -> dict[str, Any] | None:
    """The success callback the simulated M-Pesa sends for a top-up it accepted, or ``None`` when the row
    is not (or no longer) a pending simulated request. Never for a request that went to real Daraja."""
    row = db.session.get(WalletTransaction, tx_id)
    meta = (row.meta or {}) if row is not None else {}
    if row is None or row.status != "pending" or not (row.simulated or meta.get("simulated")):
        return None
    if not row.checkout_request_id:
        return None
    if current_app.config.get("ENV_NAME") == "production":
        return None
    return mpesa.simulated_stk_callback(
        checkout_request_id=row.checkout_request_id,
        merchant_request_id=meta.get("merchant_request_id", ""),
        amount=int(row.amount),
        phone=meta["phone"],
        paid_at=utcnow(),
    )
