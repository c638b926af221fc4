"""Changing one's sign-in email: confirmed by a link sent to the new address; until it is opened the old one stays.

The token (``signed_links``, valid ``CHANGE_MAX_AGE``) names the user, the new address and a fingerprint of the current
one, so it works once: after the change (or any other change of address) the fingerprint no longer matches.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import User
from bulkapp.services.accounts.passwords import verify_password
from bulkapp.services.accounts.signed_links import SignedLink
from bulkapp.services.accounts.users import AccountError, normalise_email

CHANGE_MAX_AGE = 24 * 3600  # the link to a new address works for a day


CHANGE_LINK = SignedLink("bulkapp-email-change", "email", CHANGE_MAX_AGE)


def email_change_token(user: User, new_email: str) -> str:
    return CHANGE_LINK.token(user, user.email, email=new_email)


def _taken(email: str) -> bool:
    return db.session.scalar(sa.select(User.id).where(User.email == email)) is not None


def request_email_change(user: User, new_email: str, password: str) -> str | None:
    """Check a request to move ``user`` to ``new_email``; returns the address to send the link to, or None when
    the address already belongs to an account (the caller answers the same, so nobody learns who has one).
    AccountError on the ``password`` or ``email`` field; nothing changes yet."""
    new_email = normalise_email(new_email)
    if not verify_password(user.password, password or ""):
        raise AccountError(_l("This is not your current password."), "password")
    if "@" not in new_email or len(new_email) > 254:
        raise AccountError(_l("Enter a valid email address."), "email")
    if new_email == user.email:
        raise AccountError(_l("This is already your email address."), "email")
    return None if _taken(new_email) else new_email


def confirm_email_change(token: str) -> tuple[User, str]:
    """Move the token's user to its new address; returns the user and the address it had before (for the audit
    log, where the team sees the change). AccountError for a forged, expired, used or taken one."""
    invalid = _l("This link is not valid.")
    user, data = CHANGE_LINK.read(
        token, expired=_l("This link has expired. Change your email on your profile again."), invalid=invalid
    )
    new_email = normalise_email(data.get("email"))
    if not user.is_active or "@" not in new_email:
        raise AccountError(invalid)
    if not CHANGE_LINK.matches(data, user.email):
        raise AccountError(_l("This link was already used."))
    if _taken(new_email):
        raise AccountError(_l("Another account uses this email address now."))
    old = user.email
    try:
        with db.session.begin_nested():  # an account created with this address meanwhile: a clear error, not a 500
            changed = db.session.execute(
                sa.update(User)
                .where(User.id == user.id, User.email == old)
                .values(email=new_email, email_verified_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
    except IntegrityError:
        raise AccountError(_l("Another account uses this email address now.")) from None
    if not changed:
        raise AccountError(_l("This link was already used."))
    db.session.refresh(user)
    return user, old
