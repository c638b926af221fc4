"""The OpenAPI 3.1 document of REST API v1 (served at /api/v1/openapi.json and rendered at /api/v1/docs)."""

from __future__ import annotations

from typing import Any

from bulkapp.models import CAMPAIGN_STATUSES, CHANNELS, MESSAGE_STATUSES
from bulkapp.parsing import INT_MAX as MAX_ID  # ids are INTEGER columns: a larger id cannot exist
from bulkapp.services.notifications.events import EVENT_TYPES

MONEY = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "examples": ["12.50"], "description": "KSH, 2 decimals."}
TIME = {"type": ["string", "null"], "format": "date-time"}
PHONE_EXAMPLES = ["0712345678", "+254712345678"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


def _obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = required
    return schema


ERROR_TEXT = {
    400: "Malformed JSON, or a body that is not a JSON object.",
    401: "Missing, unknown or revoked API key.",
    402: "Insufficient balance (`insufficient_balance`): top up first.",
    403: "The account is suspended (`account_suspended`).",
    404: "Unknown id, or an id that belongs to another account.",
    409: "Conflict: an Idempotency-Key reused with another body (`idempotency_conflict`), or a duplicate.",
    413: "The body is too large.",
    422: "Validation failed; `code` says what (`invalid_recipient`, `empty_body`, ...) and `field` where.",
    429: "Rate limited: retry after `Retry-After` seconds.",
}


def _errors(*statuses: int) -> dict[str, Any]:
    found = {}
    for status in (401, 403, 429, *statuses):
        answer: dict[str, Any] = {
            "description": ERROR_TEXT[status],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        if status == 429:
            answer["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}}
        found[str(status)] = answer
    return dict(sorted(found.items()))


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(name: str, example: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name), "example": example}}}


IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any unique string (e.g. a UUID). Repeating the same key and body returns the first answer "
    "without doing the work again; the same key with another body answers 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}


def _id_param(name: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"The {what}'s id.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def schemas() -> dict[str, Any]:
    message_props = {
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": list(MESSAGE_STATUSES)},
        "to": {"type": "string", "description": "E.164 number (+2547...) or email address."},
        "from": _nullable("string"),
        "channel": {"type": "string", "enum": list(CHANNELS)},
        "direction": {"type": "string", "enum": ["outbound", "inbound"]},
        "segments": {"type": "integer", "minimum": 0},
        "cost": MONEY,
        "body": {"type": "string", "description": "The text as sent, reply link and footer included."},
        "subject": _nullable("string"),
        "campaign_id": _nullable("integer"),
        "provider": _nullable("string"),
        "provider_message_id": _nullable("string"),
        "error_message": _nullable("string"),
        "created_at": {"type": "string", "format": "date-time"},
        "sent_at": TIME,
        "delivered_at": TIME,
        "failed_at": TIME,
    }
    contact_props = {
        "id": {"type": "integer"},
        "name": _nullable("string"),
        "contact": {"type": "string"},
        "department": _nullable("string"),
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        "opted_out": {"type": "boolean"},
        "total_messages": {"type": "integer"},
        "last_message_at": TIME,
        "created_at": {"type": "string", "format": "date-time"},
    }
    campaign_props = {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "channel": {"type": "string", "enum": list(CHANNELS)},
        "kind": {"type": "string", "enum": ["promotional", "transactional"]},
        "status": {"type": "string", "enum": list(CAMPAIGN_STATUSES)},
        "total_recipients": {"type": "integer"},
        "sent_count": {"type": "integer"},
        "delivered_count": {"type": "integer"},
        "failed_count": {"type": "integer"},
        "total_cost": MONEY,
        "scheduled_at": TIME,
        "sent_at": TIME,
        "created_at": {"type": "string", "format": "date-time"},
        "recipients": {
            "type": "object",
            "description": "After a launch: valid, invalid, duplicates, opted_out and invalid_samples (with reasons).",
        },
    }
    webhook_props = {
        "url": _nullable("string", format="uri"),
        "events": {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}},
        "active": {"type": "boolean"},
    }
    return {
        "Error": _obj(
            {
                "error": _obj(
                    {
                        "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                        "message": {"type": "string"},
                        "field": {"type": "string", "description": "The request field at fault, when one is."},
                    },
                    ["code", "message"],
                )
            },
            ["error"],
        ),
        "Balance": _obj(
            {
                "balance": MONEY,
                "currency": {"type": "string", "const": "KES"},
                "price_per_unit": MONEY,
                "units_available": {"type": "integer", "minimum": 0},
                "account_number": _nullable("string", description="The M-Pesa paybill account reference."),
            },
            ["balance", "currency", "price_per_unit", "units_available", "account_number"],
        ),
        "QuoteRequest": _obj(
            {
                "channel": {"type": "string", "enum": list(CHANNELS), "default": "sms"},
                "body": {"type": "string", "maxLength": 100_000},
                "to": {"type": "array", "maxItems": 10_000, "items": {"type": "string", "examples": PHONE_EXAMPLES}},
                "template_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                "variables": {"type": "object", "additionalProperties": {"type": ["string", "number"]}},
                "append_reply_link": {"type": "boolean", "default": True},
            },
        ),
        "Quote": _obj(
            {
                "channel": {"type": "string", "enum": list(CHANNELS)},
                "encoding": {"type": "string", "enum": ["GSM-7", "UCS-2"]},
                "characters": {"type": "integer", "description": "Characters as sent, reply link included."},
                "segments": {"type": "integer"},
                "recipients": {"type": "integer", "description": "Valid, distinct recipients."},
                "invalid": {
                    "type": "array",
                    "items": _obj({"to": {"type": "string"}, "reason": {"type": "string"}}, ["to", "reason"]),
                },
                "duplicates": {"type": "integer"},
                "units_per_recipient": {"type": "integer"},
                "units": {"type": "integer"},
                "price_per_unit": MONEY,
                "cost": MONEY,
                "reply_link": {"type": "boolean"},
                "non_gsm_characters": {"type": "array", "items": {"type": "string"}},
                "missing_variables": {"type": "array", "items": {"type": "string"}},
                "balance": MONEY,
                "affordable": {"type": "boolean"},
            },
            ["encoding", "characters", "segments", "recipients", "invalid", "units", "cost"],
        ),
        "SendMessage": _obj(
            {
                "to": {"type": "string", "examples": PHONE_EXAMPLES},
                "body": {"type": "string", "maxLength": 100_000},
                "channel": {"type": "string", "enum": list(CHANNELS), "default": "sms"},
                "subject": {"type": "string", "maxLength": 255, "description": "Email only."},
                "template_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                "variables": {"type": "object", "additionalProperties": {"type": ["string", "number"]}},
                "append_reply_link": {"type": "boolean", "description": "Default true for SMS."},
            },
            ["to"],
        ),
        "Message": _obj(message_props, list(message_props)),
        "MessageList": _obj(
            {"data": {"type": "array", "items": _ref("Message")}, "next_cursor": _nullable("string")},
            ["data", "next_cursor"],
        ),
        "CreateContact": _obj(
            {
                "contact": {"type": "string", "examples": PHONE_EXAMPLES},
                "name": {"type": "string", "maxLength": 120},
                "department": {"type": "string", "maxLength": 80},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            ["contact"],
        ),
        "Contact": _obj(contact_props, list(contact_props)),
        "ContactList": _obj(
            {"data": {"type": "array", "items": _ref("Contact")}, "next_cursor": _nullable("string")},
            ["data", "next_cursor"],
        ),
        "CreateCampaign": _obj(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "channel": {"type": "string", "enum": list(CHANNELS), "default": "sms"},
                "body": {"type": "string", "maxLength": 100_000},
                "template_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                "to": {"type": "array", "items": {"type": "string"}, "description": "Recipients, or use department."},
                "department": {"type": "string", "description": "Every contact in this department."},
                "kind": {
                    "type": "string",
                    "enum": ["promotional", "transactional"],
                    "default": "promotional",
                    "description": "Promotional messages carry the opt-out footer and respect sending hours.",
                },
                "scheduled_at": {
                    "type": "string",
                    "format": "date-time",
                    "description": "In the future and at most 5 years ahead, else 422 invalid_scheduled_at.",
                },
                "send": {"type": "boolean", "default": False, "description": "Launch now (or at scheduled_at)."},
            },
            ["name"],
        ),
        "Campaign": _obj(campaign_props, list(campaign_props)),
        "WebhookSettings": _obj(
            {**webhook_props, "secret": _nullable("string", pattern="^whsec_")}, ["url", "events", "active", "secret"]
        ),
        "UpdateWebhook": _obj(webhook_props),
    }


def paths(with_campaigns: bool) -> dict[str, Any]:
    found = {
        "/balance": {
            "get": {
                "operationId": "getBalance",
                "summary": "Wallet balance",
                "description": "The prepaid balance in KSH, the price per SMS unit and the units it buys.",
                "responses": {"200": _json(_ref("Balance"), "The balance."), **_errors()},
            }
        },
        "/quote": {
            "post": {
                "operationId": "quote",
                "summary": "Price a message",
                "description": "Exactly what sending would charge: encoding, segments and cost, with the reply "
                "link SMS carry (`append_reply_link: false` quotes without it). Invalid recipients are listed "
                "with the reason; nothing is sent or charged.",
                "requestBody": _body("QuoteRequest", {"channel": "sms", "body": "Hello", "to": ["0712345678"]}),
                "responses": {"200": _json(_ref("Quote"), "The quote."), **_errors(400, 404, 413, 422)},
            }
        },
        "/messages": {
            "post": {
                "operationId": "sendMessage",
                "summary": "Send one message",
                "description": "Charges the wallet and queues the message; poll it with GET /messages/{id} "
                "or receive webhooks.",
                "parameters": [IDEMPOTENCY_HEADER],
                "requestBody": _body("SendMessage", {"to": "0712345678", "body": "Your order is ready"}),
                "responses": {
                    "202": _json(_ref("Message"), "Accepted: the message is queued."),
                    **_errors(400, 402, 404, 409, 413, 422),
                },
            },
            "get": {
                "operationId": "listMessages",
                "summary": "List messages",
                "description": "Newest first; pass `next_cursor` as `cursor` for the next page.",
                "parameters": [
                    _query("direction", "outbound or inbound", {"type": "string", "enum": ["outbound", "inbound"]}),
                    _query("status", "Only this status.", {"type": "string", "enum": list(MESSAGE_STATUSES)}),
                    _query("campaign_id", "Only this campaign.", {"type": "integer", "minimum": 1, "maximum": MAX_ID}),
                    _query("limit", "Page size.", {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}),
                    _query("cursor", "From a previous page's next_cursor.", {"type": "string", "maxLength": 64}),
                ],
                "responses": {"200": _json(_ref("MessageList"), "A page of messages."), **_errors(422)},
            },
        },
        "/messages/{message_id}": {
            "get": {
                "operationId": "getMessage",
                "summary": "One message",
                "parameters": [_id_param("message_id", "message")],
                "responses": {"200": _json(_ref("Message"), "The message."), **_errors(404)},
            }
        },
        "/contacts": {
            "get": {
                "operationId": "listContacts",
                "summary": "List contacts",
                "description": "Newest first; pass `next_cursor` as `cursor` for the next page.",
                "parameters": [
                    _query("q", "Search names and numbers.", {"type": "string", "maxLength": 200}),
                    _query("department", "Only this department.", {"type": "string", "maxLength": 80}),
                    _query("limit", "Page size.", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
                    _query("cursor", "From a previous page.", {"type": "integer", "minimum": 1, "maximum": MAX_ID}),
                ],
                "responses": {"200": _json(_ref("ContactList"), "A page of contacts."), **_errors(422)},
            },
            "post": {
                "operationId": "createContact",
                "summary": "Add a contact",
                "description": "The number is stored in E.164; a number already in the book answers 409.",
                "parameters": [IDEMPOTENCY_HEADER],
                "requestBody": _body("CreateContact", {"name": "Wanjiku", "contact": "0712345678"}),
                "responses": {"201": _json(_ref("Contact"), "Created."), **_errors(400, 409, 413, 422)},
            },
        },
        "/webhook": {
            "get": {
                "operationId": "getWebhook",
                "summary": "Webhook settings",
                "responses": {"200": _json(_ref("WebhookSettings"), "The settings and signing secret."), **_errors()},
            },
            "put": {
                "operationId": "setWebhook",
                "summary": "Change webhook settings",
                "description": "Fields left out keep their value. Deliveries are signed per Standard Webhooks "
                "with `secret`.",
                "requestBody": _body(
                    "UpdateWebhook",
                    {"url": "https://example.com/hooks", "events": ["message.delivered"], "active": True},
                ),
                "responses": {"200": _json(_ref("WebhookSettings"), "Saved."), **_errors(400, 413, 422)},
            },
        },
    }
    found["/openapi.json"] = {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 document.")},
        }
    }
    found["/docs"] = {
        "get": {
            "operationId": "getDocs",
            "summary": "This document as a web page",
            "security": [],
            "responses": {"200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}}},
        }
    }
    if with_campaigns:
        found["/campaigns"] = {
            "post": {
                "operationId": "createCampaign",
                "summary": "Create a campaign",
                "description": "To a list of numbers or a department; `send: true` launches it now (or at "
                "`scheduled_at`), otherwise it stays a draft.",
                "parameters": [IDEMPOTENCY_HEADER],
                "requestBody": _body(
                    "CreateCampaign", {"name": "Promo", "body": "Hello {{name}}", "to": ["0712345678"], "send": True}
                ),
                "responses": {"201": _json(_ref("Campaign"), "Created."), **_errors(400, 402, 404, 409, 413, 422)},
            }
        }
        found["/campaigns/{campaign_id}"] = {
            "get": {
                "operationId": "getCampaign",
                "summary": "One campaign and its progress",
                "parameters": [_id_param("campaign_id", "campaign")],
                "responses": {"200": _json(_ref("Campaign"), "The campaign."), **_errors(404)},
            }
        }
    return found


def openapi_document(base_url: str, *, with_campaigns: bool = True) -> dict[str, Any]:
    """The OpenAPI 3.1 description of every v1 endpoint, with ``base_url`` as the server."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bulkapp REST API",
            "version": "1",
            "description": "Send SMS, WhatsApp and email, price messages, manage contacts and campaigns. "
            "Money is KSH as a string with 2 decimals. Phone numbers are accepted in any Kenyan form and "
            'returned as E.164. Every error is `{"error": {"code", "message"}}`.',
        },
        "servers": [{"url": base_url.rstrip("/") + "/api/v1"}],
        "security": [{"bearerAuth": []}, {"apiKeyHeader": []}],
        "paths": paths(with_campaigns),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
