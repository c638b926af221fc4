"""Safaricom M-Pesa Daraja callbacks: STK push results and paybill (C2B) validation/confirmation."""

from __future__ import annotations

import ipaddress
import logging

from flask import current_app, jsonify, request

from bulkapp.blueprints.webhooks.blueprint import bp
from bulkapp.blueprints.webhooks.common import WebhookRejected, json_object, require_token
from bulkapp.extensions import db
from bulkapp.parsing import scrub_unstorable
from bulkapp.services.billing import paybill, topups

log = logging.getLogger(__name__)

C2B_ACKNOWLEDGED = {"ResultCode": 0, "ResultDesc": "Success"}


def _mpesa_payload() -> dict:
    _require_allowed_address()
    require_token(current_app.config.get("MPESA_CALLBACK_TOKEN"))
    return _storable(json_object())


def _storable(value):
    """The payload with NUL characters and lone surrogates replaced by U+FFFD in every text, so a hostile or
    garbled callback is recorded (or refused as malformed) instead of failing in the database."""
    if isinstance(value, str):
        return scrub_unstorable(value)
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def _require_allowed_address() -> None:
    """With ``MPESA_ALLOWED_IPS`` set, only those networks may call: the client address is the one
    ``PROXY_HOPS`` makes trustworthy (ProxyFix has already put it in ``remote_addr``)."""
    allowed = current_app.config["MPESA_ALLOWED_IPS"]  # parsed once, by Config
    if not allowed:
        return
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        address = None
    if address is None or not any(address in network for network in allowed):
        log.warning("M-Pesa callback from %s refused: not in MPESA_ALLOWED_IPS", request.remote_addr)
        raise WebhookRejected(403, "forbidden", "This address may not send M-Pesa callbacks.")


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
        answer = paybill.validate_c2b(payload)
    except topups.MalformedPayload as exc:
        raise _malformed(exc) from None
    db.session.rollback()  # validation only reads
    return jsonify(answer)


@bp.post("/mpesa/c2b/confirmation")
def mpesa_c2b_confirmation():
    """Always acknowledged once authenticated and readable: the payment happened at Safaricom, and an error
    here would only make Daraja resend it. What could not be credited is kept for an admin, and so is a
    payment whose recording failed unexpectedly (its whole payload is logged too, in case keeping it fails)."""
    payload = _mpesa_payload()
    try:
        outcome = paybill.confirm_c2b(payload)
        db.session.commit()
    except topups.MalformedPayload as exc:
        db.session.rollback()
        raise _malformed(exc) from None
    except Exception:
        db.session.rollback()
        log.exception("paybill confirmation could not be recorded: %r", payload)
        try:
            paybill.keep_unrecorded(payload)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("paybill confirmation %r could not be kept either", str(payload.get("TransID"))[:40])
        return jsonify(C2B_ACKNOWLEDGED)
    log.info("M-Pesa paybill confirmation: %s", outcome.status)
    return jsonify(C2B_ACKNOWLEDGED)
