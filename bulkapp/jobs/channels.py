"""Jobs about provider channels: the periodic provider balance sync."""

from __future__ import annotations

import logging
from collections import Counter

import requests

from bulkapp.extensions import db
from bulkapp.jobs import job
from bulkapp.providers.base import new_session
from bulkapp.services.channels import checks as channel_checks
from bulkapp.services.channels.settings import ChannelNotFound

log = logging.getLogger(__name__)


@job
def sync_provider_balances() -> dict[str, int]:
    """Refresh ``clients.onfon_balance`` from the active Onfon channel of every tenant with
    ``auto_sync_balance`` (run every 15 minutes on the ``low`` queue).

    Each tenant is synced and committed on its own, and no transaction stays open while Onfon is asked. A
    failure is stored on the channel (``config["last_sync"]``) and shown on the Channels page; it never stops
    the other tenants or the worker. Returns how many ended ``synced``, ``failed`` (the vendor said no or
    could not be reached) or ``error`` (something unexpected, logged).
    """
    targets = channel_checks.balance_sync_targets()
    db.session.commit()
    counts: Counter[str] = Counter()
    session = new_session(pool_size=4)  # one pool for the whole run: keep-alive to the vendor across tenants
    try:
        for client_id, channel_id in targets:
            counts[_sync_one(client_id, channel_id, session)] += 1
    finally:
        session.close()
    return dict(counts)


def _sync_one(client_id: int, channel_id: int, session: requests.Session) -> str:
    try:
        snap = channel_checks.snapshot(client_id, channel_id)
        db.session.commit()
        result = channel_checks.fetch_channel_balance(snap, session=session)
        channel_checks.record_balance_result(client_id, channel_id, result)
        db.session.commit()
    except ChannelNotFound:
        db.session.rollback()  # deleted since the run started: nothing to sync
        return "gone"
    except Exception:
        db.session.rollback()
        log.exception("balance sync of client %s channel %s failed", client_id, channel_id)
        return "error"
    if not result.ok:
        log.warning("balance sync of client %s channel %s failed: %s", client_id, channel_id, result.message)
    return "synced" if result.ok else "failed"
