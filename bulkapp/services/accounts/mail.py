"""Account emails (sign-up confirmation, "you already have an account", invitation to a taken address,
password reset, email change).

All of them leave through ``outbox.deliver``: the platform mail server when ``MAIL_HOST`` is set; without one
the email, link included, is logged and, in development, kept at /dev/outbox.
"""

from __future__ import annotations

from flask import current_app, render_template, url_for
from flask_babel import force_locale
from flask_babel import gettext as _

from bulkapp.extensions import db
from bulkapp.i18n import DEFAULT_LANGUAGE, LANGUAGES
from bulkapp.models import Client, User
from bulkapp.public_url import public_base_url, public_url
from bulkapp.services.accounts.email_change import CHANGE_MAX_AGE, email_change_token
from bulkapp.services.accounts.outbox import deliver
from bulkapp.services.accounts.password_reset import RESET_MAX_AGE, reset_token
from bulkapp.services.accounts.users import CONFIRM_MAX_AGE, confirmation_token

KINDS = ("confirm", "exists", "invited_existing", "reset")


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
    elif kind == "reset":
        link = public_url(url_for("auth.reset_password", token=reset_token(user)))
        subject = _("Reset your Bulkapp password")
        body = render_template("email/password_reset.txt", user=user, link=link, minutes=RESET_MAX_AGE // 60)
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
    return deliver(f"account:{kind}:{user.id}", user.email, subject, body)


def send_email_change(user_id: int, new_email: str, language: str) -> bool:
    """The link that confirms a new address, sent to that new address (the old one stays until it is opened)."""
    user = db.session.get(User, user_id)
    if user is None:
        return False
    with (
        current_app.test_request_context(base_url=public_base_url()),
        force_locale(language if language in LANGUAGES else DEFAULT_LANGUAGE),
    ):
        link = public_url(url_for("auth.confirm_email_change", token=email_change_token(user, new_email)))
        subject = _("Confirm your new email address for Bulkapp")
        body = render_template(
            "email/email_change.txt", user=user, link=link, new_email=new_email, hours=CHANGE_MAX_AGE // 3600
        )
    return deliver(f"account:email_change:{user.id}", new_email, subject, body)
