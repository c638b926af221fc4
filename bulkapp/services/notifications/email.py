"""Email copies of notifications, for the users who chose those types in their profile, in each one's language."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app, render_template, url_for
from flask_babel import force_locale

from bulkapp.extensions import db
from bulkapp.i18n import DEFAULT_LANGUAGE, LANGUAGES
from bulkapp.models import Notification, User
from bulkapp.providers.base import OutboundMessage, ProviderError
from bulkapp.providers.smtp import platform_mailer
from bulkapp.public_url import public_base_url
from bulkapp.services.notifications.notify import TYPE_LABELS, link_for, render

log = logging.getLogger(__name__)
LOOKBACK = timedelta(days=1)  # older notifications are never emailed (e.g. after mail was switched on)


def mail_configured() -> bool:
    return bool(current_app.config.get("MAIL_HOST"))


def email_types(user: User) -> set[str]:
    return set((user.preferences or {}).get("email_notifications", []))


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

    Each email is written in its recipient's language. A mail server failure is logged, not retried: the
    notification itself is in the app.
    """
    note = db.session.get(Notification, note_id)
    recipients = _recipients(note)
    if not recipients:
        return 0
    # Links in an email are absolute: build them as a request to the public address would.
    with current_app.test_request_context(base_url=public_base_url()):
        messages = [_email(note, user) for user in recipients]
    try:
        results = platform_mailer(current_app.config).send_batch(messages)
    except ProviderError as exc:
        log.warning("notification %s not emailed: %s", note.id, exc.describe())
        return 0
    return sum(1 for result in results if result.status == "accepted")


def _email(note: Notification, user: User) -> OutboundMessage:
    with force_locale(user.language if user.language in LANGUAGES else DEFAULT_LANGUAGE):
        text = render(note)
        body = render_template(
            "email/notification.txt",
            user=user,
            text=text,
            link=link_for(note, external=True),
            kind=TYPE_LABELS.get(note.type, note.type),
            profile_url=url_for("settings.profile", _external=True),
        )
    return OutboundMessage(id=f"{note.id}:{user.id}", to=user.email, channel="email", subject=text.title, body=body)
