"""Campaign jobs: send one chunk, and the periodic clock (due schedules, quiet hours, completion)."""

from __future__ import annotations

import logging
from datetime import datetime

from bulkapp.columns import utcnow
from bulkapp.extensions import db, rq
from bulkapp.jobs import job

log = logging.getLogger(__name__)


def enqueue_chunks(client_id: int, campaign_id: int, ranges: list[tuple[int, int]]) -> None:
    """Queue one ``send_campaign_chunk`` per (first id, last id) on the ``default`` queue. Call after commit."""
    backend = rq.backend()
    if backend.mode == "rq" and ranges:
        from rq import Queue

        queue: Queue = backend.queues["default"]
        queue.enqueue_many(
            [
                Queue.prepare_data(send_campaign_chunk, (client_id, campaign_id, first, last), timeout=1800)
                for first, last in ranges
            ]
        )
        return
    for first, last in ranges:
        rq.enqueue(send_campaign_chunk, client_id, campaign_id, first, last, queue="default")


@job
def send_campaign_chunk(client_id: int, campaign_id: int, first_id: int, last_id: int) -> int:
    """Dispatch the pending messages of one chunk (committing per provider batch), queue the sandbox's delivery
    reports, and settle the campaign when this was the last of it. Returns how many the sandbox accepted."""
    from bulkapp.jobs.messaging import apply_sandbox_reports
    from bulkapp.services.campaigns import launch as campaign_launch

    sandbox = campaign_launch.send_chunk(client_id, campaign_id, first_id, last_id, checkpoint=db.session.commit)
    db.session.commit()
    if sandbox:
        rq.enqueue(apply_sandbox_reports, client_id, sandbox, queue="low")
    campaign_launch.finish_if_done(client_id, campaign_id)
    db.session.commit()
    return len(sandbox)


@job
def launch_campaign(client_id: int, campaign_id: int) -> str:
    """Launch one campaign in its own transaction; a launch that cannot start marks the campaign failed."""
    from bulkapp.services.campaigns import launch as campaign_launch

    try:
        launch = campaign_launch.launch_campaign(client_id, campaign_id)
    except campaign_launch.CampaignError as exc:
        db.session.rollback()
        if exc.code != "not_launchable":
            campaign_launch.mark_failed(client_id, campaign_id, exc.message)
            db.session.commit()
        return exc.code
    db.session.commit()
    enqueue_chunks(client_id, campaign_id, launch.ranges)
    return launch.status


def run_clock(now: datetime | None = None) -> dict[str, int]:
    """One tick: launch due scheduled campaigns, apply quiet hours (pause at closing, resume at opening), queue
    again the chunks of campaigns whose jobs were lost, and settle campaigns whose messages are all done. Each
    campaign in its own transaction."""
    from bulkapp.services.campaigns import clock
    from bulkapp.services.campaigns import launch as campaign_launch

    now = now or utcnow()
    due = clock.due_campaigns(now)
    db.session.commit()
    launched = 0
    for client_id, campaign_id in due:
        try:
            launch = campaign_launch.launch_campaign(client_id, campaign_id, now=now)
        except campaign_launch.CampaignError as exc:
            db.session.rollback()
            if exc.code != "not_launchable":
                campaign_launch.mark_failed(client_id, campaign_id, exc.message)
                db.session.commit()
            continue
        db.session.commit()
        enqueue_chunks(client_id, campaign_id, launch.ranges)
        launched += launch.status == "sending"
    paused, to_resume = clock.apply_quiet_hours(now)
    db.session.commit()
    resumed = 0
    for client_id, campaign_id in to_resume:
        try:
            launch = campaign_launch.resume_campaign(client_id, campaign_id, now=now)
        except campaign_launch.CampaignError:
            db.session.rollback()
            continue
        db.session.commit()
        enqueue_chunks(client_id, campaign_id, launch.ranges)
        resumed += launch.status == "sending"
    requeued = 0
    for client_id, campaign_id, ranges in clock.stalled_campaigns(now):
        db.session.commit()
        enqueue_chunks(client_id, campaign_id, ranges)
        requeued += 1
    db.session.commit()
    settled = 0
    for client_id, campaign_id in clock.unsettled_campaigns():
        settled += campaign_launch.finish_if_done(client_id, campaign_id, now=now)
        db.session.commit()
    return {"launched": launched, "paused": len(paused), "resumed": resumed, "requeued": requeued, "settled": settled}


@job
def campaign_clock() -> dict[str, int]:
    """Periodic (every 20 s): see :func:`run_clock`. The database says what is due, so a missed tick only
    delays and a doubled one finds nothing more to do."""
    return run_clock()
