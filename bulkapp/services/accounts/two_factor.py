"""Two-factor sign-in: TOTP (RFC 6238, 30-second steps, 6 digits) with ten single-use recovery codes.

- Enrolment: ``start_enrolment`` keeps a fresh secret on the user (encrypted at rest) without turning anything
  on; ``confirm_enrolment`` turns it on once a code from the app checks out and returns the recovery codes,
  the only time they exist in clear (the user keeps SHA-256 hashes: each code carries 50 random bits).
- A code is accepted at most once: the last accepted time-step is stored per user and a code for the same or an
  earlier step is refused (a replay within its 90-second window). The user's row is locked while a code is
  checked, so two concurrent submissions of one code cannot both pass.
- Who must use it: everybody in a tenant whose owner turned on ``Client.require_two_factor``, and platform
  admins in production.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

import pyotp
import segno
import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Client, User
from bulkapp.services.accounts.passwords import verify_password
from bulkapp.services.accounts.users import AccountError

ISSUER = "Bulkapp"
RECOVERY_CODES = 10
DRIFT_STEPS = 1  # a code from the previous or next 30-second step still counts (phone clocks drift)
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read from paper without doubt
_CODE_SHAPE = re.compile(r"^[0-9]{6}$")


class TwoFactorError(AccountError):
    """A wrong, used or missing code, with a sentence for the user (field ``code`` unless told)."""

    def __init__(self, message: str, field: str | None = "code") -> None:
        super().__init__(message, field)


def enabled(user: User) -> bool:
    return user.totp_enabled_at is not None


def is_owner(user: User) -> bool:
    return user.client_id is not None and getattr(user, "tenant_role", None) == "owner"


def required(user: User, production: bool) -> bool:
    """Must this user sign in with a second factor (whether or not they have set it up yet)?"""
    if user.is_admin and production:
        return True
    return bool(user.client is not None and user.client.require_two_factor)


def must_enrol(user: User, production: bool) -> bool:
    return required(user, production) and not enabled(user)


# -- enrolment ----------------------------------------------------------------------------------------------


def start_enrolment(user: User) -> str:
    """The secret being set up (kept across page views until confirmed); a new one only when there is none."""
    if enabled(user):
        raise TwoFactorError(_l("Two-factor sign-in is already on."), field=None)
    if not user.totp_secret:
        user.totp_secret = pyotp.random_base32()
    return user.totp_secret


def provisioning_uri(user: User) -> str:
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(user: User) -> str:
    """The enrolment QR code as inline SVG (rendered here: the secret never goes to a third-party service)."""
    qr = segno.make(provisioning_uri(user), error="m")
    title = str(_l("QR code for your authenticator app"))
    return qr.svg_inline(scale=5, border=2, dark="#111", light="#fff", title=title)


def confirm_enrolment(user: User, code: str) -> list[str]:
    """Turn two-factor on with a code from the app; returns the recovery codes to show once."""
    user = _locked(user)
    if enabled(user) or not user.totp_secret:
        raise TwoFactorError(_l("Start the set-up again."), field=None)
    step = _matching_step(user, _digits(code))
    if step is None:
        raise TwoFactorError(_l("That code is not right. Check your phone's clock and try the newest code."))
    user.totp_last_step = step
    user.totp_enabled_at = utcnow()
    return new_recovery_codes(user)


def new_recovery_codes(user: User) -> list[str]:
    """Ten fresh recovery codes; the old ones stop working."""
    codes = [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5))
        + "-"
        + "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5))
        for _ in range(RECOVERY_CODES)
    ]
    user.recovery_codes = [_hash_recovery(code) for code in codes]
    return codes


def remaining_recovery_codes(user: User) -> int:
    return len(user.recovery_codes or [])


def disable(user: User) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    user.recovery_codes = None


# -- checking a code ----------------------------------------------------------------------------------------


def verify(user: User, code: str) -> str:
    """Check a TOTP or recovery code for a user with two-factor on; returns ``"totp"`` or ``"recovery"``.
    A used code (the same time-step again, or a spent recovery code) is refused like a wrong one."""
    user = _locked(user)
    if not enabled(user):
        raise TwoFactorError(_l("Two-factor sign-in is off for this account."), field=None)
    digits = _digits(code)
    if _CODE_SHAPE.match(digits):
        step = _matching_step(user, digits)
        if step is not None:
            user.totp_last_step = step
            return "totp"
    else:
        hashed = _hash_recovery(code)
        stored = list(user.recovery_codes or [])
        if hashed in stored:
            stored.remove(hashed)
            user.recovery_codes = stored
            return "recovery"
    raise TwoFactorError(_l("That code is not right, or it was already used."))


def verify_code_or_password(user: User, code: str | None, password: str | None) -> None:
    """For turning two-factor off or renewing recovery codes: a current code or the account password."""
    if code and code.strip():
        verify(user, code)
        return
    if password and verify_password(user.password, password):
        return
    raise TwoFactorError(_l("Give a current code from your app, or your password."))


def set_team_requirement(owner: User, on: bool) -> None:
    """The owner's switch. Turning it on needs two-factor on the owner's own account first."""
    if not is_owner(owner):
        raise TwoFactorError(_l("Only the owner can change this."), field=None)
    if on and not enabled(owner):
        raise TwoFactorError(_l("Turn on two-factor sign-in for yourself first."), field=None)
    client = db.session.get(Client, owner.client_id)
    client.require_two_factor = bool(on)


# -- helpers ------------------------------------------------------------------------------------------------


def _locked(user: User) -> User:
    """The user's row, re-read under a row lock (PostgreSQL; SQLite serialises writers anyway)."""
    return db.session.execute(
        sa.select(User).where(User.id == user.id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


def _digits(code: str | None) -> str:
    return re.sub(r"[\s-]", "", code or "")


def _matching_step(user: User, digits: str) -> int | None:
    """The time-step whose code ``digits`` is, if it is within the drift and later than the last accepted."""
    if not _CODE_SHAPE.match(digits):
        return None
    totp = pyotp.TOTP(user.totp_secret)
    now = int(time.time()) // totp.interval
    last = user.totp_last_step if user.totp_last_step is not None else -1
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if step > last and hmac.compare_digest(totp.generate_otp(step), digits):
            return step
    return None


def _hash_recovery(code: str) -> str:
    normalised = re.sub(r"[^a-z0-9]", "", (code or "").strip().lower())
    return hashlib.sha256(normalised.encode()).hexdigest()
