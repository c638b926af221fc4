"""Users' own profiles, avatars and passwords (the team and its invitations: team.py)."""

from __future__ import annotations

import io
import secrets
import threading
from pathlib import Path
from zoneinfo import available_timezones

from flask import current_app
from flask_babel import lazy_gettext as _l
from PIL import Image, UnidentifiedImageError

from bulkapp.extensions import db
from bulkapp.models import User
from bulkapp.services.accounts.passwords import hash_password, verify_password
from bulkapp.services.accounts.sessions import end_all_sessions
from bulkapp.services.accounts.users import AccountError

LANGUAGES = (("en", "English"), ("sw", "Kiswahili"))
AVATAR_MAX_BYTES = 2 * 1024 * 1024
AVATAR_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}
AVATAR_SIZE = 256
# Refused from the header, before any pixel is decoded: a 315 KB PNG can declare 9000 x 9000 (324 MB decoded).
AVATAR_MAX_SIDE = 4096
# Pillow's own bomb guard for anything else that decodes in this process (it warns above, refuses at twice this).
Image.MAX_IMAGE_PIXELS = AVATAR_MAX_SIDE * AVATAR_MAX_SIDE
# Decodes at once per process (a 4096 x 4096 RGBA picture is 64 MB while it is scaled down); others wait this long.
AVATAR_WORKERS = 2
AVATAR_WAIT_SECONDS = 15.0
_image_work = threading.BoundedSemaphore(AVATAR_WORKERS)


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
    from bulkapp.services.notifications.notify import TYPES

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


def change_password(user: User, current: str, new: str, *, keep_token: str | None) -> None:
    """Replace the user's password and end every other session of theirs (a cookie copied earlier dies with the
    old password); the session behind ``keep_token``, the browser that changed it, stays signed in."""
    if not verify_password(user.password, current):
        raise AccountError(_l("Your current password is not right."), "current_password")
    if len(new) < 8:
        raise AccountError(_l("The new password needs at least 8 characters."), "new_password")
    user.password = hash_password(new)
    db.session.flush()
    end_all_sessions(user.id, except_token=keep_token)


def avatar_dir() -> Path:
    from bulkapp.config import INSTANCE_DIR

    path = Path(current_app.config.get("AVATAR_DIR") or INSTANCE_DIR / "avatars")
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_avatar(user: User, data: bytes) -> str:
    """Check an uploaded picture (size, real image of an allowed type), store a 256 px PNG copy.

    The type and the dimensions come from the header (Pillow opens lazily): anything but PNG, JPEG, WebP or GIF,
    or wider or taller than :data:`AVATAR_MAX_SIDE`, is refused before a pixel is decoded. The rest is decoded
    scaled down (``draft`` lets JPEG decode at 1/2, 1/4 or 1/8 size; ``thumbnail`` then shrinks), at most
    :data:`AVATAR_WORKERS` at a time in this process. The copy is re-encoded, so nothing but pixels from the
    upload is ever served back.
    """
    if not data:
        raise AccountError(_l("Choose a picture to upload."), "avatar")
    if len(data) > AVATAR_MAX_BYTES:
        raise AccountError(_l("The picture is larger than 2 MB."), "avatar")
    if not _image_work.acquire(timeout=AVATAR_WAIT_SECONDS):
        raise AccountError(_l("Many pictures are being uploaded right now. Try again in a minute."), "avatar")
    try:
        picture = _shrink(data)
    finally:
        _image_work.release()
    name = f"{user.id}-{secrets.token_hex(8)}.png"
    picture.save(avatar_dir() / name, format="PNG")
    old = user.avatar
    user.avatar = name
    db.session.flush()
    if old and old != name:
        (avatar_dir() / old).unlink(missing_ok=True)
    return name


def _shrink(data: bytes) -> Image.Image:
    """The upload as a 256 px RGBA picture, or :class:`AccountError` saying what is wrong with it."""
    too_large = AccountError(
        _l("The picture is too large: use one of at most %(most)s × %(most)s pixels.", most=f"{AVATAR_MAX_SIDE:,}"),
        "avatar",
    )
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind, (width, height) = probe.format, probe.size
            if kind not in AVATAR_FORMATS:
                raise AccountError(_l("Use a PNG, JPEG, WebP or GIF picture."), "avatar")
            if width > AVATAR_MAX_SIDE or height > AVATAR_MAX_SIDE:
                raise too_large
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB" if image.mode == "RGB" else None, (AVATAR_SIZE, AVATAR_SIZE))
            image.thumbnail((AVATAR_SIZE, AVATAR_SIZE))
            return image.convert("RGBA")
    except AccountError:
        raise
    except Image.DecompressionBombError:  # Pillow's own guard, from the header too (twice MAX_IMAGE_PIXELS)
        raise too_large from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise AccountError(
            _l("That file is not a picture we can read (use PNG, JPEG, WebP or GIF)."), "avatar"
        ) from None


def avatar_path(user: User) -> Path | None:
    if not user.avatar:
        return None
    path = avatar_dir() / user.avatar
    return path if path.is_file() else None
