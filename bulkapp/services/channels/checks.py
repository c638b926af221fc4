"""Vendor calls for a channel: the connection test, the balance read, and recording what they said.

Network calls never run inside a database transaction: callers take a :class:`ChannelSnapshot`, end the
transaction, call the vendor, then record the outcome in a new one. Vendor messages shown to the tenant have the
channel's secrets blanked out (vendor errors can quote the request URL, and Onfon puts its API key in it).
Status lives in ``channels.config``: ``last_test`` and ``last_sync`` as ``{"ok", "message", "at"}`` (ISO-8601
UTC), and ``balance`` (``{"amount", "raw", "currency", "at"}``, the last balance read successfully).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import requests
import sqlalchemy as sa

from bulkapp.columns import to_decimal, utcnow
from bulkapp.extensions import db
from bulkapp.models import Channel, Client
from bulkapp.providers.base import ConnectionCheck, redact_secrets
from bulkapp.providers.errors import explain
from bulkapp.providers.registry import get_provider, provider_class
from bulkapp.services.channels.settings import STATUS_KEYS, owned_channel
from bulkapp.services.channels.validation import provider_label

log = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 600
TEST_TIMEOUT = (5.0, 15.0)
SYNC_TIMEOUT = (5.0, 20.0)


@dataclass(frozen=True, slots=True)
class ChannelSnapshot:
    """What a vendor call needs, read in one transaction and used after it ended."""

    id: int
    client_id: int
    provider: str
    kind: str
    active: bool
    credentials: dict[str, Any]
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BalanceResult:
    ok: bool
    message: str
    amount: Decimal | None = None
    currency: str | None = None
    raw: str | None = None


def snapshot(client_id: int, channel_id: int) -> ChannelSnapshot:
    """Read what a vendor call needs; end the transaction before making the call."""
    channel = owned_channel(client_id, channel_id)
    return ChannelSnapshot(
        id=channel.id,
        client_id=channel.client_id,
        provider=channel.provider,
        kind=channel.name,
        active=channel.active,
        credentials=dict(channel.credentials or {}),
        config={k: v for k, v in (channel.config or {}).items() if k not in STATUS_KEYS},
    )


def redact(text: str, credentials: Mapping[str, Any], provider: str) -> str:
    """``text`` with the channel's secrets blanked out (vendor errors can quote the request URL)."""
    return redact_secrets(text, provider_class(provider).credential_fields, credentials)


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE_LENGTH else text[: MAX_MESSAGE_LENGTH - 1] + "…"


def check_connection(snap: ChannelSnapshot, *, timeout: tuple[float, float] | None = None) -> ConnectionCheck:
    """Run the vendor's harmless test call (``TEST_TIMEOUT`` unless given). A failure reads as a plain sentence
    (:func:`bulkapp.providers.errors.explain`, with the vendor's own words when it gave any, secrets blanked);
    the technical details go to the log."""
    try:
        with get_provider(snap.provider, snap.credentials, snap.config, timeout=timeout or TEST_TIMEOUT) as provider:
            check = provider.test_connection()
    except Exception as exc:  # an adapter bug must not take the settings page down either
        log.info("testing channel %s failed", snap.id)
        check = ConnectionCheck(False, explain(exc, provider_label(snap.provider)))
    return ConnectionCheck(bool(check.ok), _clip(redact(check.message, snap.credentials, snap.provider)))


def fetch_channel_balance(
    snap: ChannelSnapshot,
    *,
    session: requests.Session | None = None,
    timeout: tuple[float, float] | None = None,
) -> BalanceResult:
    """Ask the vendor for the account balance (``SYNC_TIMEOUT`` unless given); never raises: failures come
    back with ok=False and a plain sentence (:func:`bulkapp.providers.errors.explain`), secrets blanked."""
    try:
        with get_provider(
            snap.provider, snap.credentials, snap.config, session=session, timeout=timeout or SYNC_TIMEOUT
        ) as provider:
            balance = provider.fetch_balance()
    except Exception as exc:  # one tenant's odd answer must not stop the sync of the others
        log.info("balance of channel %s failed", snap.id)
        message = explain(exc, provider_label(snap.provider))
        return BalanceResult(False, _clip(redact(message, snap.credentials, snap.provider)))
    if balance is None:
        return BalanceResult(False, f"{provider_label(snap.provider)} has no balance API.")
    return BalanceResult(
        True, f"Balance: {balance.raw}", amount=to_decimal(balance.amount), currency=balance.currency, raw=balance.raw
    )


def record_test_result(
    client_id: int, channel_id: int, check: ConnectionCheck, *, at: datetime | None = None
) -> Channel:
    """Store a connection test's outcome (with its time) on the channel."""
    channel = owned_channel(client_id, channel_id, lock=True)
    entry = {"ok": bool(check.ok), "message": _clip(check.message), "at": (at or utcnow()).isoformat()}
    channel.config = {**(channel.config or {}), "last_test": entry}
    db.session.flush()
    return channel


def record_balance_result(
    client_id: int, channel_id: int, result: BalanceResult, *, at: datetime | None = None
) -> Channel:
    """Store a balance check on the channel; a successful one of the tenant's active Onfon channel also sets
    ``clients.onfon_balance`` / ``onfon_last_sync``, unless a newer sync already did (no going back in time)."""
    at = at or utcnow()
    channel = owned_channel(client_id, channel_id, lock=True)
    config = {**(channel.config or {})}
    config["last_sync"] = {"ok": result.ok, "message": _clip(result.message), "at": at.isoformat()}
    if result.ok and result.amount is not None:
        config["balance"] = {
            "amount": str(to_decimal(result.amount)),
            "raw": result.raw,
            "currency": result.currency,
            "at": at.isoformat(),
        }
    channel.config = config
    if result.ok and result.amount is not None and channel.provider == "onfon" and channel.active:
        db.session.execute(
            sa.update(Client)
            .where(
                Client.id == client_id,
                sa.or_(Client.onfon_last_sync.is_(None), Client.onfon_last_sync < at),
            )
            .values(onfon_balance=result.amount, onfon_last_sync=at)
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
    return channel


def balance_sync_targets() -> list[tuple[int, int]]:
    """``(client_id, channel_id)`` of every active tenant with ``auto_sync_balance`` and an active Onfon
    channel (the oldest active one, should there be several)."""
    rows = db.session.execute(
        sa.select(Client.id, sa.func.min(Channel.id))
        .join(Channel, Channel.client_id == Client.id)
        .where(
            Client.auto_sync_balance.is_(True),
            Client.status.is_(True),
            Channel.provider == "onfon",
            Channel.active.is_(True),
        )
        .group_by(Client.id)
        .order_by(Client.id)
    ).all()
    return [(client_id, channel_id) for client_id, channel_id in rows]
