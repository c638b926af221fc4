"""In-app notifications: tenant-wide (no user) or addressed to one user, shown in each reader's language.

A notification names a text from ``TEXTS`` and stores its parameters in ``data`` (``text`` and ``params``), so
every reader (and every email) gets it in their own language, with numbers and KSh amounts formatted for it.
The English title and message are stored too: for the API, for logs, and as the fallback for older rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask_babel import force_locale, gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.i18n import stored_text
from bulkapp.models import Notification

TYPES = ("low_balance", "message_failed", "campaign_completed", "topup_success", "inbound_message")
TYPE_LABELS = {
    "low_balance": _l("Low balance"),
    "message_failed": _l("A message failed"),
    "campaign_completed": _l("A campaign finished"),
    "topup_success": _l("A top-up arrived"),
    "inbound_message": _l("A new reply"),
}
# Where a notification leads: the first (data key, endpoint) whose key is in its data and whose endpoint
# exists; the endpoint takes that key as its URL argument unless it is listed without one.
LINKS = (
    ("conversation_id", "inbox.show"),
    ("campaign_id", "campaigns.show"),
    ("message_id", "messages.index"),
    ("transaction_id", "wallet.index"),
)
NO_ARGUMENT = {"messages.index", "wallet.index"}


@dataclass(frozen=True)
class Text:
    """How one kind of notification reads. ``message`` None shows the stored message as written (a customer's
    reply, a provider's reason); a callable (formatted params, raw params) builds sentences that need plurals.
    ``money`` names the parameters that are KSh amounts; other whole numbers get the locale's digit grouping.
    ``ours``: the stored message may be one of our own stored sentences (i18n.stored_sentences), shown
    translated; anything else still shows as written."""

    title: LazyString
    message: LazyString | Callable[[dict[str, Any], dict[str, Any]], str] | None = None
    money: tuple[str, ...] = ()
    ours: bool = False


def _import_summary(shown: dict[str, Any], raw: dict[str, Any]) -> str:
    if raw["merged"]:
        return ngettext(
            "%(added)s added, %(updated)s updated, %(merged)s duplicate row merged, %(failed)s failed.",
            "%(added)s added, %(updated)s updated, %(merged)s duplicate rows merged, %(failed)s failed.",
            raw["merged"],
            **shown,
        )
    return gettext("%(added)s added, %(updated)s updated, %(failed)s failed.", **shown)


_FINISHED = _l("%(sent)s of %(total)s messages went out; %(failed)s did not. It cost %(cost)s.")
TEXTS: dict[str, Text] = {
    "welcome": Text(
        _l("Welcome to Bulkapp"),
        _l(
            "You are in test mode: messages go to the sandbox provider. Add contacts, then send your first "
            "message; top up by M-Pesa when you are ready to go live."
        ),
    ),
    "low_balance": Text(
        _l("Low balance"),
        _l("Your balance is %(balance)s, below your alert level of %(threshold)s. Top up to keep sending."),
        money=("balance", "threshold"),
    ),
    "topup_received": Text(
        _l("Top-up received"),
        _l("%(amount)s from M-Pesa was added to your wallet. Your balance is %(balance)s."),
        money=("amount", "balance"),
    ),
    "topup_received_with_receipt": Text(
        _l("Top-up received"),
        _l(
            "%(amount)s from M-Pesa (M-Pesa receipt %(receipt)s) was added to your wallet. Your balance is %(balance)s."
        ),
        money=("amount", "balance"),
    ),
    "message_not_sent": Text(_l("Message to %(recipient)s was not sent"), _l("%(reason)s The charge was refunded.")),
    "messages_not_sent": Text(
        _l("%(count)s messages were not sent"),
        _l("For example, to %(recipient)s: %(reason)s The charges were refunded."),
    ),
    "message_not_delivered": Text(_l("Message to %(recipient)s was not delivered"), ours=True),
    "campaign_failing": Text(
        _l("Messages in campaign “%(name)s” are failing"),
        _l(
            "The message to %(recipient)s was not delivered: %(reason)s "
            "The campaign page shows how many have failed so far."
        ),
    ),
    "campaign_finished": Text(_l("Campaign “%(name)s” finished"), _FINISHED, money=("cost",)),
    "campaign_cancelled": Text(_l("Campaign “%(name)s” was cancelled"), _FINISHED, money=("cost",)),
    "campaign_not_started": Text(_l("Campaign “%(name)s” could not start"), ours=True),
    "contacts_imported": Text(_l("Contacts imported from %(filename)s"), _import_summary),
    "webhook_disabled": Text(
        _l("Webhooks turned off"),
        _l(
            "Your webhook endpoint answered %(status)s Gone, so we stopped sending events. "
            "Check the URL in Settings > Webhooks and turn webhooks on again."
        ),
    ),
    "new_message": Text(_l("New message from %(sender)s")),
    "new_whatsapp_message": Text(_l("New WhatsApp message from %(sender)s")),
}


class Rendered(NamedTuple):
    title: str
    message: str


def notify(
    client_id: int,
    type: str,
    text: str,
    params: dict[str, Any] | None = None,
    *,
    message: str = "",
    data: dict[str, Any] | None = None,
    user_id: int | None = None,
) -> Notification:
    """Record a notification for a tenant (all its users) or one of its users.

    ``text`` is a key of ``TEXTS`` and ``params`` its named parameters (JSON values; a Decimal is kept as its
    string). ``message`` is the stored message for texts that show it as written.
    """
    params = {key: str(value) if isinstance(value, Decimal) else value for key, value in (params or {}).items()}
    spec = TEXTS[text]
    with force_locale("en"):
        english = _render(spec, params, message)
    note = Notification(
        client_id=client_id,
        user_id=user_id,
        type=type,
        title=english.title[:200],
        message=english.message,
        data={**(data or {}), "text": text, "params": params},
    )
    db.session.add(note)
    db.session.flush()
    return note


def render(note: Notification) -> Rendered:
    """The notification's title and message in the current locale (the stored English for older rows, and
    for a row whose parameters no longer fit its text)."""
    data = note.data or {}
    spec = TEXTS.get(data.get("text") or "")
    if spec is None:
        return Rendered(note.title, note.message or "")
    try:
        return _render(spec, data.get("params") or {}, note.message or "")
    except (KeyError, TypeError, ValueError, ArithmeticError):  # ArithmeticError: a money param not a number
        return Rendered(note.title, note.message or "")


def _render(spec: Text, params: dict[str, Any], stored_message: str) -> Rendered:
    from bulkapp.formatting import format_ksh, format_number

    shown = {
        key: format_ksh(Decimal(value)) if key in spec.money
        else format_number(value) if isinstance(value, int) and not isinstance(value, bool)
        else stored_text(value) if key == "reason" and isinstance(value, str)  # a provider's reason, translated
        else value
        for key, value in params.items()
    }  # fmt: skip
    message = spec.message
    if message is None:
        body = stored_text(stored_message) if spec.ours else stored_message
    elif isinstance(message, LazyString):
        body = str(message) % shown
    else:
        body = message(shown, params)
    return Rendered(str(spec.title) % shown, body)


def visible_to(client_id: int, user_id: int) -> sa.Select:
    return sa.select(Notification).where(
        Notification.client_id == client_id,
        sa.or_(Notification.user_id.is_(None), Notification.user_id == user_id),
    )


def unread_count(client_id: int, user_id: int) -> int:
    query = visible_to(client_id, user_id).where(Notification.is_read.is_(False))
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0


def mark_read(client_id: int, user_id: int, notification_id: int | None = None) -> int:
    """Mark one notification (or all) read; returns how many changed."""
    ids = visible_to(client_id, user_id).where(Notification.is_read.is_(False)).with_only_columns(Notification.id)
    if notification_id is not None:
        ids = ids.where(Notification.id == notification_id)
    result = db.session.execute(
        sa.update(Notification)
        .where(Notification.id.in_(ids.scalar_subquery()))
        .values(is_read=True, read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def link_for(note: Notification, *, external: bool = False) -> str | None:
    """The page a notification is about, when that page exists (``external``: an absolute URL, for emails)."""
    from flask import current_app, url_for

    data = note.data or {}
    endpoints = current_app.view_functions
    for key, endpoint in LINKS:
        if key in data and endpoint in endpoints:
            arguments = {} if endpoint in NO_ARGUMENT else {key: data[key]}
            return url_for(endpoint, _external=external, **arguments)
    if note.type in ("low_balance", "topup_success") and "wallet.index" in endpoints:
        return url_for("wallet.index", _external=external)
    return None
