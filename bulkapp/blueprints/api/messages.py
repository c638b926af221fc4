"""API: balance, quote, send one message, read one message, list messages."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import jsonify, request

from bulkapp.blueprints.api import params
from bulkapp.blueprints.api.auth import current_api_client, idempotent, json_body
from bulkapp.blueprints.api.blueprint import bp
from bulkapp.blueprints.api.errors import ApiError
from bulkapp.blueprints.api.serializers import message_json, money
from bulkapp.extensions import db
from bulkapp.models import MESSAGE_STATUSES, Message, Template
from bulkapp.public_url import public_base_url
from bulkapp.services.billing import pricing
from bulkapp.services.messaging.compose import (
    MAX_CHARACTERS,
    SendError,
    fill_variables,
    normalise_recipient,
    send_message,
)
from bulkapp.services.messaging.cursors import InvalidCursor
from bulkapp.services.messaging.message_list import list_messages

MAX_QUOTE_RECIPIENTS = 10_000
MAX_BODY = 100_000


def send_error(exc: SendError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message, exc.field)


@bp.get("/balance")
def balance():
    client = current_api_client()
    return jsonify(
        {
            "balance": money(client.balance),
            "currency": "KES",
            "price_per_unit": money(client.price_per_unit),
            "units_available": client.getBalanceInUnits(),
            "account_number": client.account_number,
        }
    )


def _recipients(payload: dict[str, Any], channel: str) -> tuple[list[str], list[dict[str, str]], int]:
    """(valid unique recipients, invalid ones with reasons, duplicates dropped)."""
    raw = payload.get("to", [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise params.invalid("to", "'to' must be a list of phone numbers (or addresses for email).")
    if len(raw) > MAX_QUOTE_RECIPIENTS:
        raise params.invalid("to", f"Quote at most {MAX_QUOTE_RECIPIENTS:,} recipients at a time.")
    valid: dict[str, None] = {}
    invalid: list[dict[str, str]] = []
    duplicates = 0
    for item in raw:
        if not isinstance(item, str):
            invalid.append({"to": str(item), "reason": "Not a string."})
            continue
        try:
            number = normalise_recipient(channel, item)
        except SendError as exc:
            invalid.append({"to": item, "reason": exc.message})
            continue
        if number in valid:
            duplicates += 1
        valid.setdefault(number)
    return list(valid), invalid, duplicates


def _quote_text(client_id: int, payload: dict[str, Any]) -> tuple[str, list[str]]:
    body = params.optional_str(payload, "body", MAX_BODY)
    template_id = params.optional_int(payload, "template_id")
    variables = params.optional_object(payload, "variables") or {}
    if not (body or "").strip() and template_id is not None:
        template = db.session.scalar(
            sa.select(Template).where(Template.client_id == client_id, Template.id == template_id)
        )
        if template is None:
            raise ApiError(404, "not_found", "That template does not exist.", "template_id")
        body = template.content
    text = (body or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    values = {str(k): str(v) for k, v in variables.items() if v is not None and not isinstance(v, dict | list)}
    return fill_variables(text, values)


@bp.post("/quote")
def quote():
    """What sending ``body`` to ``to`` would charge, reply link included unless ``append_reply_link`` is false."""
    client = current_api_client()
    payload = json_body()
    channel = params.channel(payload)
    append = params.optional_bool(payload, "append_reply_link")
    if channel != "sms":
        append = False
    text, missing = _quote_text(client.id, payload)
    if not text:
        raise ApiError(422, "empty_body", "Write a message, or choose a template.", "body")
    recipients, invalid, duplicates = _recipients(payload, channel)
    try:
        result = pricing.quote_message(
            client, channel, text, len(recipients), append_reply_link=append, base_url=public_base_url()
        )
    except ValueError as exc:  # a tenant's bad units_per_message setting
        raise ApiError(422, "invalid_settings", str(exc), "channel") from None
    if result.characters > MAX_CHARACTERS[channel]:
        raise ApiError(
            422,
            "message_too_long",
            f"A message on this channel can be at most {MAX_CHARACTERS[channel]:,} characters; "
            f"this one has {result.characters:,}.",
            "body",
        )
    return jsonify(
        {
            "channel": channel,
            "encoding": result.encoding,
            "characters": result.characters,
            "segments": result.segments,
            "recipients": len(recipients),
            "invalid": invalid,
            "duplicates": duplicates,
            "units_per_recipient": result.units_per_recipient,
            "units": result.total_units,
            "price_per_unit": money(result.price_per_unit),
            "cost": money(result.cost),
            "reply_link": result.reply_link,
            "non_gsm_characters": result.ucs2_characters,
            "missing_variables": missing,
            "balance": money(client.balance),
            "affordable": result.cost <= client.balance,
        }
    )


@bp.post("/messages")
@idempotent
def send():
    client = current_api_client()
    payload = json_body()
    to = payload.get("to")
    if not isinstance(to, str) or not to.strip():
        raise params.invalid("to", "'to' is required: one phone number (or an address for email).", "invalid_recipient")
    try:
        message = send_message(
            client.id,
            to=to,
            body=params.optional_str(payload, "body", MAX_BODY),
            channel=params.channel(payload),
            subject=params.optional_str(payload, "subject"),
            template_id=params.optional_int(payload, "template_id"),
            variables=params.optional_object(payload, "variables"),
            append_reply_link=params.optional_bool(payload, "append_reply_link"),
            idempotency_key=(request.headers.get("Idempotency-Key") or "").strip() or None,
        )
    except SendError as exc:
        raise send_error(exc) from None
    return message_json(message), 202


def _owned_message(message_id: int) -> Message:
    message = db.session.scalar(
        sa.select(Message).where(Message.client_id == current_api_client().id, Message.id == message_id)
    )
    if message is None:
        raise ApiError(404, "not_found", "There is no message with this id.")
    return message


@bp.get("/messages/<int:message_id>")
def message(message_id: int):
    return jsonify(message_json(_owned_message(message_id)))


@bp.get("/messages")
def messages():
    args = request.args
    cursor = args.get("cursor") or None
    try:
        page = list_messages(
            current_api_client().id,
            cursor=cursor,
            limit=params.query_int(args, "limit", 25, 1, 100),
            direction=params.query_choice(args, "direction", ("outbound", "inbound")),
            status=params.query_choice(args, "status", MESSAGE_STATUSES),
            campaign_id=params.query_id(args, "campaign_id"),
        )
    except InvalidCursor:
        raise params.invalid("cursor", "'cursor' must be a next_cursor value from an earlier page.") from None
    return jsonify({"data": [message_json(m) for m in page.messages], "next_cursor": page.next_cursor})
