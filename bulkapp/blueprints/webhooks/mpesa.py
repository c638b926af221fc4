"""Safaricom M-Pesa Daraja callbacks: STK push results and paybill (C2B) validation/confirmation."""

from __future__ import annotations

import logging

from flask import current_app, jsonify

from bulkapp.blueprints.webhooks import bp
from bulkapp.blueprints.webhooks.common import WebhookRejected, json_object, require_token
from bulkapp.extensions import db
from bulkapp.services import topups

log = logging.getLogger(__name__)


def _mpesa_payload() -> dict:
    require_token(current_app.config.get("MPESA_CALLBACK_TOKEN"))
    return json_object()


def _malformed(error: topups.MalformedPayload) -> WebhookRejected:
    return WebhookRejected(400, "malformed", str(error))


@bp.post("/mpesa/callback")
def mpesa_callback():
    payload = _mpesa_payload()
    try:
        outcome = topups.handle_stk_callback(payload)
    except topups.MalformedPayload as exc:
        raise _malformed(exc) from None
    db.session.commit()
    log.info("M-Pesa STK callback: %s", outcome.status)
    return jsonify({"ResultCode": 0, "ResultDesc": "Accepted"})


@bp.post("/mpesa/c2b/validation")
def mpesa_c2b_validation():
    payload = _mpesa_payload()
    try:
        answer = topups.validate_c2b(payload)
    except topups.MalformedPayload as exc:
        raise _malformed(exc) from None
    db.session.rollback()  # validation only reads
    return jsonify(answer)


@bp.post("/mpesa/c2b/confirmation")
def mpesa_c2b_confirmation():
    payload = _mpesa_payload()
    try:
        outcome = topups.confirm_c2b(payload)
    except topups.MalformedPayload as exc:
        raise _malformed(exc) from None
    db.session.commit()
    log.info("M-Pesa paybill confirmation: %s", outcome.status)
    return jsonify({"ResultCode": 0, "ResultDesc": "Success"})
