"""Email copies of notifications, for the users who chose those types in their profile."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.utils import parseaddr

import sqlalchemy as sa
from flask import current_app

from bulkapp.extensions import db
from bulkapp.models import Notification, User
from bulkapp.providers.base import OutboundMessage, ProviderError
from bulkapp.providers.smtp import SmtpProvider

log = logging.getLogger(__name__)
LOOKBACK = timedelta(days=1)  # older notifications are never emailed (e.g. after mail was switched on)


def mail_configured() -> bool:
    return bool(current_app.config.get("MAIL_HOST"))


def email_types(user: User) -> set[str]:
    return set((user.preferences or {}).get("email_notifications", []))


def _mailer() -> SmtpProvider:
    config = current_app.config
    name, address = parseaddr(config["MAIL_FROM"])
    return SmtpProvider(
        {"username": config["MAIL_USERNAME"], "password": config["MAIL_PASSWORD"]},
        {"host": config["MAIL_HOST"], "port": config["MAIL_PORT"], "security": config["MAIL_SECURITY"],
         "from_address": address, "from_name": name or "Bulkapp"},
    )  # fmt: skip


def _recipients(note: Notification) -> list[User]:
    query = sa.select(User).where(User.client_id == note.client_id, User.is_active_user.is_(True))
    if note.user_id is not None:
        query = query.where(User.id == note.user_id)
    return [user for user in db.session.scalars(query) if note.type in email_types(user)]


def due_notification_ids(now: datetime) -> list[int]:
    """New notifications whose email copies were not handled yet (none when mail is not configured)."""
    if not mail_configured():
        return []
    return db.session.scalars(
        sa.select(Notification.id).where(Notification.emailed_at.is_(None), Notification.created_at >= now - LOOKBACK)
    ).all()


def claim(note_id: int, now: datetime) -> bool:
    """Mark a notification's emails as handled; only one caller wins, so nobody is emailed twice."""
    return bool(
        db.session.execute(
            sa.update(Notification)
            .where(Notification.id == note_id, Notification.emailed_at.is_(None))
            .values(emailed_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def send_copies(note_id: int) -> int:
    """Email a claimed notification to the users who asked for its type; returns emails accepted.

    A mail server failure is logged, not retried: the notification itself is in the app.
    """
    note = db.session.get(Notification, note_id)
    messages = [
        OutboundMessage(
            id=f"{note.id}:{user.id}",
            to=user.email,
            channel="email",
            subject=note.title,
            body=f"{note.message}\n\n— Bulkapp",
        )  # fmt: skip
        for user in _recipients(note)
    ]
    if not messages:
        return 0
    try:
        results = _mailer().send_batch(messages)
    except ProviderError as exc:
        log.warning("notification %s not emailed: %s", note.id, exc.describe())
        return 0
    return sum(1 for result in results if result.status == "accepted")
