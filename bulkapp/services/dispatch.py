"""Dispatch: claim pending outbound messages, send them through the tenant's provider once, record the results.

A message's status only moves forward: pending -> sending (claimed by one dispatch) -> sent | failed |
unknown, then sent -> delivered | failed by delivery reports (services/delivery.py). ``deferred`` results and
whole-batch transient errors put a message back to pending with a ``next_attempt_at``; nothing that may have
reached a provider is ever sent again. The stuck-message sweeper and the retry of due messages live here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

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
from bulkapp.services import channels, optouts, wallet
from bulkapp.services.delivery import refund_reference
from bulkapp.services.events import record_event
from bulkapp.services.notifications import notify

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
                claimed = _claim(client_id, chunk, None)
                _record_failures(client_id, claimed, reason, outcome)
                checkpoint()
            continue
        with provider:
            for chunk in _chunks(ids, max(1, provider.preferred_batch_size)):
                claimed = _claim(client_id, chunk, route)
                if not claimed:
                    continue
                checkpoint()  # the claim is durable before the provider hears of these messages
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


def _send_claimed(
    client_id: int, ids: list[int], route: channels.Route, provider: Any, outcome: DispatchOutcome
) -> None:
    messages = db.session.scalars(
        sa.select(Message).where(Message.id.in_(ids)).order_by(Message.id).execution_options(populate_existing=True)
    ).all()
    outbound = _outbound_messages(messages, route)
    try:
        results = provider.send_batch(outbound)
    except TransientError as exc:
        for message in messages:
            _defer(message, exc.describe(), exc.retry_after, outcome)
        return
    except PermanentError as exc:
        _record_failures(client_id, ids, exc.describe(), outcome)
        return
    except ProviderError as exc:  # no usable answer after sending: it may have reached the vendor
        for message in messages:
            _mark_unknown(message, exc.describe(), outcome)
        return
    by_id = {str(result.message_id): result for result in results}
    failed: list[tuple[Message, str]] = []
    for message in messages:
        result = by_id.get(str(message.id))
        if result is None:
            _mark_unknown(message, f"{provider.label} gave no result for this message.", outcome)
        elif result.status is SendStatus.ACCEPTED:
            _mark_sent(message, route, result, outcome)
        elif result.status is SendStatus.REJECTED:
            reason = result.reason or f"{provider.label} refused the message."
            optouts.record_provider_opt_out(
                client_id, message.recipient, route.provider_name, result.code, message.channel
            )
            if _mark_failed(message, reason, outcome):
                failed.append((message, reason))
        elif result.status is SendStatus.DEFERRED:
            _defer(message, result.reason or "The provider asked to try again later.", result.retry_after, outcome)
        else:
            _mark_unknown(message, result.reason or "The provider's answer was unclear.", outcome)
    _notify_failures(client_id, failed)


def _outbound_messages(messages: Sequence[Message], route: channels.Route) -> list[OutboundMessage]:
    inbound_at = _last_inbound_at([m.conversation_id for m in messages if m.channel == "whatsapp"])
    callback_url = None
    if route.provider_name == "twilio":
        callback_url = current_app.config["BASE_URL"].rstrip("/") + TWILIO_STATUS_PATH
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


def _transition(message_id: int, from_statuses: tuple[str, ...], **values: Any) -> bool:
    """One conditional UPDATE; True when this call moved the row."""
    result = db.session.execute(
        sa.update(Message)
        .where(Message.id == message_id, Message.status.in_(from_statuses))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _mark_sent(message: Message, route: channels.Route, result: SendResult, outcome: DispatchOutcome) -> None:
    now = utcnow()
    values: dict[str, Any] = {
        "status": "sent",
        "provider": route.provider_name,
        "provider_message_id": result.provider_message_id,
        "sent_at": now,
        "error_message": None,
    }
    if result.cost is not None:
        values["meta"] = {**(message.meta or {}), "provider_cost": str(result.cost)}
    # "unknown" too: the stuck-message sweeper may have given up on a send that did go through.
    if not _transition(message.id, ("sending", "unknown"), **values):
        return
    outcome.sent.append(message.id)
    if route.is_sandbox:
        outcome.sandbox.append(message.id)
    record_event(
        message.client_id,
        "message.sent",
        _event_data(message, "sent", provider=route.provider_name, provider_message_id=result.provider_message_id),
    )


def _mark_failed(message: Message, reason: str, outcome: DispatchOutcome) -> bool:
    if not _transition(message.id, ("sending", "unknown"), status="failed", error_message=reason, failed_at=utcnow()):
        return False
    outcome.failed.append(message.id)
    _refund(message, reason)
    record_event(message.client_id, "message.failed", _event_data(message, "failed", error_reason=reason))
    return True


def _mark_unknown(message: Message, reason: str, outcome: DispatchOutcome) -> None:
    reason = f"{reason} It was not sent again, so that nobody gets it twice."
    if _transition(message.id, ("sending",), status="unknown", error_message=reason):
        outcome.unknown.append(message.id)


def _defer(message: Message, reason: str, retry_after: float | None, outcome: DispatchOutcome) -> None:
    """Back to pending for a later attempt (the provider certainly did not take it), or failed when it has
    been tried too often."""
    attempts = message.attempts or 1
    if attempts >= MAX_SEND_ATTEMPTS:
        final = f"{reason} Gave up after {attempts} attempts."
        if _mark_failed(message, final, outcome):
            _notify_failures(message.client_id, [(message, final)])
        return
    delay = RETRY_BACKOFF_SECONDS[min(attempts, len(RETRY_BACKOFF_SECONDS)) - 1]
    when = utcnow() + timedelta(seconds=max(float(delay), float(retry_after or 0)))
    if _transition(message.id, ("sending",), status="pending", next_attempt_at=when, error_message=reason):
        outcome.defer(message.id, when)


def _record_failures(client_id: int, ids: Sequence[int], reason: str, outcome: DispatchOutcome) -> None:
    messages = db.session.scalars(
        sa.select(Message).where(Message.client_id == client_id, Message.id.in_(list(ids))).order_by(Message.id)
    ).all()
    failed = [(message, reason) for message in messages if _mark_failed(message, reason, outcome)]
    _notify_failures(client_id, failed)


def _refund(message: Message, reason: str) -> None:
    """Give back what a message that never reached the provider cost. Campaign messages are paid from the
    campaign's hold, which the campaign settles for what was really sent."""
    if message.campaign_id is not None or not message.cost or message.cost <= 0:
        return
    wallet.refund(
        message.client_id,
        message.cost,
        reference=refund_reference(message.id),
        description=f"Refund: message to {message.recipient} was not sent",
        meta={"message_id": message.id, "reason": reason},
    )


def _notify_failures(client_id: int, failed: list[tuple[Message, str]]) -> None:
    """One ``message_failed`` notification per batch for single messages (campaigns report on their page)."""
    singles = [(m, reason) for m, reason in failed if m.campaign_id is None]
    if not singles:
        return
    if len(singles) == 1:
        message, reason = singles[0]
        title = f"Message to {message.recipient} was not sent"
        text = f"{reason} The charge was refunded."
    else:
        title = f"{len(singles)} messages were not sent"
        text = f"For example, to {singles[0][0].recipient}: {singles[0][1]} The charges were refunded."
    notify(client_id, "message_failed", title, text, data={"message_ids": [m.id for m, _ in singles]})


def _event_data(message: Message, status: str, **extra: Any) -> dict[str, Any]:
    data = {
        "message_id": message.id,
        "status": status,
        "channel": message.channel,
        "recipient": message.recipient,
        "provider": message.provider,
        "provider_message_id": message.provider_message_id,
        "campaign_id": message.campaign_id,
        "segments": message.segments,
        "cost": f"{message.cost:.2f}",
        "occurred_at": utcnow().isoformat(),
    }
    data.update(extra)
    return data


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
