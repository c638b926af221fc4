"""API: create a campaign (draft, launched now, or scheduled) and read its progress."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from flask import jsonify

from bulkapp.blueprints.api import params
from bulkapp.blueprints.api.auth import current_api_client, idempotent, json_body
from bulkapp.blueprints.api.blueprint import bp
from bulkapp.blueprints.api.errors import ApiError
from bulkapp.blueprints.api.serializers import campaign_json
from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.jobs.campaigns import enqueue_chunks
from bulkapp.models import Campaign
from bulkapp.parsing import parse_future
from bulkapp.services.campaigns import drafts as campaigns
from bulkapp.services.campaigns import launch as campaign_launch
from bulkapp.services.campaigns import recipients as campaign_recipients
from bulkapp.services.campaigns.launch import CampaignError

MAX_RECIPIENTS = 10_000  # numbers in one request; larger audiences go by department
STATUS = {"insufficient_balance": 402, "not_found": 404, "account_suspended": 403, "not_launchable": 409}


def campaign_error(exc: CampaignError) -> ApiError:
    return ApiError(STATUS.get(exc.code, 422), exc.code, exc.message, exc.field)


def _selection(payload: dict[str, Any]) -> dict[str, Any]:
    to = payload.get("to")
    department = params.optional_str(payload, "department", 80)
    if to is not None and (not isinstance(to, list) or not all(isinstance(n, str) for n in to)):
        raise params.invalid("to", "'to' must be a list of phone numbers (or addresses for email).")
    if to is not None and len(to) > MAX_RECIPIENTS:
        raise params.invalid("to", f"Send at most {MAX_RECIPIENTS:,} numbers per request; use a department for more.")
    numbers = "\n".join(n.strip() for n in to or [] if n.strip())
    if not numbers and not (department or "").strip():
        raise ApiError(422, "no_recipients", "Give 'to' (a list of numbers) or 'department'.", "to")
    return campaign_recipients.clean_selection(departments=[department] if department else [], numbers=numbers)


def _scheduled_at(payload: dict[str, Any]) -> datetime | None:
    raw = params.optional_str(payload, "scheduled_at", 40)
    if raw is None:
        return None
    when = parse_future(raw, utcnow())
    if when is None:
        message = "'scheduled_at' must be an ISO-8601 time in the future, at most 5 years ahead."
        raise params.invalid("scheduled_at", message)
    return when


@bp.post("/campaigns")
@idempotent
def create_campaign():
    client_id = current_api_client().id
    payload = json_body()
    name = payload.get("name")
    if not isinstance(name, str):
        raise params.invalid("name", "'name' is required.")
    kind = payload.get("kind", "promotional")
    data = campaigns.DraftInput(
        name=name,
        channel=params.channel(payload),
        kind=kind if isinstance(kind, str) else "",
        sender_id=None,
        message=params.optional_str(payload, "body", 100_000) or "",
        template_id=params.optional_int(payload, "template_id"),
        selection=_selection(payload),
    )
    send = params.optional_bool(payload, "send") or False
    when = _scheduled_at(payload)
    after_commit = None
    try:
        campaign = campaigns.save_draft(client_id, data)
        if send and when is not None:
            campaigns.schedule_campaign(client_id, campaign.id, when)
        elif send:
            launch = campaign_launch.launch_campaign(client_id, campaign.id)
            after_commit = partial(enqueue_chunks, client_id, campaign.id, launch.ranges)
    except CampaignError as exc:
        db.session.rollback()
        raise campaign_error(exc) from None
    db.session.refresh(campaign)
    if after_commit is None:
        return campaign_json(campaign), 201
    return campaign_json(campaign), 201, after_commit


@bp.get("/campaigns/<int:campaign_id>")
def campaign(campaign_id: int):
    found = db.session.scalar(
        sa.select(Campaign).where(Campaign.client_id == current_api_client().id, Campaign.id == campaign_id)
    )
    if found is None:
        raise ApiError(404, "not_found", "There is no campaign with this id.")
    return jsonify(campaign_json(found))
