"""Password reset by an emailed link.

The link carries a signed token (``signed_links``, valid ``RESET_MAX_AGE``) holding the user id and a fingerprint
of the current password hash: once the password changes (this reset, or any other change) the fingerprint no
longer matches, so a link works once and older links die with it, without a table of tokens. A reset ends every
session of the user and, since opening the link proves the mailbox, confirms an unconfirmed address.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import User
from bulkapp.services.accounts.passwords import hash_password
from bulkapp.services.accounts.sessions import end_all_sessions
from bulkapp.services.accounts.signed_links import SignedLink
from bulkapp.services.accounts.users import AccountError, normalise_email

RESET_MAX_AGE = 3600  # a reset link works for 60 minutes
MIN_LENGTH, MAX_LENGTH = 8, 128


RESET_LINK = SignedLink("bulkapp-password-reset", "reset", RESET_MAX_AGE)


def reset_token(user: User) -> str:
    """The signed token of a reset link for this user's current password."""
    return RESET_LINK.token(user, user.password)


def user_for_reset(email: str) -> User | None:
    """The account a reset email goes to (None for an unknown or disabled one; the caller answers the same)."""
    user = db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    return user if user is not None and user.is_active else None


def read_reset(token: str) -> User:
    """The user of a reset link (nothing changes). AccountError when it is forged, expired or already used."""
    invalid = _l("This password reset link is not valid.")
    user, data = RESET_LINK.read(
        token, expired=_l("This password reset link has expired. Ask for a new one."), invalid=invalid
    )
    if not user.is_active:
        raise AccountError(invalid)
    if not RESET_LINK.matches(data, user.password):
        raise AccountError(_l("This password reset link was already used. Ask for a new one if you need it."))
    return user


def reset_password(token: str, password: str, confirm: str) -> User:
    """Set a new password from a reset link, once: of two concurrent uses one wins, the other gets the "already
    used" error. AccountError on the ``password``/``confirm`` field for a bad new password."""
    user = read_reset(token)
    password = password or ""
    if len(password) < MIN_LENGTH:
        raise AccountError(_l("The password needs at least 8 characters."), "password")
    if len(password) > MAX_LENGTH:
        raise AccountError(_l("The password can have at most 128 characters."), "password")
    if password != (confirm or ""):
        raise AccountError(_l("The two passwords are not the same."), "confirm")
    checked = user.password
    values = {"password": hash_password(password)}
    if user.email_verified_at is None:
        values["email_verified_at"] = utcnow()
    changed = db.session.execute(
        sa.update(User)
        .where(User.id == user.id, User.password == checked)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        raise AccountError(_l("This password reset link was already used. Ask for a new one if you need it."))
    db.session.refresh(user)
    end_all_sessions(user.id)  # every browser signed in as this user is signed out
    return user
