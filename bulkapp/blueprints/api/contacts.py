"""API: the contact book (list, add) and the webhook endpoint settings (read, replace)."""

from __future__ import annotations

from flask import current_app, jsonify, request

from bulkapp.blueprints.api import params
from bulkapp.blueprints.api.auth import current_api_client, idempotent, json_body
from bulkapp.blueprints.api.blueprint import bp
from bulkapp.blueprints.api.errors import ApiError
from bulkapp.blueprints.api.serializers import contact_json
from bulkapp.extensions import db
from bulkapp.services.contacts.book import (
    FIELD_VALUE_LIMIT,
    ContactError,
    DuplicateContact,
    create_contact,
    field_key,
    page_of_contacts,
)
from bulkapp.services.tenant_webhooks.settings import WebhookSettingsError, configure_webhook, webhook_settings

MAX_FIELDS = 50


@bp.get("/contacts")
def contacts():
    args = request.args
    q = args.get("q") or None
    if q is not None and len(q) > 200:
        raise params.invalid("q", "'q' can be at most 200 characters.")
    department = args.get("department") or None
    if department is not None and len(department) > 80:
        raise params.invalid("department", "'department' can be at most 80 characters.")
    page = page_of_contacts(
        current_api_client().id,
        q,
        department,
        after=params.query_id(args, "cursor"),
        limit=params.query_int(args, "limit", 50, 1, 100),
    )
    next_cursor = str(page.older) if page.older is not None else None
    return jsonify({"data": [contact_json(c) for c in page.contacts], "next_cursor": next_cursor})


def _fields(payload) -> dict[str, str] | None:
    raw = params.optional_object(payload, "fields")
    if raw is None:
        return None
    if len(raw) > MAX_FIELDS:
        raise params.invalid("fields", f"A contact can have at most {MAX_FIELDS} fields.")
    fields = {}
    for name, value in raw.items():
        key = field_key(name)
        if not key or not isinstance(value, str | int | float) or isinstance(value, bool):
            raise params.invalid("fields", "'fields' maps names to text or numbers.")
        if len(str(value)) > FIELD_VALUE_LIMIT:
            raise params.invalid("fields", f"Field values can be at most {FIELD_VALUE_LIMIT} characters.")
        fields[key] = str(value)
    return fields


@bp.post("/contacts")
@idempotent
def add_contact():
    payload = json_body()
    number = payload.get("contact")
    if not isinstance(number, str) or not number.strip():
        raise params.invalid("contact", "'contact' is required: a phone number or an email address.")
    try:
        row = create_contact(
            current_api_client().id,
            contact=number,
            name=params.optional_str(payload, "name"),
            department=params.optional_str(payload, "department"),
            fields=_fields(payload),
        )
        db.session.flush()
    except DuplicateContact as exc:
        raise ApiError(409, "duplicate_contact", exc.message, "contact") from None
    except ContactError as exc:
        raise params.invalid(exc.field, exc.message) from None
    return contact_json(row), 201


@bp.get("/webhook")
def webhook():
    return jsonify(webhook_settings(current_api_client().id))


@bp.put("/webhook")
def set_webhook():
    client_id = current_api_client().id
    payload = json_body()
    current = webhook_settings(client_id)
    url = payload.get("url", current["url"])
    if url is not None and (not isinstance(url, str) or len(url) > 500):
        raise params.invalid("url", "'url' must be an https URL of at most 500 characters, or null.")
    events = payload.get("events", current["events"])
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise params.invalid("events", "'events' must be a list of event types.")
    active = payload.get("active", current["active"])
    if not isinstance(active, bool):
        raise params.invalid("active", "'active' must be true or false.")
    try:
        configure_webhook(
            client_id,
            url=url,
            events=events,
            active=active,
            allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE_URLS"],
        )
    except WebhookSettingsError as exc:
        db.session.rollback()
        raise params.invalid(exc.field or "webhook", exc.message) from None
    db.session.commit()
    return jsonify(webhook_settings(client_id))
