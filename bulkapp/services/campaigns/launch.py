"""Running a campaign: launch (message rows in bulk, the wallet hold), chunked dispatch, pause / resume / cancel,
quiet hours, completion (settle once) and "retry failed" as a new run.

Every state change is one conditional UPDATE on ``campaigns``, so double submits and jobs that run twice change
nothing the second time. Services flush; the caller (view or job) commits and then enqueues the chunk jobs the
functions return as ``ranges`` (first and last message id of each chunk).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.i18n import N_, stored_sentences
from bulkapp.models import Campaign, Client, Message, Template
from bulkapp.services.billing import wallet
from bulkapp.services.campaigns.message_rows import TextBuilder, campaign_content, estimate_run, insert_chunk
from bulkapp.services.campaigns.recipients import Tally, candidates, resolve, retry_candidates
from bulkapp.services.channels import routing as channels
from bulkapp.services.compliance import quiet_hours
from bulkapp.services.messaging import dispatch
from bulkapp.services.notifications.events import record_event
from bulkapp.services.notifications.notify import notify

DISPATCH_CHUNK = 500  # messages per chunk job
STALL_AFTER = timedelta(minutes=10)  # a sending campaign without progress this long has lost its chunk jobs
SEND_SLICE = 200  # messages per dispatch call inside a chunk job (the status is re-checked between slices)
OPEN_STATUSES = ("pending", "sending")

# Why a campaign action cannot happen: English here (the API, and a failed launch's stats), shown on pages in
# the reader's language (i18n.stored_text).
(
    NOT_FOUND,
    NOT_LAUNCHABLE,
    STARTED_ALREADY,
    SUSPENDED,
    EMPTY_BODY,
    NO_RECIPIENTS,
    INSUFFICIENT_BALANCE,
    NOT_PAUSED,
    NOT_FINISHED,
    NOTHING_TO_RETRY,
) = stored_sentences(
    N_("That campaign does not exist."),
    N_("This campaign is %(status)s; it cannot be started again."),
    N_("This campaign was started already."),
    N_("This account is suspended, so it cannot send. Contact support."),
    N_("Write a message or choose a template."),
    N_("No one to send to: every recipient was invalid, a duplicate or opted out."),
    N_("This campaign costs KSh %(cost)s but the balance is KSh %(balance)s. Top up to send it."),
    N_("Only a paused campaign can be resumed."),
    N_("Wait until the campaign has finished before retrying."),
    N_("Every recipient got this campaign; there is nothing to retry."),
)


class CampaignError(Exception):
    """A campaign action that cannot happen; ``code`` for machines, ``message`` for the user."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def hold_description(name: str, count: int) -> str:
    """The ledger's words for a campaign's hold (stored in English, shown in the reader's language)."""
    if count == 1:
        return wallet.CAMPAIGN_HOLD_ONE % {"name": name[:60]}
    return wallet.CAMPAIGN_HOLD % {"name": name[:60], "count": f"{count:,}"}


@dataclass
class Launch:
    """What a launch did: ``status`` is ``sending`` (``ranges`` to enqueue) or ``scheduled`` (quiet hours:
    ``waiting_until`` is the next opening)."""

    campaign_id: int
    status: str
    ranges: list[tuple[int, int]] = field(default_factory=list)
    waiting_until: datetime | None = None
    recipients: int = 0
    cost: Decimal = Decimal("0")
    tally: Tally | None = None


def get_campaign(client_id: int, campaign_id: int) -> Campaign:
    campaign = db.session.scalar(sa.select(Campaign).where(Campaign.client_id == client_id, Campaign.id == campaign_id))
    if campaign is None:
        raise CampaignError("not_found", NOT_FOUND)
    return campaign


# ------------------------------------------------------------------------------------------ launch


def launch_campaign(client_id: int, campaign_id: int, *, now: datetime | None = None) -> Launch:
    """Start a draft or scheduled campaign (or the pending "retry failed" run) now.

    A promotional campaign outside the tenant's sending hours is scheduled for the next opening instead.
    Otherwise the run number is claimed (draft/scheduled -> sending, once), the recipients are streamed in
    chunks, validated, de-duplicated and opted-out numbers skipped, and each chunk's message rows (with their
    reply links) are bulk-inserted; then the run's total is reserved with ``wallet.hold``. Raises
    :class:`CampaignError` (``insufficient_balance``, ``no_recipients``, ``channel_unavailable``,
    ``empty_body``, ``not_launchable``); the caller then rolls back, which undoes everything.
    """
    now = now or utcnow()
    campaign = get_campaign(client_id, campaign_id)
    client = db.session.get(Client, client_id)
    if campaign.status not in ("draft", "scheduled"):
        raise CampaignError("not_launchable", NOT_LAUNCHABLE % {"status": campaign.status})
    if not client.status:
        raise CampaignError("account_suspended", SUSPENDED)
    content = campaign_content(campaign)
    if not content.strip():
        raise CampaignError("empty_body", EMPTY_BODY, "message")
    if not quiet_hours.allowed(campaign.kind, client.settings, now):
        require_balance(client, campaign, content)  # refuse now, not at the opening
        opening = quiet_hours.next_opening(client.settings, now)
        _transition(campaign.id, ("draft", "scheduled"), status="scheduled", scheduled_at=opening)
        db.session.expire(campaign)
        return Launch(campaign.id, "scheduled", waiting_until=opening)
    try:
        route = channels.resolve_channel(client_id, campaign.channel)
    except channels.ChannelUnavailable as exc:
        raise CampaignError("channel_unavailable", exc.reason, "channel") from None
    run = db.session.scalar(
        sa.update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status.in_(("draft", "scheduled")))
        .values(status="sending", run=Campaign.run + 1, pause_reason=None, paused_at=None)
        .returning(Campaign.run)
        .execution_options(synchronize_session=False)
    )
    if run is None:
        raise CampaignError("not_launchable", STARTED_ALREADY)
    db.session.expire(campaign)
    retry_of = campaign.retry_of_run
    builder = TextBuilder(client, campaign.channel, campaign.kind, content)
    values = not builder.static  # without placeholders nobody's fields need to be read
    if campaign.channel == "whatsapp" and campaign.template_id is not None:
        template = db.session.get(Template, campaign.template_id)
        if template is not None and template.client_id == client_id and template.whatsapp_template_id:
            builder.whatsapp_template = template
            values = True
    if retry_of:
        stream = retry_candidates(client_id, campaign.id, retry_of, values=values)
    else:
        stream = candidates(client_id, campaign.recipients, values=values)
    sender = campaign.sender_id or (route.promotional_sender if campaign.kind == "promotional" else route.sender)
    tally, ranges, total, count = Tally(), [], Decimal("0"), 0
    for chunk in resolve(client_id, campaign.channel, stream, tally):
        if not chunk:
            continue
        ids, cost = insert_chunk(client, campaign, run, route, sender, chunk, builder, now)
        skipped = len(chunk) - len(ids)  # already in this run (a duplicate from another chunk)
        tally.duplicates += skipped
        tally.valid -= skipped
        ranges += [(ids[i], ids[min(i + DISPATCH_CHUNK, len(ids)) - 1]) for i in range(0, len(ids), DISPATCH_CHUNK)]
        total += cost
        count += len(ids)
    if count == 0:
        raise CampaignError("no_recipients", NO_RECIPIENTS)
    reference = f"campaign:{campaign.id}:run:{run}"
    if total > 0:
        try:
            wallet.hold(
                client_id,
                total,
                reference,
                hold_description(campaign.name, count),
                meta={"campaign_id": campaign.id, "run": run},
            )
        except wallet.InsufficientBalance:
            db.session.expire(client, ["balance"])
            shortfall = {"cost": f"{total:,.2f}", "balance": f"{client.balance:,.2f}"}
            raise CampaignError("insufficient_balance", INSUFFICIENT_BALANCE % shortfall) from None
    campaign.message = builder.content  # the text as launched (a template's text is copied, not referenced)
    campaign.hold_reference = reference if total > 0 else None
    campaign.estimated_cost = total
    campaign.stats = {**tally.as_dict(), "run": run}
    campaign.sent_at = campaign.sent_at or now
    campaign.retry_of_run = None
    if run == 1:
        campaign.total_recipients = count
    db.session.flush()
    return Launch(campaign.id, "sending", ranges, recipients=count, cost=total, tally=tally)


def require_balance(client: Client, campaign: Campaign, content: str | None = None) -> None:
    """Raise ``insufficient_balance`` when the balance cannot pay what launching ``campaign`` would reserve
    (checked before a campaign is scheduled or deferred by quiet hours; the launch's hold checks again)."""
    _, cost = estimate_run(client, campaign, campaign_content(campaign) if content is None else content)
    if cost > client.balance:
        shortfall = {"cost": f"{cost:,.2f}", "balance": f"{client.balance:,.2f}"}
        raise CampaignError("insufficient_balance", INSUFFICIENT_BALANCE % shortfall)


def _transition(campaign_id: int, from_statuses: tuple[str, ...], **values: Any) -> bool:
    result = db.session.execute(
        sa.update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status.in_(from_statuses))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


# ------------------------------------------------------------------------------------------ sending


def send_chunk(
    client_id: int,
    campaign_id: int,
    first_id: int,
    last_id: int,
    *,
    checkpoint: Callable[[], None] | None = None,
) -> list[int]:
    """Dispatch the pending messages of one chunk while the campaign is ``sending`` (re-checked every
    :data:`SEND_SLICE` messages, so pause and cancel stop a chunk part-way). Counts what was sent and what the
    provider refused on the campaign in SQL. Returns the ids the sandbox accepted (their reports are due)."""
    checkpoint = checkpoint or db.session.flush
    sandbox: list[int] = []
    while True:
        status = db.session.scalar(
            sa.select(Campaign.status).where(Campaign.id == campaign_id, Campaign.client_id == client_id)
        )
        if status != "sending":
            break
        now = utcnow()
        ids = db.session.scalars(
            sa.select(Message.id)
            .where(
                Message.client_id == client_id,
                Message.campaign_id == campaign_id,
                Message.id.between(first_id, last_id),
                Message.status == "pending",
                sa.or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
            )
            .order_by(Message.id)
            .limit(SEND_SLICE)
        ).all()
        if not ids:
            break
        outcome = dispatch.dispatch_messages(client_id, ids, checkpoint=checkpoint)
        count_outcome(campaign_id, len(outcome.sent) + len(outcome.unknown), len(outcome.failed))
        checkpoint()
        sandbox += outcome.sandbox
        if not (outcome.sent or outcome.failed or outcome.unknown):
            break  # only deferrals: the periodic retry picks them up at their time
    return sandbox


def count_outcome(campaign_id: int, sent: int, failed: int) -> None:
    if sent or failed:
        db.session.execute(
            sa.update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(sent_count=Campaign.sent_count + sent, failed_count=Campaign.failed_count + failed)
            .execution_options(synchronize_session=False)
        )


def pending_ranges(client_id: int, campaign_id: int, run: int) -> list[tuple[int, int]]:
    """Chunks (first id, last id) of the run's messages still pending, read by keyset without loading rows."""
    ranges, last = [], 0
    while True:
        ids = db.session.scalars(
            sa.select(Message.id)
            .where(
                Message.client_id == client_id,
                Message.campaign_id == campaign_id,
                Message.campaign_run == run,
                Message.status == "pending",
                Message.id > last,
            )
            .order_by(Message.id)
            .limit(DISPATCH_CHUNK)
        ).all()
        if not ids:
            return ranges
        ranges.append((ids[0], ids[-1]))
        last = ids[-1]


# ------------------------------------------------------------------------------------------ completion


def charged_filter() -> sa.ColumnElement[bool]:
    """Messages that cost money: accepted by the provider (also when its answer was unclear, or when the
    handset later failed to get it). Refused and never-sent messages cost nothing."""
    return sa.or_(
        Message.status.in_(("sent", "delivered", "unknown")),
        sa.and_(
            Message.status == "failed",
            sa.or_(Message.sent_at.is_not(None), Message.provider_message_id.is_not(None)),
        ),
    )


def finish_if_done(client_id: int, campaign_id: int, *, now: datetime | None = None) -> bool:
    """Settle the current run once nothing of it is pending or sending: keep what the accepted messages cost,
    release the rest of the hold, add it to ``total_cost``, mark the campaign ``sent`` (a cancelled one stays
    cancelled), notify ``campaign_completed`` and record ``campaign.completed``. True when this call settled."""
    now = now or utcnow()
    campaign = db.session.scalar(
        sa.select(Campaign)
        .where(Campaign.id == campaign_id, Campaign.client_id == client_id)
        .execution_options(populate_existing=True)
    )
    if campaign is None or campaign.status not in ("sending", "cancelled") or campaign.settled_run >= campaign.run:
        return False
    run = campaign.run
    in_run = (Message.campaign_id == campaign_id, Message.campaign_run == run)
    still_open = db.session.scalar(sa.select(Message.id).where(*in_run, Message.status.in_(OPEN_STATUSES)).limit(1))
    if still_open is not None:
        return False
    settled = db.session.execute(
        sa.update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.run == run,
            Campaign.settled_run < run,
            Campaign.status.in_(("sending", "cancelled")),
        )
        .values(
            settled_run=run,
            completed_at=now,
            status=sa.case((Campaign.status == "sending", "sent"), else_=Campaign.status),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if settled != 1:
        return False
    spent = db.session.scalar(sa.select(sa.func.sum(Message.cost)).where(*in_run, charged_filter())) or Decimal("0")
    if campaign.hold_reference:
        wallet.settle_hold(
            client_id,
            campaign.hold_reference,
            spent,
            description=wallet.CAMPAIGN_UNUSED_PART % {"name": campaign.name[:60]},
        )
    db.session.execute(
        sa.update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(total_cost=Campaign.total_cost + spent)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(campaign)
    _announce(campaign, run, spent)
    return True


def _announce(campaign: Campaign, run: int, spent: Decimal) -> None:
    counts = dict(
        db.session.execute(
            sa.select(Message.status, sa.func.count())
            .where(Message.campaign_id == campaign.id, Message.campaign_run == run)
            .group_by(Message.status)
        ).all()
    )
    total = sum(counts.values())
    failed = counts.get("failed", 0)
    notify(
        campaign.client_id,
        "campaign_completed",
        "campaign_cancelled" if campaign.status == "cancelled" else "campaign_finished",
        {"name": campaign.name, "sent": total - failed, "total": total, "failed": failed, "cost": spent},
        data={"campaign_id": campaign.id, "run": run},
    )
    record_event(
        campaign.client_id,
        "campaign.completed",
        {
            "campaign_id": campaign.id,
            "name": campaign.name,
            "status": campaign.status,
            "run": run,
            "recipients": total,
            "sent_count": campaign.sent_count,
            "delivered_count": campaign.delivered_count,
            "failed_count": campaign.failed_count,
            "cost": f"{spent:.2f}",
            "total_cost": f"{campaign.total_cost:.2f}",
            "completed_at": campaign.completed_at.isoformat() if campaign.completed_at else None,
        },
    )


# ------------------------------------------------------------------------------------------ controls


def pause_campaign(client_id: int, campaign_id: int, *, reason: str = "user", now: datetime | None = None) -> bool:
    """sending -> paused: chunk jobs stop at their next slice; pending messages wait. True when it changed."""
    get_campaign(client_id, campaign_id)
    return _transition(campaign_id, ("sending",), status="paused", pause_reason=reason, paused_at=now or utcnow())


def resume_campaign(client_id: int, campaign_id: int, *, now: datetime | None = None) -> Launch:
    """paused -> sending, returning the chunks of pending messages to enqueue again. A promotional campaign
    outside its sending hours stays paused until the next opening (``waiting_until``)."""
    now = now or utcnow()
    campaign = get_campaign(client_id, campaign_id)
    if campaign.status != "paused":
        raise CampaignError("not_paused", NOT_PAUSED)
    client = db.session.get(Client, client_id)
    if not quiet_hours.allowed(campaign.kind, client.settings, now):
        opening = quiet_hours.next_opening(client.settings, now)
        _transition(campaign_id, ("paused",), pause_reason="quiet_hours")
        db.session.expire(campaign)
        return Launch(campaign_id, "paused", waiting_until=opening)
    if not _transition(campaign_id, ("paused",), status="sending", pause_reason=None, paused_at=None):
        raise CampaignError("not_paused", NOT_PAUSED)
    db.session.expire(campaign)
    return Launch(campaign_id, "sending", pending_ranges(client_id, campaign_id, campaign.run))


def cancel_campaign(client_id: int, campaign_id: int, *, now: datetime | None = None) -> bool:
    """Stop for good: a draft or scheduled campaign just becomes cancelled; a sending or paused one marks its
    pending messages failed ("not sent: cancelled") and settles as soon as in-flight batches finish, which
    releases the unused hold. True when it changed."""
    now = now or utcnow()
    campaign = get_campaign(client_id, campaign_id)
    if not _transition(campaign_id, ("draft", "scheduled", "sending", "paused"), status="cancelled", cancelled_at=now):
        return False
    db.session.expire(campaign)
    if campaign.run and campaign.settled_run < campaign.run:
        db.session.execute(
            sa.update(Message)
            .where(
                Message.client_id == client_id,
                Message.campaign_id == campaign_id,
                Message.campaign_run == campaign.run,
                Message.status == "pending",
            )
            .values(status="failed", failed_at=now, error_message="Not sent: the campaign was cancelled.")
            .execution_options(synchronize_session=False)
        )
        finish_if_done(client_id, campaign_id, now=now)
    return True


def retry_failed(client_id: int, campaign_id: int, *, now: datetime | None = None) -> Launch:
    """Send the current run's failed and never-sent recipients again as a new run with its own quote and hold
    (or schedule it for the next opening in quiet hours)."""
    now = now or utcnow()
    campaign = get_campaign(client_id, campaign_id)
    if campaign.status not in ("sent", "cancelled", "failed") or campaign.settled_run < campaign.run:
        raise CampaignError("not_finished", NOT_FINISHED)
    failed = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Message)
        .where(Message.campaign_id == campaign_id, Message.campaign_run == campaign.run, Message.status == "failed")
    )
    if not failed:
        raise CampaignError("nothing_to_retry", NOTHING_TO_RETRY)
    if not _transition(
        campaign_id, ("sent", "cancelled", "failed"), status="scheduled", scheduled_at=now, retry_of_run=campaign.run
    ):
        raise CampaignError("not_finished", NOT_FINISHED)
    db.session.expire(campaign)
    return launch_campaign(client_id, campaign_id, now=now)


def mark_failed(client_id: int, campaign_id: int, reason: str) -> None:
    """A scheduled launch that could not start (no balance, no channel...): failed, with a notification."""
    if _transition(campaign_id, ("scheduled",), status="failed", stats={"error": reason}):
        campaign = get_campaign(client_id, campaign_id)
        notify(
            client_id,
            "campaign_completed",
            "campaign_not_started",
            {"name": campaign.name},
            message=reason,
            data={"campaign_id": campaign_id},
        )
