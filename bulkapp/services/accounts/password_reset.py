"""Password reset by an emailed link.

The link carries a signed token (``itsdangerous``, valid ``RESET_MAX_AGE``) holding the user id and a fingerprint
of the current password hash: once the password changes (this reset, or any other change) the fingerprint no
longer matches, so a link works once and older links die with it, without a table of tokens. A reset ends every
session of the user and, since opening the link proves the mailbox, confirms an unconfirmed address.
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import User
from bulkapp.services.accounts.passwords import hash_password
from bulkapp.services.accounts.sessions import end_all_sessions
from bulkapp.services.accounts.users import AccountError, normalise_email

RESET_MAX_AGE = 3600  # a reset link works for 60 minutes
MIN_LENGTH, MAX_LENGTH = 8, 128


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="bulkapp-password-reset")


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(("reset:" + password_hash).encode()).hexdigest()[:16]


def reset_token(user: User) -> str:
    """The signed token of a reset link for this user's current password."""
    return _serializer().dumps({"user": user.id, "check": _fingerprint(user.password)})


def user_for_reset(email: str) -> User | None:
    """The account a reset email goes to (None for an unknown or disabled one; the caller answers the same)."""
    user = db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    return user if user is not None and user.is_active else None


def read_reset(token: str) -> User:
    """The user of a reset link (nothing changes). AccountError when it is forged, expired or already used."""
    try:
        data = _serializer().loads(token, max_age=RESET_MAX_AGE)
    except SignatureExpired:
        raise AccountError(_l("This password reset link has expired. Ask for a new one.")) from None
    except BadSignature:
        raise AccountError(_l("This password reset link is not valid.")) from None
    user = db.session.get(User, data.get("user")) if isinstance(data, dict) else None
    if user is None or not user.is_active:
        raise AccountError(_l("This password reset link is not valid."))
    if data.get("check") != _fingerprint(user.password):
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
