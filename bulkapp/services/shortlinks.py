"""Short reply links (``/x/<code>``): one unique 4-character, case-sensitive base62 code per outbound SMS."""

from __future__ import annotations

import secrets
import string
from datetime import timedelta

from flask import current_app
from sqlalchemy.exc import IntegrityError

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import ShortLink
from bulkapp.services.pricing import REPLY_CODE_LENGTH

ALPHABET = string.digits + string.ascii_letters  # base62: 62**4 = 14,776,336 codes
DEFAULT_TTL_DAYS = 90
MAX_ATTEMPTS = 12


class CodeSpaceExhausted(RuntimeError):
    """No free code was found after :data:`MAX_ATTEMPTS` tries: the code space is nearly full."""


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(REPLY_CODE_LENGTH))


def link_ttl() -> timedelta:
    """How long a reply link works: ``SHORT_LINK_TTL_DAYS`` (default 90 days)."""
    return timedelta(days=int(current_app.config.get("SHORT_LINK_TTL_DAYS") or DEFAULT_TTL_DAYS))


def short_url(code: str, base_url: str | None = None) -> str:
    base = base_url if base_url is not None else current_app.config["BASE_URL"]
    return f"{base.rstrip('/')}/x/{code}"


def create_short_link(
    client_id: int, message_id: int, *, base_url: str | None = None, ttl: timedelta | None = None
) -> ShortLink:
    """Give ``message_id`` a fresh reply link with a random code that no other link has.

    Each attempt inserts inside a SAVEPOINT, so a code taken by another link (the unique index decides,
    also against concurrent senders) rolls back only that attempt and a new code is drawn; the caller's
    transaction is untouched. Raises :class:`CodeSpaceExhausted` after :data:`MAX_ATTEMPTS` collisions.
    Flushes; the caller commits.
    """
    expires_at = utcnow() + (ttl if ttl is not None else link_ttl())
    for _ in range(MAX_ATTEMPTS):
        code = new_code()
        link = ShortLink(
            client_id=client_id,
            message_id=message_id,
            code=code,
            original_url=short_url(code, base_url),
            expires_at=expires_at,
        )
        try:
            with db.session.begin_nested():
                db.session.add(link)
                db.session.flush()
        except IntegrityError:
            continue
        return link
    raise CodeSpaceExhausted(f"no free short-link code after {MAX_ATTEMPTS} attempts")
