"""Account emails (sign-up confirmation, "you already have an account", invitation to a taken address).

They go through the platform mail server when ``MAIL_HOST`` is set; without one (development) the email,
link included, is written to the log instead, so a newcomer can still confirm their account.
"""

from __future__ import annotations

import logging

from flask import current_app, render_template, url_for
from flask_babel import force_locale
from flask_babel import gettext as _

from bulkapp.extensions import db
from bulkapp.i18n import DEFAULT_LANGUAGE, LANGUAGES
from bulkapp.models import Client, User
from bulkapp.providers.base import OutboundMessage, ProviderError
from bulkapp.providers.smtp import platform_mailer
from bulkapp.public_url import public_base_url
from bulkapp.services.accounts.users import CONFIRM_MAX_AGE, confirmation_token

log = logging.getLogger(__name__)
KINDS = ("confirm", "exists", "invited_existing")


def _compose(kind: str, user: User, team: Client | None) -> tuple[str, str]:
    """Subject and body of one account email, in the current locale, with absolute links."""
    sign_in = url_for("auth.login", _external=True)
    if kind == "confirm":
        link = url_for("auth.confirm_email", token=confirmation_token(user), _external=True)
        subject = _("Confirm your email address for Bulkapp")
        body = render_template("email/confirm_signup.txt", user=user, link=link, hours=CONFIRM_MAX_AGE // 3600)
    elif kind == "exists":
        subject = _("You already have a Bulkapp account")
        body = render_template("email/account_exists.txt", user=user, sign_in=sign_in)
    else:
        subject = _("You were invited to a team on Bulkapp")
        body = render_template("email/invited_existing.txt", user=user, team=team, sign_in=sign_in)
    return subject, body


def send_account_email(kind: str, user_id: int, language: str, client_id: int | None = None) -> bool:
    """Write and send one account email to a user; True when a mail server accepted it (or it was logged
    because no mail server is configured). A mail server failure is logged, not raised. ``language`` is the
    sign-up page's, for a confirmation; an existing account is written to in its owner's language."""
    user = db.session.get(User, user_id)
    if user is None or kind not in KINDS:
        return False
    team = db.session.get(Client, client_id) if client_id is not None else None
    if kind != "confirm":  # written to an existing account: in the language its owner chose
        language = user.language
    with (
        current_app.test_request_context(base_url=public_base_url()),
        force_locale(language if language in LANGUAGES else DEFAULT_LANGUAGE),
    ):
        subject, body = _compose(kind, user, team)
    message = OutboundMessage(
        id=f"account:{kind}:{user.id}", to=user.email, channel="email", subject=subject, body=body
    )
    if not current_app.config.get("MAIL_HOST"):
        log.warning(
            "MAIL_HOST is not set: this email was not sent.\nTo: %s\nSubject: %s\n\n%s", user.email, subject, body
        )
        return True
    try:
        results = platform_mailer(current_app.config).send_batch([message])
    except ProviderError as exc:
        log.warning("account email %s to user %s not sent: %s", kind, user.id, exc.describe())
        return False
    return all(result.status == "accepted" for result in results)
