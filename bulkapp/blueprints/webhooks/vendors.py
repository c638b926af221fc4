"""Messaging vendors' callbacks: delivery reports and incoming messages from Onfon, Twilio, WhatsApp Cloud,
UltraMsg and Mobitech. Each call is authenticated (channel token or vendor signature) before anything is read
into the database; bad credentials answer 403, unreadable payloads 400, and replays 200 with no second effect."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from functools import cached_property

import sqlalchemy as sa
from flask import Response, jsonify, request

from bulkapp.blueprints.webhooks.blueprint import bp
from bulkapp.blueprints.webhooks.common import WebhookRejected, is_jasmin_call
from bulkapp.extensions import db
from bulkapp.models import Channel, Client
from bulkapp.parsing import scrub_unstorable, storable_text
from bulkapp.providers import whatsapp_cloud
from bulkapp.providers.base import (
    ConfigurationError,
    DeliveryReport,
    InboundMessage,
    MalformedPayload,
    Provider,
    WebhookRequest,
)
from bulkapp.providers.registry import get_provider, provider_class
from bulkapp.public_url import public_base_url
from bulkapp.services.inbox import inbound
from bulkapp.services.messaging import delivery

log = logging.getLogger(__name__)

WEBHOOK_MAX_BYTES = 1024 * 1024  # Meta batches statuses; nothing a vendor sends us comes near this
JASMIN_ACK = "ACK/Jasmin"
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


# ----------------------------------------------------------------------------------------------- routes


@bp.route("/onfon/inbound", methods=["GET", "POST"])
def onfon_inbound():
    req, channel = _token_call("onfon")
    _record_inbound(SharedAccount(channel), _parse(channel, req, inbound=True))
    return _onfon_ok()


@bp.route("/onfon/dlr", methods=["GET", "POST"])
def onfon_dlr():
    req, channel = _token_call("onfon")
    _apply_reports(SharedAccount(channel), _parse(channel, req, inbound=False))
    return _onfon_ok()


@bp.post("/mobitech/dlr")
def mobitech_dlr():
    req, channel = _token_call("mobitech")
    _apply_reports(SharedAccount(channel), _parse(channel, req, inbound=False))
    return _ok()


@bp.post("/ultramsg")
def ultramsg():
    req, channel = _token_call("ultramsg")
    reports, messages = _parse(channel, req, inbound=False), _parse(channel, req, inbound=True)
    _apply_reports(SharedAccount(channel), reports, commit=False)
    _record_inbound([channel], messages)
    return _ok()


@bp.post("/twilio/inbound")
def twilio_inbound():
    req, channels = _twilio_call(number_field="To")
    _record_inbound(channels, _parse(channels[0], req, inbound=True))
    return _twiml()


@bp.post("/twilio/status")
def twilio_status():
    req, channels = _twilio_call(number_field="From")
    _apply_reports(channels, _parse(channels[0], req, inbound=False))
    return _twiml()


@bp.get("/whatsapp")
def whatsapp_subscribe():
    token = request.args.get("hub.verify_token", "")
    channel = _channel_by_token("whatsapp_cloud", token)
    challenge = whatsapp_cloud.verify_subscription(request.args, channel.webhook_token if channel else None)
    if challenge is None:
        raise WebhookRejected(403, "forbidden", "Wrong verify token or mode.")
    return Response(challenge, mimetype="text/plain")


@bp.post("/whatsapp")
def whatsapp_notify():
    req = _webhook_request()
    with _malformed_is_400():
        numbers = sorted(whatsapp_cloud.webhook_phone_number_ids(req))
    if not numbers:
        return _ok()  # no messages change (e.g. an account update): nothing to check or store
    verified = {number: _meta_channels(req, number) for number in numbers}
    for number, channels in verified.items():
        part = req if len(numbers) == 1 else _only_number(req, number)
        _apply_reports(channels, _parse(channels[0], part, inbound=False), commit=False)
        _record_inbound(channels, _parse(channels[0], part, inbound=True), commit=False)
    db.session.commit()
    return _ok()


# ----------------------------------------------------------------------------------- authentication


def _webhook_request() -> WebhookRequest:
    """The call as plain data, with the public URL the vendor used (BASE_URL + path + query): signatures
    cover it, and behind a TLS-terminating proxy ``request.url`` would say http:// and the wrong host."""
    request.max_content_length = WEBHOOK_MAX_BYTES
    query = request.query_string.decode("latin-1")
    url = public_base_url() + request.path + (f"?{query}" if query else "")
    return WebhookRequest.from_werkzeug(request, url=url)


def _channel_by_token(provider: str, token: str) -> Channel | None:
    if not token or not storable_text(token):  # no token holds NUL or a lone surrogate (PostgreSQL refuses them)
        return None
    return db.session.scalar(sa.select(Channel).where(Channel.webhook_token == token, Channel.provider == provider))


def _token_call(provider: str) -> tuple[WebhookRequest, Channel]:
    """Vendors without signatures: the channel whose ``webhook_token`` is ``?token=`` (constant-time checked)."""
    req = _webhook_request()
    channel = _channel_by_token(provider, req.args.get("token", ""))
    if channel is None:
        raise WebhookRejected(403, "forbidden", "Missing or wrong token.")
    with _provider(channel) as vendor:
        if not vendor.verify_request(req, webhook_token=channel.webhook_token):
            raise WebhookRejected(403, "forbidden", "Missing or wrong token.")
    return req, channel


def _twilio_call(number_field: str) -> tuple[WebhookRequest, list[Channel]]:
    """Twilio: the channels of the account in ``AccountSid`` whose Auth Token verifies X-Twilio-Signature, the
    one sending from (status) or receiving on (inbound) ``number_field``'s number first."""
    req = _webhook_request()
    if not req.header("X-Twilio-Signature"):
        raise WebhookRejected(403, "forbidden", "Missing X-Twilio-Signature.")
    with _malformed_is_400():
        form = req.form
    account = form.get("AccountSid")
    if not account:
        raise WebhookRejected(400, "malformed", "A Twilio webhook needs AccountSid.")
    number = _plain(form.get(number_field))
    service = form.get("MessagingServiceSid")
    candidates = [c for c in _channels("twilio") if c.credentials.get("account_sid") == account]
    candidates.sort(key=lambda c: not (_plain(c.config.get("from_number")) == number or _service(c, service)))
    channels = [c for c in candidates if _verifies(c, req)]
    if not channels:
        raise WebhookRejected(403, "forbidden", "The signature does not match any Twilio channel.")
    return req, channels


def _service(channel: Channel, service: str | None) -> bool:
    return bool(service) and channel.config.get("messaging_service_sid") == service


def _meta_channels(req: WebhookRequest, phone_number_id: str) -> list[Channel]:
    """WhatsApp Cloud: the channels of ``phone_number_id`` whose app secret verifies X-Hub-Signature-256."""
    candidates = [c for c in _channels("whatsapp_cloud") if c.credentials.get("phone_number_id") == phone_number_id]
    channels = [c for c in candidates if _verifies(c, req)]
    if not channels:
        raise WebhookRejected(403, "forbidden", "The signature does not match a WhatsApp channel of this number.")
    return channels


def _channels(provider: str) -> list[Channel]:
    """Every channel of a vendor, oldest first. Signed vendors are matched on encrypted credentials, so the
    candidates are decrypted here; an install has a handful of accounts per vendor."""
    return list(db.session.scalars(sa.select(Channel).where(Channel.provider == provider).order_by(Channel.id)))


def _verifies(channel: Channel, req: WebhookRequest) -> bool:
    try:
        with _provider(channel) as vendor:
            return vendor.verify_request(req, webhook_token=channel.webhook_token)
    except WebhookRejected:
        return False


@contextmanager
def _provider(channel: Channel) -> Iterator[Provider]:
    try:
        vendor = get_provider(channel.provider, channel.credentials, channel.config)
    except ConfigurationError as exc:
        log.warning("Webhook for channel %s refused: its settings are incomplete (%s)", channel.id, exc.reason)
        raise WebhookRejected(403, "channel_not_configured", "The channel's settings are incomplete.") from None
    with vendor:
        yield vendor


class SharedAccount:
    """The token's channel, then (computed only when needed) the other tenants' channels on the same vendor
    account (identical credentials): a reseller account shared by several tenants reports every delivery
    report and incoming message to the one URL registered with the vendor."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def __iter__(self) -> Iterator[Channel]:
        yield self.channel
        yield from self.siblings

    @cached_property
    def siblings(self) -> list[Channel]:
        fields = [spec.name for spec in provider_class(self.channel.provider).credential_fields]
        key = [self.channel.credentials.get(name) for name in fields]
        if not any(key):
            return []
        others = (c for c in _channels(self.channel.provider) if c.id != self.channel.id)
        return [c for c in others if [c.credentials.get(name) for name in fields] == key]


# ----------------------------------------------------------------------------------------- processing


@contextmanager
def _malformed_is_400() -> Iterator[None]:
    try:
        yield
    except MalformedPayload as exc:
        raise WebhookRejected(400, "malformed", exc.reason) from None


def _parse(channel: Channel, req: WebhookRequest, *, inbound: bool) -> list:
    with _provider(channel) as vendor, _malformed_is_400():
        parsed = vendor.parse_inbound(req) if inbound else vendor.parse_delivery_report(req)
    return [_scrubbed(item) for item in parsed]


def _scrubbed(item: InboundMessage | DeliveryReport) -> InboundMessage | DeliveryReport:
    """``item`` with NUL characters and lone surrogates replaced by U+FFFD in every text: PostgreSQL stores
    neither, and refusing the call would make the vendor retry forever and lose the message."""
    changes = {}
    for field in fields(item):
        value = getattr(item, field.name)
        if isinstance(value, str):
            cleaned = scrub_unstorable(value)
        elif isinstance(value, tuple) and all(isinstance(part, str) for part in value):
            cleaned = tuple(scrub_unstorable(part) for part in value)
        else:
            continue
        if cleaned != value:
            changes[field.name] = cleaned
    return replace(item, **changes) if changes else item


def _apply_reports(channels: Iterable[Channel], reports: Iterable[DeliveryReport], *, commit: bool = True) -> None:
    """Each report applies to the first channel's tenant that has the message (one channel, or the tenants
    of one shared vendor account); unknown ids are logged by the service and answered 200."""
    for report in reports:
        for channel in channels:
            if delivery.apply_delivery_report(channel.provider, report, channel_id=channel.id) is not None:
                break
    if commit:
        db.session.commit()


def _record_inbound(channels: Iterable[Channel], messages: Iterable[InboundMessage], *, commit: bool = True) -> None:
    """Each message goes to the channel whose sender ID, short code or number it was sent to (Onfon's ``to``),
    else to the first channel (the token's, or the number's)."""
    for message in messages:
        channel = _addressed(channels, message.to)
        inbound.record_inbound(channel.client_id, message.channel, channel.provider, message)
    if commit:
        db.session.commit()


def _addressed(channels: Iterable[Channel], to: str | None) -> Channel:
    target = _plain(to)
    first = None
    for channel in channels:
        first = first or channel
        if not target or target in _senders(channel):
            return channel
    return first


def _senders(channel: Channel) -> set[str]:
    names = {channel.config.get(key) for key in ("sender_id", "from_number", "sender_name")}
    names.add(db.session.scalar(sa.select(Client.sender_id).where(Client.id == channel.client_id)))
    return {_plain(name) for name in names if name}


def _plain(value: object) -> str:
    """A sender ID, short code or number compared loosely: case, spaces and a leading + do not matter."""
    return "".join(str(value or "").split()).lstrip("+").lower()


def _only_number(req: WebhookRequest, phone_number_id: str) -> WebhookRequest:
    """The (already verified) WhatsApp webhook reduced to the changes of one business number, so that each
    number's statuses and messages go to that number's channel."""
    body = req.json()
    entries = []
    for entry in body["entry"]:
        if not isinstance(entry, dict):
            continue
        changes = [
            change
            for change in (entry.get("changes") or [])
            if isinstance(change, dict)
            and isinstance(change.get("value"), dict)
            and str((change["value"].get("metadata") or {}).get("phone_number_id")) == phone_number_id
        ]
        if changes:
            entries.append({**entry, "changes": changes})
    raw = json.dumps({**body, "entry": entries}).encode()
    return WebhookRequest(req.method, req.url, dict(req.headers), raw)


def _ok():
    return jsonify({"status": "ok"})


def _onfon_ok() -> Response:
    """Jasmin (Onfon's gateway) retries a push until the body is exactly ``ACK/Jasmin``; Onfon's own shape
    gets the usual JSON."""
    return Response(JASMIN_ACK, mimetype="text/plain") if is_jasmin_call() else _ok()


def _twiml() -> Response:
    return Response(TWIML_EMPTY, mimetype="text/xml")
