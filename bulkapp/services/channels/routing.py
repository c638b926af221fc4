"""Which channel an outbound message goes through, the provider built from it, and the sender id it carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.i18n import N_, stored_sentences
from bulkapp.models import CHANNELS, Channel, Client
from bulkapp.providers.base import Provider
from bulkapp.providers.registry import get_provider

SANDBOX = "sandbox"
KIND_LABELS = {"sms": "SMS", "whatsapp": "WhatsApp", "email": "email"}
# Config keys that name the sender, in the order providers use them (Onfon/sandbox, Mobitech, Twilio, SMTP).
SENDER_FIELDS = ("sender_id", "sender_name", "from_number", "from_address")
# Why a kind cannot send: English in the API and on a failed message, shown translated on pages (i18n.stored_text).
NO_CHANNEL = {
    "sms": N_("No SMS channel is set up for this account. Add one in Settings › Channels to send SMS."),
    "whatsapp": N_("No WhatsApp channel is set up for this account. Add one in Settings › Channels to send WhatsApp."),
    "email": N_("No email channel is set up for this account. Add one in Settings › Channels to send email."),
}
stored_sentences(*NO_CHANNEL.values())


class ChannelUnavailable(Exception):
    """The tenant has no usable channel of that kind; ``reason`` is a sentence for the user."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Route:
    """Where messages of one kind go for one tenant: the provider, its settings and the senders to use.

    ``sender`` is for single (transactional) messages, ``promotional_sender`` for campaign messages.
    ``channel_id`` is None only for a test-mode tenant whose sandbox channel row is gone (the sandbox needs no
    settings). ``credentials`` are decrypted; keep a Route in memory only.
    """

    kind: str
    provider_name: str
    channel_id: int | None
    sender: str | None
    promotional_sender: str | None = None
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def is_sandbox(self) -> bool:
        return self.provider_name == SANDBOX

    def build_provider(self) -> Provider:
        """The provider instance (its own pooled HTTP session; close it, or use it as a context manager).
        Raises ConfigurationError when the channel's settings are incomplete."""
        return get_provider(self.provider_name, self.credentials, self.config)


def resolve_channel(client_id: int, kind: str) -> Route:
    """The route for ``kind`` (sms / whatsapp / email) messages of a tenant.

    A tenant in test mode always sends through its sandbox, whatever else is set up: its sandbox channel of
    that kind, else its sandbox SMS channel (the sandbox serves every kind), else a settings-free sandbox.
    A live tenant sends through its newest active channel of that kind that is not the sandbox; having
    none raises :class:`ChannelUnavailable` (a live tenant is never charged for a sandbox send).

    The sender of single SMS is the channel's ``transactional_sender_id`` when set; otherwise, and for campaign
    (promotional) messages, it is the configured sender (``sender_id``, ``sender_name``, ``from_number`` or
    ``from_address``), else the tenant's ``sender_id`` for SMS.
    """
    if kind not in CHANNELS:
        raise ChannelUnavailable(kind, f"{kind!r} is not a channel; use sms, whatsapp or email.")
    client = db.session.get(Client, client_id)
    if client is None:
        raise ChannelUnavailable(kind, "This account does not exist.")
    if client.is_test_mode:
        channel = db.session.scalar(
            sa.select(Channel)
            .where(Channel.client_id == client_id, Channel.provider == SANDBOX)
            .order_by(sa.case((Channel.name == kind, 0), else_=1), Channel.active.desc(), Channel.id)
            .limit(1)
        )
        config = dict(channel.config or {}) if channel is not None else {}
        senders = (_sender("sms", config, client, False), _sender("sms", config, client, True))
        if kind != "sms":
            senders = (None, None)
        return Route(kind, SANDBOX, channel.id if channel is not None else None, *senders, {}, config)
    channel = db.session.scalar(
        sa.select(Channel)
        .where(
            Channel.client_id == client_id,
            Channel.name == kind,
            Channel.active.is_(True),
            Channel.provider != SANDBOX,
        )
        .order_by(Channel.id.desc())
        .limit(1)
    )
    if channel is None:
        raise ChannelUnavailable(kind, NO_CHANNEL[kind])
    config = dict(channel.config or {})
    credentials = dict(channel.credentials or {})
    senders = (_sender(kind, config, client, False), _sender(kind, config, client, True))
    return Route(kind, channel.provider, channel.id, *senders, credentials, config)


def usable_kinds(client_id: int) -> list[str]:
    """The channel kinds the tenant can send on now, in the usual order (test mode: all of them)."""
    client = db.session.get(Client, client_id)
    if client is None:
        return []
    if client.is_test_mode:
        return list(CHANNELS)
    kinds = set(
        db.session.scalars(
            sa.select(Channel.name).where(
                Channel.client_id == client_id, Channel.active.is_(True), Channel.provider != SANDBOX
            )
        )
    )
    return [kind for kind in CHANNELS if kind in kinds]


def _sender(kind: str, config: dict[str, Any], client: Client, promotional: bool) -> str | None:
    if kind == "sms" and not promotional and str(config.get("transactional_sender_id") or "").strip():
        return str(config["transactional_sender_id"]).strip()
    for name in SENDER_FIELDS:
        value = str(config.get(name) or "").strip()
        if value:
            return value
    return client.sender_id if kind == "sms" else None
