"""Outbound webhook jobs: the periodic dispatcher and one delivery attempt (both on the "low" queue)."""

from __future__ import annotations

from bulkapp.extensions import db, rq
from bulkapp.jobs import job

DISPATCH_BATCHES = 10  # per tick, at most this many batches of new events are looked at


@job
def dispatch_webhooks() -> dict[str, int]:
    """Periodic: first attempts for new events, failed-over attempts of dead workers, and every due attempt
    handed to ``deliver_webhook``. The database says what is due, so a lost job only delays a delivery."""
    from bulkapp.services.tenant_webhooks import delivery as webhooks_out

    looked_at = 0
    for _ in range(DISPATCH_BATCHES):
        batch = webhooks_out.dispatch_new_events(limit=500)
        db.session.commit()
        looked_at += batch
        if batch < 500:
            break
    recovered = webhooks_out.recover_stuck_attempts()
    due = webhooks_out.queue_due_attempts()
    db.session.commit()  # the attempts are marked queued before the jobs exist
    for delivery_id in due:
        rq.enqueue(deliver_webhook, delivery_id, queue="low")
    return {"events": looked_at, "recovered": recovered, "queued": len(due)}


@job
def deliver_webhook(delivery_id: int) -> str | None:
    """Claim one attempt, make its HTTP call with no transaction open, record the outcome. A second run of
    the same job finds the attempt claimed and does nothing."""
    from bulkapp.services.tenant_webhooks import delivery as webhooks_out
    from bulkapp.services.tenant_webhooks import http as webhook_http

    prepared = webhooks_out.claim_attempt(delivery_id)
    db.session.commit()
    if prepared is None:
        return None
    outcome = webhook_http.send_attempt(prepared)
    webhooks_out.record_outcome(delivery_id, outcome)
    return outcome.status
