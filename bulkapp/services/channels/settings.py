"""Settings > Channels: a tenant's provider accounts (add, edit, enable, delete), their webhook URLs, page views.

Rules (also in the Channels page text), matching how messages pick their channel (services/channels/routing.py):

- One active channel per kind (sms, whatsapp, email) among the tenant's provider accounts. Enabling a channel
  switches the others of its kind off; that active channel is the one a live account sends through.
- The sandbox channel every tenant gets is the test-mode channel: a test-mode account always sends through it
  and a live account never does, so it takes no part in the one-active rule and is never enabled, disabled
  or deleted here (its sender IDs can be edited and its connection tested).
- A live account may switch every channel of a kind off; the page then warns that those messages will fail
  until a channel is enabled (never a silent fall back to the sandbox).
- Secrets are write-only: stored encrypted (``channels.credentials``), never rendered, and left unchanged when
  the form leaves them blank.

The forms and their checks are in ``channel_validation``; vendor calls (connection test, balance sync) in
``channel_checks``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from bulkapp.extensions import db
from bulkapp.models import CHANNELS, Channel, Client
from bulkapp.providers.registry import provider_class
from bulkapp.services.channels.validation import (
    KIND_LABELS,
    OPERATOR_FIELDS,
    SANDBOX,
    SENDER_VALUE_FIELDS,
    ChannelSettingsError,
    addable_providers,
    clean_settings,
    provider_label,
    supports_balance,
)

STATUS_KEYS = ("last_test", "last_sync", "balance")
WEBHOOK_NOTES = {
    "onfon": _l("Paste both URLs in the Onfon portal. The token in them is how we know the call is from Onfon."),
    "twilio": _l("Set these on your number or Messaging Service. Twilio signs each call with your Auth Token."),
    "whatsapp_cloud": _l(
        "In the Meta app's WhatsApp webhook settings use this callback URL and verify token, and "
        "subscribe to messages. Meta signs each call with your App secret."
    ),
    "ultramsg": _l(
        "Paste this in UltraMsg's instance settings as the webhook URL and turn on received messages and message acks."
    ),
    "mobitech": _l("Give this URL to Mobitech for delivery reports."),
}
SANDBOX_FIXED = _l(
    "The sandbox is your test-mode channel: test mode always sends through it and a live account never does, "
    "so it cannot be switched off or deleted."
)


class ChannelNotFound(LookupError):
    """No channel with that id for this tenant (views answer 404)."""


class ChannelActionRefused(ValueError):
    """An action the rules above do not allow (deleting the sandbox, ...); the message says why."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A stored test or sync result, ready for a template."""

    ok: bool
    message: str
    at: datetime | None
    amount: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelView:
    """One channel as the Channels page shows it."""

    channel: Channel
    label: str
    kind_label: str
    sender_id: str | None
    transactional_sender_id: str | None
    last_test: Outcome | None
    last_sync: Outcome | None
    balance: Outcome | None
    webhooks: list[tuple[str, str]]
    webhook_note: str
    has_balance: bool
    is_sandbox: bool


# ------------------------------------------------------------------------------------------- changes


def owned_channel(client_id: int, channel_id: int, *, lock: bool = False) -> Channel:
    """The tenant's channel (row-locked with ``lock`` on PostgreSQL); ChannelNotFound for a missing or
    foreign id."""
    query = sa.select(Channel).where(Channel.id == channel_id, Channel.client_id == client_id)
    if lock:
        query = query.with_for_update()
    channel = db.session.scalar(query)
    if channel is None:
        raise ChannelNotFound(channel_id)
    return channel


def create_channel(
    client_id: int,
    provider: str,
    values: Mapping[str, Any],
    *,
    active: bool = True,
    allow_private_urls: bool = False,
) -> tuple[Channel, list[str]]:
    """Add a provider account for a tenant, with a fresh webhook token.

    Returns the channel and the labels of the channels it switched off (when ``active``). Refuses the
    sandbox (each tenant has one) and a second channel for the same vendor account (a double submit).
    """
    if provider not in {info.name for info in addable_providers()}:
        raise ChannelSettingsError({"provider": _l("Choose a provider from the list.")})
    credentials, config = clean_settings(provider, values, allow_private_urls=allow_private_urls)
    existing = db.session.scalars(
        sa.select(Channel).where(Channel.client_id == client_id, Channel.provider == provider)
    ).all()
    if any(channel.credentials == credentials for channel in existing):
        raise ChannelSettingsError(
            message=_l("This %(name)s account is already set up below.", name=provider_label(provider))
        )
    channel = Channel(
        client_id=client_id,
        name=provider_class(provider).channel,
        provider=provider,
        credentials=credentials,
        config=config,
        active=False,
        webhook_token=new_webhook_token(),
    )
    db.session.add(channel)
    db.session.flush()
    switched_off = _activate(channel) if active else []
    return channel, switched_off


def update_channel(
    client_id: int, channel_id: int, values: Mapping[str, Any], *, allow_private_urls: bool = False
) -> Channel:
    """Save a channel's settings; blank secrets keep their saved values. A change to anything but the sender
    IDs clears the last connection test (it no longer describes these settings)."""
    channel = owned_channel(client_id, channel_id, lock=True)
    credentials, config = clean_settings(
        channel.provider, values, saved_credentials=channel.credentials, allow_private_urls=allow_private_urls
    )
    old = dict(channel.config or {})
    status = {key: old[key] for key in (*STATUS_KEYS, *OPERATOR_FIELDS) if key in old}
    if credentials != channel.credentials or _without_senders(config) != _without_senders(old):
        status.pop("last_test", None)
    if credentials != channel.credentials:
        channel.credentials = credentials
    channel.config = {**config, **status}
    db.session.flush()
    return channel


def _without_senders(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in SENDER_VALUE_FIELDS and k not in STATUS_KEYS}


def set_active(client_id: int, channel_id: int, active: bool) -> list[str]:
    """Enable (switching the others of its kind off) or disable a channel; idempotent.

    Returns sentences describing what changed. ChannelActionRefused for the sandbox.
    """
    channel = owned_channel(client_id, channel_id, lock=True)
    if channel.provider == SANDBOX:
        raise ChannelActionRefused(SANDBOX_FIXED)
    label, kind = provider_label(channel.provider), KIND_LABELS[channel.name]
    if active:
        if channel.active:
            return []
        off = _activate(channel)
        note = _("%(name)s is now your active %(kind)s channel.", name=label, kind=kind)
        return [note + (" " + _("Switched off: %(names)s.", names=", ".join(off)) if off else "")]
    if not channel.active:
        return []
    channel.active = False
    db.session.flush()
    return [_("%(name)s is switched off.", name=label)]


def delete_channel(client_id: int, channel_id: int) -> list[str]:
    """Delete a channel and its credentials (not the sandbox). Returns sentences describing what changed."""
    channel = owned_channel(client_id, channel_id, lock=True)
    if channel.provider == SANDBOX:
        raise ChannelActionRefused(SANDBOX_FIXED)
    label = provider_label(channel.provider)
    db.session.delete(channel)
    db.session.flush()
    return [_("%(name)s channel deleted.", name=label)]


def _activate(channel: Channel) -> list[str]:
    others = db.session.scalars(
        sa.select(Channel).where(
            Channel.client_id == channel.client_id,
            Channel.name == channel.name,
            Channel.id != channel.id,
            Channel.provider != SANDBOX,
            Channel.active.is_(True),
        )
    ).all()
    for other in others:
        other.active = False
    channel.active = True
    db.session.flush()
    return [provider_label(other.provider) for other in others]


def new_webhook_token() -> str:
    return secrets.token_urlsafe(24)


def rotate_webhook_token(client_id: int, channel_id: int) -> Channel:
    """A new webhook token; the URLs with the old one stop working at once (the vendor portal needs the new)."""
    channel = owned_channel(client_id, channel_id, lock=True)
    channel.webhook_token = new_webhook_token()
    db.session.flush()
    return channel


def set_auto_sync(client_id: int, enabled: bool) -> None:
    """Turn the periodic Onfon balance sync on or off for a tenant."""
    db.session.execute(sa.update(Client).where(Client.id == client_id).values(auto_sync_balance=enabled))


# ---------------------------------------------------------------------------------------- webhook URLs


def webhook_urls(channel: Channel, base_url: str) -> list[tuple[str, str]]:
    """The exact URLs (and WhatsApp's verify token) to paste into the vendor's portal, built from ``base_url``,
    each with its label for the page (the vendor's own field names stay as the vendor writes them).

    Token-authenticated vendors carry the channel's ``webhook_token`` in ``?token=``; Twilio and Meta sign their
    calls instead. Vendors without webhooks (sandbox, SMTP), or a channel without a token, get ``[]``.
    """
    base = base_url.rstrip("/")
    token = channel.webhook_token
    provider = channel.provider
    if provider == "twilio":
        return [
            (_("Incoming messages (A message comes in)"), f"{base}/webhooks/twilio/inbound"),
            (_("Status callback URL"), f"{base}/webhooks/twilio/status"),
        ]
    if not token:
        return []
    query = f"?token={quote(token, safe='')}"
    if provider == "onfon":
        return [
            (_("Incoming SMS URL"), f"{base}/webhooks/onfon/inbound{query}"),
            (_("Delivery report (DLR) URL"), f"{base}/webhooks/onfon/dlr{query}"),
        ]
    if provider == "whatsapp_cloud":
        return [(_("Callback URL"), f"{base}/webhooks/whatsapp"), (_("Verify token"), token)]
    if provider == "ultramsg":
        return [(_("Webhook URL"), f"{base}/webhooks/ultramsg{query}")]
    if provider == "mobitech":
        return [(_("Delivery report (DLR) URL"), f"{base}/webhooks/mobitech/dlr{query}")]
    return []


# ----------------------------------------------------------------------------------------- page views


def _outcome(entry: Any) -> Outcome | None:
    if not isinstance(entry, dict) or not ("ok" in entry or "amount" in entry):
        return None
    try:
        at = datetime.fromisoformat(entry["at"]) if entry.get("at") else None
    except (TypeError, ValueError):
        at = None
    try:
        amount = Decimal(str(entry["amount"])) if entry.get("amount") not in (None, "") else None
    except ArithmeticError:
        amount = None
    message = str(entry.get("message") or entry.get("raw") or "")
    return Outcome(bool(entry.get("ok", True)), message, at, amount, entry.get("currency"))


def channel_view(channel: Channel, base_url: str) -> ChannelView:
    config = channel.config or {}
    return ChannelView(
        channel=channel,
        label=provider_label(channel.provider),
        kind_label=KIND_LABELS.get(channel.name, channel.name),
        sender_id=config.get("sender_id") if channel.name == "sms" else None,
        transactional_sender_id=config.get("transactional_sender_id") if channel.name == "sms" else None,
        last_test=_outcome(config.get("last_test")),
        last_sync=_outcome(config.get("last_sync")),
        balance=_outcome(config.get("balance")),
        webhooks=webhook_urls(channel, base_url),
        webhook_note=WEBHOOK_NOTES.get(channel.provider, ""),
        has_balance=supports_balance(channel.provider),
        is_sandbox=channel.provider == SANDBOX,
    )


def channel_views(client_id: int, base_url: str) -> list[ChannelView]:
    """The tenant's channels by kind (SMS, WhatsApp, email), the active one of each kind first."""
    channels = db.session.scalars(
        sa.select(Channel).where(Channel.client_id == client_id).order_by(Channel.active.desc(), Channel.id)
    ).all()
    order = {kind: i for i, kind in enumerate(CHANNELS)}
    channels = sorted(channels, key=lambda c: order.get(c.name, len(order)))
    return [channel_view(channel, base_url) for channel in channels]


def kinds_without_active(client_id: int) -> list[str]:
    """For a live account: the kinds it would fail to send, i.e. SMS without an active provider channel, and
    WhatsApp or email with channels but none active. A test-mode account sends everything to the sandbox."""
    client = db.session.get(Client, client_id)
    if client is None or client.is_test_mode:
        return []
    rows = db.session.execute(
        sa.select(Channel.name, sa.func.max(sa.case((Channel.active.is_(True), 1), else_=0)))
        .where(Channel.client_id == client_id, Channel.provider != SANDBOX)
        .group_by(Channel.name)
    ).all()
    active = {name: bool(flag) for name, flag in rows}
    return [KIND_LABELS[kind] for kind in CHANNELS if (kind == "sms" or kind in active) and not active.get(kind)]
