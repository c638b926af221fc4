"""Dispatch: claim pending outbound messages, send them through the tenant's provider once, record the results.

A message's status only moves forward: pending -> sending (claimed by one dispatch) -> sent | failed |
unknown, then sent -> delivered | failed by delivery reports (services/messaging/delivery.py). ``deferred`` results and
whole-batch transient errors put a message back to pending with a ``next_attempt_at``; nothing that may have
reached a provider is ever sent again. The stuck-message sweeper and the retry of due messages live here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Campaign, Message
from bulkapp.providers.base import (
    DeliveryReport,
    OutboundMessage,
    PermanentError,
    ProviderError,
    SendResult,
    SendStatus,
    TransientError,
)
from bulkapp.providers.sandbox import SandboxProvider
from bulkapp.public_url import public_base_url
from bulkapp.services.billing import wallet
from bulkapp.services.channels import routing as channels
from bulkapp.services.compliance import optouts
from bulkapp.services.messaging.delivery import message_event_data, refund_reference
from bulkapp.services.notifications.events import record_events
from bulkapp.services.notifications.notify import notify

# A message the provider keeps deferring (busy, rate limited) is failed and refunded after this many tries.
MAX_SEND_ATTEMPTS = 8
RETRY_BACKOFF_SECONDS = (10, 30, 60, 300, 900, 1800)
# Pending single messages whose dispatch job never ran (lost enqueue) are picked up after this long.
STALE_PENDING = timedelta(minutes=2)
TWILIO_STATUS_PATH = "/webhooks/twilio/status"


@dataclass
class DispatchOutcome:
    """Ids by what this dispatch did to them; ``sandbox`` lists those accepted by the sandbox (their planned
    delivery reports are due) and ``retry_at`` is the earliest time a deferred message may go again."""

    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    sandbox: list[int] = field(default_factory=list)
    retry_at: datetime | None = None

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("sent", "failed", "unknown", "deferred")}

    def defer(self, message_id: int, when: datetime) -> None:
        self.deferred.append(message_id)
        self.retry_at = when if self.retry_at is None else min(self.retry_at, when)


# What a dispatch reads of each claimed message (read once, with the claim).
_CLAIMED_COLUMNS = (
    Message.id,
    Message.client_id,
    Message.campaign_id,
    Message.conversation_id,
    Message.channel,
    Message.sender,
    Message.recipient,
    Message.subject,
    Message.body,
    Message.meta,
    Message.attempts,
    Message.segments,
    Message.cost,
    Message.provider,
    Message.provider_message_id,
)
Claimed = sa.Row[Any]


def dispatch_messages(
    client_id: int, message_ids: Iterable[int], *, checkpoint: Callable[[], None] | None = None
) -> DispatchOutcome:
    """Send those of ``message_ids`` (the tenant's outbound messages) that are pending and due, exactly once.

    Messages are grouped by channel kind and sent through the tenant's route (:func:`channels.resolve_channel`)
    in batches of the provider's ``preferred_batch_size``. Each batch is first *claimed* with one conditional
    UPDATE (pending -> sending; only rows still pending are sent, so a job that runs twice sends once), then
    ``checkpoint()`` makes the claim durable before the provider hears of it; after ``send_batch`` each
    result is recorded with a conditional UPDATE and ``checkpoint()`` runs again. The job passes
    ``db.session.commit``; without one everything stays in the caller's transaction (flushed only).

    Results: accepted -> sent (provider id, sent_at, ``message.sent``); rejected -> failed (reason, failed_at,
    ``message.failed``, a ``message_failed`` notification, and a refund ``refund:message:<id>`` unless the
    message belongs to a campaign, whose hold is settled by the campaign; a vendor code meaning "opted out"
    also suppresses the number, see :func:`optouts.record_provider_opt_out`); unknown -> unknown (never resent);
    deferred -> pending again with ``next_attempt_at`` (back-off, or the vendor's Retry-After). A
    TransientError for a whole batch defers it; a PermanentError (also bad channel settings or no channel)
    fails it. A message deferred :data:`MAX_SEND_ATTEMPTS` times fails.
    """
    checkpoint = checkpoint or db.session.flush
    outcome = DispatchOutcome()
    due = _due_rows(client_id, list(dict.fromkeys(message_ids)))
    by_kind: dict[str, list[int]] = {}
    for message_id, kind in due:
        by_kind.setdefault(kind, []).append(message_id)
    for kind, ids in by_kind.items():
        try:
            route = channels.resolve_channel(client_id, kind)
            provider = route.build_provider()
        except (channels.ChannelUnavailable, PermanentError) as exc:
            reason = exc.reason if isinstance(exc, channels.ChannelUnavailable) else exc.describe()
            for chunk in _chunks(ids, 500):
                claimed = _load(_claim(client_id, chunk, None))
                _notify_failures(client_id, _mark_failed(client_id, [(m, reason) for m in claimed], outcome))
                checkpoint()
            continue
        with provider:
            for chunk in _chunks(ids, max(1, provider.preferred_batch_size)):
                claimed = _load(_claim(client_id, chunk, route))
                if not claimed:
                    continue
                # The claim is durable before the provider hears of these messages, and no transaction (on
                # SQLite: no write lock) stays open while the provider answers.
                checkpoint()
                _send_claimed(client_id, claimed, route, provider, outcome)
                checkpoint()
    return outcome


def _due_rows(client_id: int, message_ids: list[int]) -> list[tuple[int, str]]:
    rows: list[tuple[int, str]] = []
    now = utcnow()
    for chunk in _chunks(message_ids, 1000):
        rows += db.session.execute(
            sa.select(Message.id, Message.channel)
            .where(Message.client_id == client_id, Message.id.in_(chunk), *_dispatchable(now))
            .order_by(Message.id)
        ).all()
    return [(message_id, kind) for message_id, kind in rows]


def _dispatchable(now: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        Message.status == "pending",
        Message.direction == "outbound",
        sa.or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
    )


def _claim(client_id: int, message_ids: Sequence[int], route: channels.Route | None) -> list[int]:
    """pending -> sending for those ids still pending and due; the ids this call claimed."""
    now = utcnow()
    values: dict[str, Any] = {"status": "sending", "claimed_at": now, "attempts": Message.attempts + 1}
    if route is not None:
        values.update(provider=route.provider_name, channel_id=route.channel_id)
    claimed = db.session.scalars(
        sa.update(Message)
        .where(Message.client_id == client_id, Message.id.in_(list(message_ids)), *_dispatchable(now))
        .values(**values)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(claimed)


def _load(ids: Sequence[int]) -> list[Claimed]:
    """What sending and recording a batch need of its messages, as plain rows (they outlive the commit)."""
    if not ids:
        return []
    return list(db.session.execute(sa.select(*_CLAIMED_COLUMNS).where(Message.id.in_(list(ids))).order_by(Message.id)))


def _send_claimed(
    client_id: int, messages: list[Claimed], route: channels.Route, provider: Any, outcome: DispatchOutcome
) -> None:
    """Send one claimed batch and record every result with a few statements for the whole batch."""
    outbound = _outbound_messages(messages, route)
    try:
        results = provider.send_batch(outbound)
    except TransientError as exc:
        retry = [(message, exc.describe(), exc.retry_after) for message in messages]
        _notify_failures(client_id, _defer(client_id, retry, outcome))
        return
    except PermanentError as exc:
        _notify_failures(client_id, _mark_failed(client_id, [(m, exc.describe()) for m in messages], outcome))
        return
    except ProviderError as exc:  # no usable answer after sending: it may have reached the vendor
        _mark_unknown([(message, exc.describe()) for message in messages], outcome)
        return
    by_id = {str(result.message_id): result for result in results}
    accepted: list[tuple[Claimed, SendResult]] = []
    rejected: list[tuple[Claimed, str]] = []
    unclear: list[tuple[Claimed, str]] = []
    retry: list[tuple[Claimed, str, float | None]] = []
    for message in messages:
        result = by_id.get(str(message.id))
        if result is None:
            unclear.append((message, f"{provider.label} gave no result for this message."))
        elif result.status is SendStatus.ACCEPTED:
            accepted.append((message, result))
        elif result.status is SendStatus.REJECTED:
            optouts.record_provider_opt_out(
                client_id, message.recipient, route.provider_name, result.code, message.channel
            )
            rejected.append((message, result.reason or f"{provider.label} refused the message."))
        elif result.status is SendStatus.DEFERRED:
            retry.append((message, result.reason or "The provider asked to try again later.", result.retry_after))
        else:
            unclear.append((message, result.reason or "The provider's answer was unclear."))
    _mark_sent(client_id, accepted, route, outcome)
    _mark_unknown(unclear, outcome)
    failed = _mark_failed(client_id, rejected, outcome) + _defer(client_id, retry, outcome)
    _notify_failures(client_id, failed)


def _outbound_messages(messages: Sequence[Claimed], route: channels.Route) -> list[OutboundMessage]:
    inbound_at = _last_inbound_at([m.conversation_id for m in messages if m.channel == "whatsapp"])
    callback_url = None
    if route.provider_name == "twilio":
        callback_url = public_base_url() + TWILIO_STATUS_PATH
    outbound = []
    for message in messages:
        template = (message.meta or {}).get("whatsapp_template") or {}
        outbound.append(
            OutboundMessage(
                id=message.id,
                to=message.recipient,
                body=message.body,
                sender=message.sender or (route.promotional_sender if message.campaign_id else route.sender),
                channel=message.channel,
                subject=message.subject,
                template_name=template.get("name"),
                template_language=template.get("language"),  # None (older messages): the channel's default
                template_params=tuple(template.get("params") or ()),
                callback_url=callback_url,
                last_inbound_at=inbound_at.get(message.conversation_id),
            )
        )
    return outbound


def _last_inbound_at(conversation_ids: list[int | None]) -> dict[int, datetime]:
    """When each conversation's customer last wrote to us (WhatsApp's 24-hour window)."""
    ids = sorted({cid for cid in conversation_ids if cid is not None})
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(Message.conversation_id, sa.func.max(Message.created_at))
        .where(Message.conversation_id.in_(ids), Message.direction == "inbound")
        .group_by(Message.conversation_id)
    ).all()
    return {cid: at for cid, at in rows if at is not None}


_BY_ID = Message.__table__.update().where(Message.__table__.c.id == sa.bindparam("_id"))


def _move(own: dict[int, dict[str, Any]], from_statuses: tuple[str, ...], **values: Any) -> list[int]:
    """The conditional state transition for a batch; returns the ids it moved, in order.

    One UPDATE ... RETURNING moves those of the messages still in ``from_statuses`` (a delivery report or the
    sweeper may have moved some meanwhile, and those are left alone), then one executemany keyed on id writes
    each moved message's own columns (``own``: message id -> {table column name: value}). The caller's
    transaction holds the moved rows until it commits, so nobody sees them half-written.
    """
    if not own:
        return []
    moved = db.session.scalars(
        sa.update(Message)
        .where(Message.id.in_(list(own)), Message.status.in_(from_statuses))
        .values(**values)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    ).all()
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for message_id in moved:
        if own[message_id]:
            by_columns.setdefault(tuple(sorted(own[message_id])), []).append({"_id": message_id, **own[message_id]})
    for rows in by_columns.values():
        db.session.execute(_BY_ID, rows)
    return sorted(moved)


def _mark_sent(
    client_id: int, accepted: list[tuple[Claimed, SendResult]], route: channels.Route, outcome: DispatchOutcome
) -> None:
    own: dict[int, dict[str, Any]] = {}
    for message, result in accepted:
        own[message.id] = {"provider_message_id": result.provider_message_id}
        if result.cost is not None:
            own[message.id]["metadata"] = {**(message.meta or {}), "provider_cost": str(result.cost)}
    # "unknown" too: the stuck-message sweeper may have given up on a send that did go through.
    moved = set(
        _move(
            own,
            ("sending", "unknown"),
            status="sent",
            provider=route.provider_name,
            sent_at=utcnow(),
            error_message=None,
        )
    )
    sent = [(message, result) for message, result in accepted if message.id in moved]
    outcome.sent += [message.id for message, _ in sent]
    if route.is_sandbox:
        outcome.sandbox += [message.id for message, _ in sent]
    record_events(
        client_id,
        "message.sent",
        [
            _event_data(m, "sent", provider=route.provider_name, provider_message_id=result.provider_message_id)
            for m, result in sent
        ],
    )


def _mark_failed(
    client_id: int, failures: list[tuple[Claimed, str]], outcome: DispatchOutcome
) -> list[tuple[Claimed, str]]:
    """sending/unknown -> failed with each message's reason, refunds and ``message.failed``; returns those
    this call failed (for :func:`_notify_failures`)."""
    own = {message.id: {"error_message": reason} for message, reason in failures}
    moved = set(_move(own, ("sending", "unknown"), status="failed", failed_at=utcnow()))
    failed = [(message, reason) for message, reason in failures if message.id in moved]
    outcome.failed += [message.id for message, _ in failed]
    for message, reason in failed:
        _refund(message, reason)
    record_events(client_id, "message.failed", [_event_data(m, "failed", error_reason=r) for m, r in failed])
    return failed


def _mark_unknown(unclear: list[tuple[Claimed, str]], outcome: DispatchOutcome) -> None:
    suffix = " It was not sent again, so that nobody gets it twice."
    own = {message.id: {"error_message": reason + suffix} for message, reason in unclear}
    outcome.unknown += _move(own, ("sending",), status="unknown")


def _defer(
    client_id: int, retry: list[tuple[Claimed, str, float | None]], outcome: DispatchOutcome
) -> list[tuple[Claimed, str]]:
    """Back to pending for a later attempt (the provider certainly did not take them), or failed when tried
    too often; returns those that failed."""
    now = utcnow()
    own: dict[int, dict[str, Any]] = {}
    final: list[tuple[Claimed, str]] = []
    for message, reason, retry_after in retry:
        attempts = message.attempts or 1
        if attempts >= MAX_SEND_ATTEMPTS:
            final.append((message, f"{reason} Gave up after {attempts} attempts."))
            continue
        delay = RETRY_BACKOFF_SECONDS[min(attempts, len(RETRY_BACKOFF_SECONDS)) - 1]
        when = now + timedelta(seconds=max(float(delay), float(retry_after or 0)))
        own[message.id] = {"next_attempt_at": when, "error_message": reason}
    for message_id in _move(own, ("sending",), status="pending"):
        outcome.defer(message_id, own[message_id]["next_attempt_at"])
    return _mark_failed(client_id, final, outcome)


def _refund(message: Claimed, reason: str) -> None:
    """Give back what a message that never reached the provider cost. Campaign messages are paid from the
    campaign's hold, which the campaign settles for what was really sent."""
    if message.campaign_id is not None or not message.cost or message.cost <= 0:
        return
    wallet.refund(
        message.client_id,
        message.cost,
        reference=refund_reference(message.id),
        description=wallet.REFUND_NOT_SENT % {"recipient": message.recipient},
        meta={"message_id": message.id, "reason": reason},
    )


def _notify_failures(client_id: int, failed: list[tuple[Claimed, str]]) -> None:
    """One ``message_failed`` notification per batch for single messages (campaigns report on their page)."""
    singles = [(m, reason) for m, reason in failed if m.campaign_id is None]
    if not singles:
        return
    (message, reason), count = singles[0], len(singles)
    notify(
        client_id,
        "message_failed",
        "message_not_sent" if count == 1 else "messages_not_sent",
        {"recipient": message.recipient, "reason": reason, "count": count},
        data={"message_ids": [m.id for m, _ in singles]},
    )


def _event_data(message: Claimed, status: str, **extra: Any) -> dict[str, Any]:
    return message_event_data(message, status, utcnow(), **extra)


def _chunks(items: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# ------------------------------------------------------------------------------- recovery and follow-up


def sweep_stuck_messages(older_than: timedelta, *, now: datetime | None = None) -> list[int]:
    """Messages left in ``sending`` longer than ``older_than`` (their worker died mid-send) become ``unknown``:
    the provider may have them, so they are kept for review and never resent. Returns their ids."""
    cutoff = (now or utcnow()) - older_than
    stuck = db.session.scalars(
        sa.update(Message)
        .where(
            Message.status == "sending",
            sa.or_(
                Message.claimed_at <= cutoff,
                sa.and_(Message.claimed_at.is_(None), Message.updated_at <= cutoff),
            ),
        )
        .values(
            status="unknown",
            error_message="The send was interrupted, so it is not known whether the provider got this message. "
            "It was not sent again, so that nobody gets it twice.",
        )
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(stuck)


def messages_due_for_retry(*, now: datetime | None = None, limit: int = 5000) -> dict[int, list[int]]:
    """Pending outbound messages to dispatch again, by tenant: deferred ones whose ``next_attempt_at`` has come
    (campaign messages only while their campaign is sending), and single messages pending longer than
    :data:`STALE_PENDING` whose dispatch job was lost."""
    now = now or utcnow()
    deferred_due = sa.and_(Message.next_attempt_at.is_not(None), Message.next_attempt_at <= now)
    stale_single = sa.and_(
        Message.next_attempt_at.is_(None), Message.campaign_id.is_(None), Message.created_at <= now - STALE_PENDING
    )
    rows = db.session.execute(
        sa.select(Message.client_id, Message.id)
        .outerjoin(Campaign, Campaign.id == Message.campaign_id)
        .where(
            Message.status == "pending",
            Message.direction == "outbound",
            sa.or_(deferred_due, stale_single),
            sa.or_(Message.campaign_id.is_(None), Campaign.status == "sending"),
        )
        .order_by(Message.id)
        .limit(limit)
    ).all()
    due: dict[int, list[int]] = {}
    for client_id, message_id in rows:
        due.setdefault(client_id, []).append(message_id)
    return due


@dataclass(frozen=True)
class PlannedDelivery:
    """A sandbox delivery report and when to apply it (the message's ``sent_at`` + the sandbox's delay)."""

    due: datetime
    channel_id: int | None
    report: DeliveryReport


def sandbox_report_plan(client_id: int, message_ids: Iterable[int]) -> list[PlannedDelivery]:
    """The delivery reports the sandbox "sends back" for these accepted messages, earliest first."""
    messages = db.session.scalars(
        sa.select(Message).where(
            Message.client_id == client_id,
            Message.id.in_(list(message_ids)),
            Message.provider == channels.SANDBOX,
            Message.provider_message_id.is_not(None),
        )
    ).all()
    sandbox = SandboxProvider()
    plan = []
    for message in messages:
        outbound = OutboundMessage(id=message.id, to=message.recipient, channel=message.channel)
        result = SendResult.accepted(message.id, message.provider_message_id)
        for planned in sandbox.planned_reports(outbound, result):
            start = message.sent_at or utcnow()
            plan.append(PlannedDelivery(start + planned.after, message.channel_id, planned.report))
    return sorted(plan, key=lambda item: item.due)
