"""The one way account emails leave the app: the platform mail server, or the development outbox.

- ``MAIL_HOST`` set: real SMTP through ``providers.smtp.platform_mailer`` (``MAIL_SECURITY`` as configured).
- No ``MAIL_HOST``: the email is logged (with its links); in development (``BULKAPP_ENV=development``) it is also
  kept in the ``dev_outbox`` table, shown at ``/dev/outbox``, so a newcomer on ``make run`` can open a sign-up
  confirmation or a password reset link. A table, not memory: the worker and the web process share it.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import current_app

from bulkapp.extensions import db
from bulkapp.models import DevOutboxMail
from bulkapp.providers.base import OutboundMessage, ProviderError
from bulkapp.providers.smtp import platform_mailer

log = logging.getLogger("bulkapp.services.accounts.mail")
KEEP = 200  # the outbox keeps the newest mails only


def outbox_enabled() -> bool:
    """True in development without a mail server: mail goes to /dev/outbox."""
    config = current_app.config
    return config.get("ENV_NAME") == "development" and not config.get("MAIL_HOST")


def deliver(message_id: str, to: str, subject: str, body: str) -> bool:
    """Send one email; True when the mail server accepted it, or it was kept/logged because none is configured.
    A mail server failure is logged, not raised."""
    if current_app.config.get("MAIL_HOST"):
        message = OutboundMessage(id=message_id, to=to, channel="email", subject=subject, body=body)
        try:
            results = platform_mailer(current_app.config).send_batch([message])
        except ProviderError as exc:
            log.warning("email %s to %s not sent: %s", message_id, to, exc.describe())
            return False
        return all(result.status == "accepted" for result in results)
    log.warning("MAIL_HOST is not set: this email was not sent.\nTo: %s\nSubject: %s\n\n%s", to, subject, body)
    if outbox_enabled():
        db.session.add(DevOutboxMail(to_address=to, subject=subject[:255], body=body))
        db.session.commit()
        _trim()
    return True


def _trim() -> None:
    newest = db.session.scalars(sa.select(DevOutboxMail.id).order_by(DevOutboxMail.id.desc()).offset(KEEP).limit(1))
    cutoff = newest.first()
    if cutoff is not None:
        db.session.execute(sa.delete(DevOutboxMail).where(DevOutboxMail.id <= cutoff))
        db.session.commit()


def recent(limit: int = 50) -> list[DevOutboxMail]:
    """The newest mails of the development outbox, newest first."""
    return list(db.session.scalars(sa.select(DevOutboxMail).order_by(DevOutboxMail.id.desc()).limit(limit)))
