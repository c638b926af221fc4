"""Jobs about M-Pesa top-ups: the periodic reconciler and the simulated M-Pesa's callback."""

from __future__ import annotations

import logging
import time
from collections import Counter

from flask import current_app

from bulkapp.extensions import db
from bulkapp.jobs import job

log = logging.getLogger(__name__)

ROW_WAIT_SECONDS = 10.0


@job
def reconcile_pending_topups() -> dict[str, int]:
    """Settle STK top-ups whose callback has not arrived, by asking M-Pesa (run every few minutes).

    Each top-up is settled and committed on its own, so one failure does not hold back the others.
    Returns how many ended in each outcome (``credited``, ``failed``, ``pending``, ``expired``...).
    """
    from bulkapp.services.billing import reconcile as topup_reconcile

    due = topup_reconcile.pending_topups_due()
    db.session.commit()  # end the read: no transaction stays open while M-Pesa is asked
    counts: Counter[str] = Counter()
    for tx_id, checkout_request_id in due:
        try:
            outcome = topup_reconcile.reconcile_topup(tx_id, checkout_request_id)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("reconciling top-up %s failed", tx_id)
            counts["error"] += 1
        else:
            counts[outcome.status] += 1
    return dict(counts)


@job
def simulate_stk_callback(tx_id: int) -> str | None:
    """Play M-Pesa for a simulated STK push: wait ``MPESA_SIMULATED_DELAY_SECONDS`` (the customer
    entering a PIN), then deliver a successful callback through the real callback handler.

    The wait happens inside the job (also under RQ, where it holds a worker for those seconds; it is a
    development feature). The request row is committed by the web request that enqueued this job,
    possibly a moment after the job starts, so the job waits briefly for it to become visible.
    """
    from bulkapp.services.billing import reconcile as topup_reconcile
    from bulkapp.services.billing import topups

    delay = float(current_app.config.get("MPESA_SIMULATED_DELAY_SECONDS") or 0)
    if delay > 0:
        time.sleep(delay)
    deadline = time.monotonic() + ROW_WAIT_SECONDS
    while not _exists(tx_id) and time.monotonic() < deadline:
        db.session.rollback()  # a fresh snapshot on the next look
        time.sleep(0.2)
    payload = topup_reconcile.simulated_callback(tx_id)
    if payload is None:
        return None
    return topups.handle_stk_callback(payload).status


def _exists(tx_id: int) -> bool:
    from bulkapp.models import WalletTransaction

    return db.session.get(WalletTransaction, tx_id) is not None
