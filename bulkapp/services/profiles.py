"""Users' own profiles, avatars and passwords, and teammates invited into a tenant."""

from __future__ import annotations

import io
import secrets
from pathlib import Path
from zoneinfo import available_timezones

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from PIL import Image, UnidentifiedImageError

from bulkapp.extensions import db
from bulkapp.models import User
from bulkapp.services.accounts import AccountError, create_user
from bulkapp.services.passwords import hash_password, verify_password

LANGUAGES = (("en", "English"), ("sw", "Kiswahili"))
AVATAR_MAX_BYTES = 2 * 1024 * 1024
AVATAR_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}
AVATAR_SIZE = 256
INVITE_MAX_AGE = 7 * 24 * 3600


def timezones() -> list[str]:
    """IANA zones, African ones first: the users are in East Africa."""
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    return [z for z in zones if z.startswith("Africa/")] + [z for z in zones if not z.startswith("Africa/")]


def update_profile(
    user: User,
    *,
    name: str,
    phone: str | None,
    bio: str | None,
    timezone: str,
    language: str,
    email_notifications: list[str] | None = None,
) -> User:
    """Change the user's own details; the timezone, language and notification types must be known ones."""
    from bulkapp.services.notifications import TYPES

    if set(email_notifications or ()) - set(TYPES):
        raise AccountError(_l("Choose notification types from the list."), "email_notifications")
    if timezone not in available_timezones():
        raise AccountError(_l("Choose a timezone from the list."), "timezone")
    if language not in dict(LANGUAGES):
        raise AccountError(_l("Choose a language from the list."), "language")
    user.name, user.phone, user.bio = name.strip(), phone or None, (bio or "").strip() or None
    user.timezone, user.language = timezone, language
    user.preferences = {**(user.preferences or {}), "email_notifications": sorted(email_notifications or [])}
    db.session.flush()
    return user


def change_password(user: User, current: str, new: str) -> None:
    if not verify_password(user.password, current):
        raise AccountError(_l("Your current password is not right."), "current_password")
    if len(new) < 8:
        raise AccountError(_l("The new password needs at least 8 characters."), "new_password")
    user.password = hash_password(new)
    db.session.flush()


def avatar_dir() -> Path:
    from bulkapp.config import INSTANCE_DIR

    path = Path(current_app.config.get("AVATAR_DIR") or INSTANCE_DIR / "avatars")
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_avatar(user: User, data: bytes) -> str:
    """Check an uploaded picture (size, real image of an allowed type), store a 256 px PNG copy.

    The copy is re-encoded, so nothing but pixels from the upload is ever served back.
    """
    if not data:
        raise AccountError(_l("Choose a picture to upload."), "avatar")
    if len(data) > AVATAR_MAX_BYTES:
        raise AccountError(_l("The picture is larger than 2 MB."), "avatar")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((AVATAR_SIZE, AVATAR_SIZE))
            picture = image.convert("RGBA")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError):
        raise AccountError(
            _l("That file is not a picture we can read (use PNG, JPEG, WebP or GIF)."), "avatar"
        ) from None
    if kind not in AVATAR_FORMATS:
        raise AccountError(_l("Use a PNG, JPEG, WebP or GIF picture."), "avatar")
    name = f"{user.id}-{secrets.token_hex(8)}.png"
    picture.save(avatar_dir() / name, format="PNG")
    old = user.avatar
    user.avatar = name
    db.session.flush()
    if old and old != name:
        (avatar_dir() / old).unlink(missing_ok=True)
    return name


def avatar_path(user: User) -> Path | None:
    if not user.avatar:
        return None
    path = avatar_dir() / user.avatar
    return path if path.is_file() else None


def team(client_id: int) -> list[User]:
    return db.session.scalars(sa.select(User).where(User.client_id == client_id).order_by(User.name)).all()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="bulkapp-invite")


def invite_teammate(client_id: int, *, email: str, name: str) -> str:
    """A signed invitation (valid 7 days) for ``email`` to join the tenant; returns the token."""
    email = (email or "").strip().lower()
    if "@" not in email:
        raise AccountError(_l("Enter a valid email address."), "email")
    if db.session.scalar(sa.select(User.id).where(User.email == email)):
        raise AccountError(_l("Someone already uses this email."), "email")
    return _serializer().dumps({"client_id": client_id, "email": email, "name": (name or "").strip()})


def read_invite(token: str) -> dict:
    """The invitation's content, or AccountError when it is forged, expired or already used."""
    try:
        data = _serializer().loads(token, max_age=INVITE_MAX_AGE)
    except SignatureExpired:
        raise AccountError(_l("This invitation has expired. Ask your teammate for a new one.")) from None
    except BadSignature:
        raise AccountError(_l("This invitation link is not valid.")) from None
    if db.session.scalar(sa.select(User.id).where(User.email == data["email"])):
        raise AccountError(_l("This invitation was already used. Sign in instead."))
    return data


def accept_invite(token: str, *, name: str, password: str) -> User:
    data = read_invite(token)
    return create_user(data["email"], password, name=name or data["name"], client_id=data["client_id"])
