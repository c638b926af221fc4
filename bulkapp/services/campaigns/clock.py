"""The campaigns' clock: which scheduled campaigns are due, quiet hours pausing and resuming promotional
sends, and campaigns left unsettled or stalled (their chunk jobs lost). Periodic jobs call these."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Campaign, Client
from bulkapp.services.campaigns.launch import STALL_AFTER, _transition, pending_ranges
from bulkapp.services.compliance import quiet_hours


def due_campaigns(now: datetime, limit: int = 100) -> list[tuple[int, int]]:
    """(client id, campaign id) of scheduled campaigns whose time has come."""
    return [
        (cid, mid)
        for cid, mid in db.session.execute(
            sa.select(Campaign.client_id, Campaign.id)
            .where(Campaign.status == "scheduled", Campaign.scheduled_at <= now)
            .order_by(Campaign.scheduled_at, Campaign.id)
            .limit(limit)
        ).all()
    ]


def apply_quiet_hours(now: datetime) -> tuple[list[int], list[tuple[int, int]]]:
    """Pause promotional campaigns still sending at closing time and list those paused by quiet hours whose
    window has opened: ``(paused ids, [(client id, campaign id) to resume])``."""
    paused, to_resume = [], []
    rows = db.session.execute(
        sa.select(Campaign.id, Campaign.client_id, Campaign.status, Client.settings)
        .join(Client, Client.id == Campaign.client_id)
        .where(
            Campaign.kind == "promotional",
            sa.or_(
                Campaign.status == "sending",
                sa.and_(Campaign.status == "paused", Campaign.pause_reason == "quiet_hours"),
            ),
        )
    ).all()
    for campaign_id, client_id, status, settings in rows:
        open_now = quiet_hours.is_open(settings, now)
        if status == "sending" and not open_now:
            if _transition(campaign_id, ("sending",), status="paused", pause_reason="quiet_hours", paused_at=now):
                paused.append(campaign_id)
        elif status == "paused" and open_now:
            to_resume.append((client_id, campaign_id))
    return paused, to_resume


def unsettled_campaigns(limit: int = 200) -> list[tuple[int, int]]:
    """Sending or cancelled campaigns whose current run is not settled yet (completion candidates)."""
    return [
        (cid, mid)
        for cid, mid in db.session.execute(
            sa.select(Campaign.client_id, Campaign.id)
            .where(Campaign.status.in_(("sending", "cancelled")), Campaign.settled_run < Campaign.run)
            .limit(limit)
        ).all()
    ]


def stalled_campaigns(now: datetime, *, idle: timedelta = STALL_AFTER) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """Sending campaigns with pending messages but no progress for ``idle`` (their chunk jobs were lost, e.g. a
    Redis restart): (client id, campaign id, chunks to enqueue again). Claims are conditional, so a chunk queued
    twice still sends each message once. Touches ``updated_at`` so the next tick waits again."""
    found = []
    rows = db.session.execute(
        sa.select(Campaign.client_id, Campaign.id, Campaign.run).where(
            Campaign.status == "sending", Campaign.updated_at <= now - idle
        )
    ).all()
    for client_id, campaign_id, run in rows:
        ranges = pending_ranges(client_id, campaign_id, run)
        if ranges:
            _transition(campaign_id, ("sending",), updated_at=now)
            found.append((client_id, campaign_id, ranges))
    return found
