"""Outbound webhooks (Standard Webhooks): events become delivery attempts, each claimed, signed, sent and logged.

An event a tenant subscribes to gets attempt 1 (``pending``). Whoever moves an attempt ``pending`` ->
``sending`` with a conditional UPDATE owns it and makes the one HTTP call (no transaction open meanwhile),
then records ``succeeded``/``failed``/``refused``. A failed automatic attempt schedules the next one on the
back-off ladder. The database decides what is due, so a lost job only delays a delivery; receivers
deduplicate on ``webhook-id``, which stays the same for every attempt of one event.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.i18n import N_, stored_sentences
from bulkapp.models import Client, Event, WebhookDelivery
from bulkapp.services.notifications.notify import notify
from bulkapp.services.tenant_webhooks.http import DEFAULT_TIMEOUT, Outcome, PreparedDelivery, event_body
from bulkapp.services.tenant_webhooks.settings import signing_secrets

TEST_EVENT_TYPE = "webhook.test"
# Wait before automatic attempt 2, 3, ...: eight attempts over about 32 hours.
RETRY_DELAYS = tuple(timedelta(seconds=s) for s in (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600))
MAX_AUTO_ATTEMPTS = len(RETRY_DELAYS) + 1
STUCK_AFTER = timedelta(minutes=5)  # a "sending" attempt older than this was interrupted
REQUEUE_AFTER = timedelta(minutes=5)  # a queued attempt not claimed by then is handed to the queue again
MAX_EVENT_AGE = timedelta(days=1)  # older undispatched events (e.g. from before webhooks existed) are skipped
IN_FLIGHT = ("pending", "sending")
TEST_DEDUP_WINDOW = timedelta(minutes=1)
# Why an attempt was not made or did not finish: stored in English, shown translated by the delivery log.
NO_URL, NO_SECRET, TURNED_OFF, UNSUBSCRIBED, INTERRUPTED, DELIVERED_BY = stored_sentences(
    N_("No webhook URL is set."),
    N_("There is no signing secret yet; save the webhook settings."),
    N_("Webhooks were turned off."),
    N_("No longer subscribed to %(event)s."),
    N_("The attempt was interrupted before an answer was recorded."),
    N_("Delivered by attempt %(attempt)s."),
)


# ------------------------------------------------------------------------------------------ dispatch


def dispatch_new_events(now: datetime | None = None, limit: int = 500) -> int:
    """Give each new event its first attempt when its tenant subscribes to it; mark every looked-at event
    dispatched. Returns how many events were looked at (``limit`` means there may be more)."""
    now = now or utcnow()
    rows = db.session.execute(
        sa.select(Event.id, Event.client_id, Event.type, Event.created_at)
        .where(Event.dispatched_at.is_(None))
        .order_by(Event.id)
        .limit(limit)
    ).all()
    if not rows:
        return 0
    claimed = set(
        db.session.scalars(
            sa.update(Event)
            .where(Event.id.in_([row.id for row in rows]), Event.dispatched_at.is_(None))
            .values(dispatched_at=now)
            .returning(Event.id),
            execution_options={"synchronize_session": False},
        )
    )
    endpoints = {
        row.id: row
        for row in db.session.execute(
            sa.select(Client.id, Client.webhook_active, Client.webhook_url, Client.webhook_events).where(
                Client.id.in_({row.client_id for row in rows})
            )
        )
    }
    attempts = []
    for row in rows:
        endpoint = endpoints[row.client_id]
        subscribed = endpoint.webhook_active and endpoint.webhook_url and row.type in (endpoint.webhook_events or ())
        if row.id in claimed and subscribed and now - row.created_at <= MAX_EVENT_AGE:
            attempts.append(
                {
                    "client_id": row.client_id,
                    "event_id": row.id,
                    "attempt": 1,
                    "trigger": "auto",
                    "next_attempt_at": now,
                }
            )
    if attempts:
        db.session.execute(sa.insert(WebhookDelivery), attempts)
    return len(rows)


def queue_due_attempts(now: datetime | None = None, limit: int = 200) -> list[int]:
    """Mark due pending attempts as handed to the job queue and return their ids (the caller commits, then
    enqueues). An attempt queued but not claimed within ``REQUEUE_AFTER`` is returned again."""
    now = now or utcnow()
    due = (
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= now,
        sa.or_(WebhookDelivery.queued_at.is_(None), WebhookDelivery.queued_at < now - REQUEUE_AFTER),
    )
    ids = db.session.scalars(
        sa.select(WebhookDelivery.id).where(*due).order_by(WebhookDelivery.next_attempt_at).limit(limit)
    ).all()
    if not ids:
        return []
    claimed = db.session.scalars(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids), *due)
        .values(queued_at=now)
        .returning(WebhookDelivery.id),
        execution_options={"synchronize_session": False},
    )
    return sorted(claimed)


def recover_stuck_attempts(now: datetime | None = None) -> int:
    """Attempts left ``sending`` by a worker that died count as failed (and are retried)."""
    now = now or utcnow()
    stuck = db.session.scalars(
        sa.select(WebhookDelivery.id).where(
            WebhookDelivery.status == "sending", WebhookDelivery.claimed_at < now - STUCK_AFTER
        )
    ).all()
    interrupted = Outcome("failed", error=INTERRUPTED, retryable=True)
    return sum(1 for delivery_id in stuck if record_outcome(delivery_id, interrupted, now=now) is not None)


# ------------------------------------------------------------------------------------------ one attempt


def claim_attempt(delivery_id: int, now: datetime | None = None) -> PreparedDelivery | None:
    """Move a due attempt ``pending`` -> ``sending`` and prepare its request; None when someone else has it,
    it is not due, or it no longer applies (webhooks off, event unsubscribed: the attempt is ``cancelled``).
    The caller commits before making the call."""
    now = now or utcnow()
    claimed = db.session.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(status="sending", claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return None
    delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
    event, client = delivery.event, db.session.get(Client, delivery.client_id)
    reason = _why_not_send(delivery, event, client)
    if reason:
        _finish(delivery, "cancelled", now, error=reason)
        return None
    delivery.url = client.webhook_url
    db.session.flush()
    return PreparedDelivery(
        delivery_id=delivery.id,
        url=client.webhook_url,
        webhook_id=event.webhook_id,
        body=event_body(event),
        secrets=signing_secrets(client, now),
        allow_private=bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE_URLS")),
        timeout=tuple(current_app.config.get("WEBHOOK_TIMEOUT") or DEFAULT_TIMEOUT),
    )


def _why_not_send(delivery: WebhookDelivery, event: Event, client: Client) -> str | None:
    if not client.webhook_url:
        return NO_URL
    if not client.webhook_secret:
        return NO_SECRET
    if delivery.trigger != "auto":  # tests and resends are explicit requests
        return None
    if not client.webhook_active:
        return TURNED_OFF
    if event.type not in (client.webhook_events or ()):
        return UNSUBSCRIBED % {"event": event.type}
    return None


def record_outcome(delivery_id: int, outcome: Outcome, now: datetime | None = None) -> WebhookDelivery | None:
    """Log what the attempt got and schedule the next automatic attempt after a retryable failure. Only the
    ``sending`` attempt is updated, so a second recording (or the stuck sweeper) changes nothing."""
    now = now or utcnow()
    done = db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "sending")
        .values(
            status=outcome.status,
            status_code=outcome.status_code,
            response_ms=outcome.response_ms,
            response_excerpt=outcome.excerpt,
            error=outcome.error,
            finished_at=now,
            next_attempt_at=None,  # set again below when a retry is scheduled
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        return None
    delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
    if outcome.status == "succeeded":
        _cancel_pending_retries(delivery, now)
    elif outcome.gone:
        _turn_webhooks_off(delivery.client_id, outcome.status_code)
    elif outcome.status == "failed" and outcome.retryable and delivery.trigger == "auto":
        _schedule_retry(delivery, outcome, now)
    db.session.flush()
    return delivery


def _schedule_retry(delivery: WebhookDelivery, outcome: Outcome, now: datetime) -> None:
    done = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(WebhookDelivery)
        .where(WebhookDelivery.event_id == delivery.event_id, WebhookDelivery.trigger == "auto")
    )
    if done >= MAX_AUTO_ATTEMPTS:
        return
    delay = max(RETRY_DELAYS[done - 1], outcome.retry_after or timedelta(0))
    delivery.next_attempt_at = now + delay
    new_attempt(delivery.event_id, delivery.client_id, "auto", due=now + delay)


def _cancel_pending_retries(delivery: WebhookDelivery, now: datetime) -> None:
    db.session.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.event_id == delivery.event_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.trigger == "auto",
        )
        .values(
            status="cancelled",
            error=DELIVERED_BY % {"attempt": delivery.attempt},
            finished_at=now,
            next_attempt_at=None,
        )
        .execution_options(synchronize_session=False)
    )


def _turn_webhooks_off(client_id: int, status_code: int | None) -> None:
    changed = db.session.execute(
        sa.update(Client)
        .where(Client.id == client_id, Client.webhook_active.is_(True))
        .values(webhook_active=False)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # already off (e.g. a test event while off): nothing new to tell
        return
    notify(client_id, "webhook_disabled", "webhook_disabled", {"status": str(status_code)})


def _finish(delivery: WebhookDelivery, status: str, now: datetime, error: str) -> None:
    delivery.status = status
    delivery.error = error
    delivery.finished_at = now
    delivery.next_attempt_at = None
    db.session.flush()


# ------------------------------------------------------------------------------------------ explicit requests


def new_attempt(event_id: int, client_id: int, trigger: str, due: datetime, queued: bool = False) -> WebhookDelivery:
    """Add the event's next attempt (number = last + 1), retrying the number if a concurrent insert took it."""
    for _ in range(5):
        number = 1 + (
            db.session.scalar(
                sa.select(sa.func.max(WebhookDelivery.attempt)).where(WebhookDelivery.event_id == event_id)
            )
            or 0
        )
        delivery = WebhookDelivery(
            client_id=client_id,
            event_id=event_id,
            attempt=number,
            trigger=trigger,
            status="pending",
            next_attempt_at=due,
            queued_at=due if queued else None,
        )
        try:
            with db.session.begin_nested():
                db.session.add(delivery)
        except IntegrityError:
            continue
        return delivery
    raise RuntimeError(f"could not number a new attempt for event {event_id}")


def resend_event(client_id: int, event_id: int, now: datetime | None = None) -> WebhookDelivery | None:
    """A new attempt of one of the tenant's events, with the same ``webhook-id`` (a resend still in flight is
    returned instead of a second one); None for another tenant's event. The caller commits and enqueues
    ``deliver_webhook``."""
    now = now or utcnow()
    event = db.session.scalar(sa.select(Event).where(Event.id == event_id, Event.client_id == client_id))
    if event is None:
        return None
    in_flight = db.session.scalar(
        sa.select(WebhookDelivery).where(
            WebhookDelivery.event_id == event.id,
            WebhookDelivery.trigger == "resend",
            WebhookDelivery.status.in_(IN_FLIGHT),
        )
    )
    return in_flight or new_attempt(event.id, client_id, "resend", due=now, queued=True)


def create_test_event(client_id: int, now: datetime | None = None) -> WebhookDelivery:
    """A ``webhook.test`` event and its single attempt (sent even while webhooks are off; a test still in flight
    is returned instead of a second one). The caller commits and enqueues ``deliver_webhook``."""
    now = now or utcnow()
    in_flight = db.session.scalar(
        sa.select(WebhookDelivery).where(
            WebhookDelivery.client_id == client_id,
            WebhookDelivery.trigger == "test",
            WebhookDelivery.status.in_(IN_FLIGHT),
            WebhookDelivery.created_at >= now - TEST_DEDUP_WINDOW,
        )
    )
    if in_flight is not None:  # a double click sends one test, not two
        return in_flight
    event = Event(
        client_id=client_id,
        type=TEST_EVENT_TYPE,
        webhook_id="msg_" + secrets.token_urlsafe(18),
        data={"message": "A test event from Bulkapp. Your endpoint received and can verify it."},
        created_at=now,
        dispatched_at=now,
    )
    db.session.add(event)
    db.session.flush()
    return new_attempt(event.id, client_id, "test", due=now, queued=True)


# ------------------------------------------------------------------------------------------ the log


def delivery_log(
    client_id: int, before: int | None = None, limit: int = 20
) -> tuple[list[WebhookDelivery], int | None]:
    """The tenant's attempts, newest first, keyset-paginated by id; returns (rows, ``before`` of the next page)."""
    query = (
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.client_id == client_id)
        .options(joinedload(WebhookDelivery.event))
        .order_by(WebhookDelivery.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    rows = list(db.session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more else None)
