"""Jobs of the send pipeline: dispatch, sandbox delivery reports, retries of deferred sends, the stuck sweeper."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from flask import current_app

from bulkapp.columns import utcnow
from bulkapp.extensions import db, rq
from bulkapp.jobs import job

log = logging.getLogger(__name__)

DISPATCH_CHUNK = 500
DEFAULT_SENDING_TIMEOUT_SECONDS = 900


@job
def dispatch_messages(client_id: int, message_ids: list[int]) -> dict[str, int]:
    """Send the pending ones of ``message_ids`` (see services.dispatch.dispatch_messages); each claim and
    each batch's results are committed as they happen, so a killed worker loses at most one batch's answers
    (those messages stay ``sending`` until the sweeper marks them ``unknown``). Then queues the sandbox's
    delivery reports and, under RQ, a delayed re-run for deferred messages (the periodic
    ``retry_due_messages`` catches them otherwise)."""
    from bulkapp.services.messaging import dispatch

    outcome = dispatch.dispatch_messages(client_id, message_ids, checkpoint=db.session.commit)
    db.session.commit()
    if outcome.sandbox:
        rq.enqueue(apply_sandbox_reports, client_id, outcome.sandbox, queue="low")
    if outcome.deferred and outcome.retry_at is not None and rq.backend().mode == "rq":
        delay = max(timedelta(seconds=1), outcome.retry_at - utcnow())
        rq.queue("high").enqueue_in(delay, dispatch_messages, client_id, outcome.deferred)
    return outcome.counts()


@job
def apply_sandbox_reports(client_id: int, message_ids: list[int]) -> int:
    """Play the sandbox vendor calling back: apply each planned delivery report when it is due (at once when
    jobs run inline), through the same services.delivery code as real webhooks. Returns how many applied."""
    from bulkapp.services.messaging import dispatch
    from bulkapp.services.messaging.delivery import apply_delivery_report

    plan = dispatch.sandbox_report_plan(client_id, message_ids)
    db.session.commit()  # no transaction stays open while waiting
    wait = rq.backend().mode != "inline"
    for planned in plan:
        if wait:
            pause = (planned.due - utcnow()).total_seconds()
            if pause > 0:
                time.sleep(min(pause, 60.0))
        apply_delivery_report("sandbox", planned.report, channel_id=planned.channel_id)
        db.session.commit()
    return len(plan)


@job
def retry_due_messages() -> int:
    """Periodic: queue a dispatch for deferred messages whose time has come and for single messages whose
    dispatch job was lost. Returns how many messages were queued."""
    from bulkapp.services.messaging import dispatch

    due = dispatch.messages_due_for_retry()
    db.session.commit()
    queued = 0
    for client_id, ids in due.items():
        for start in range(0, len(ids), DISPATCH_CHUNK):
            chunk = ids[start : start + DISPATCH_CHUNK]
            rq.enqueue(dispatch_messages, client_id, chunk, queue="high")
            queued += len(chunk)
    return queued


@job
def sweep_stuck_messages() -> int:
    """Periodic: messages in ``sending`` longer than ``MESSAGE_SENDING_TIMEOUT_SECONDS`` (default 15 minutes,
    well past the job timeout) become ``unknown``. Returns how many."""
    from bulkapp.services.messaging import dispatch

    seconds = int(current_app.config.get("MESSAGE_SENDING_TIMEOUT_SECONDS", DEFAULT_SENDING_TIMEOUT_SECONDS))
    stuck = dispatch.sweep_stuck_messages(timedelta(seconds=seconds))
    if stuck:
        log.warning("%d messages were stuck in sending and are now unknown: %s", len(stuck), stuck[:20])
    return len(stuck)
