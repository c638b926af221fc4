"""Short reply links (``/x/<code>``): one unique case-sensitive base62 code per outbound SMS, 4 characters
while live links are few and longer as they grow, so a random guess stays below 1 in 10,000 (pricing.GUESS_ODDS).
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import ShortLink
from bulkapp.public_url import public_base_url
from bulkapp.services.messaging.reply_codes import REPLY_CODE_LENGTH, reply_code_length

ALPHABET = string.digits + string.ascii_letters  # base62: 62**4 = 14,776,336 codes, 62**5 = 916,132,832...
DEFAULT_TTL_DAYS = 90
MAX_ATTEMPTS = 12
DEFAULT_COUNT_SECONDS = 60.0
_COUNT = "bulkapp_live_link_count"
_count_lock = threading.Lock()


class CodeSpaceExhausted(RuntimeError):
    """No free code was found after :data:`MAX_ATTEMPTS` tries: the code space is nearly full."""


def new_code(length: int = REPLY_CODE_LENGTH) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def live_link_count() -> int:
    """How many reply links work now (not expired): one COUNT over ``short_links``, remembered by this process
    for ``SHORTLINK_COUNT_SECONDS`` (default 60; 0 counts every time). The length only needs to follow the
    count roughly: it is a guess-resistance margin, and the launch prices with whatever length it issues."""
    seconds = float(current_app.config.get("SHORTLINK_COUNT_SECONDS", DEFAULT_COUNT_SECONDS))
    cached = current_app.extensions.get(_COUNT)
    if seconds > 0 and cached is not None and cached[0] > time.monotonic():
        return cached[1]
    count = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(ShortLink)
        .where(sa.or_(ShortLink.expires_at.is_(None), ShortLink.expires_at > utcnow()))
    )
    with _count_lock:
        current_app.extensions[_COUNT] = (time.monotonic() + seconds, count)
    return count


def current_code_length() -> int:
    """The length new reply links get now: the shortest at which a random guess hits a live link with
    probability below 1 in 10,000 (:func:`bulkapp.services.billing.pricing.reply_code_length`)."""
    return reply_code_length(live_link_count())


def link_ttl() -> timedelta:
    """How long a reply link works: ``SHORT_LINK_TTL_DAYS`` (default 90 days)."""
    return timedelta(days=int(current_app.config.get("SHORT_LINK_TTL_DAYS") or DEFAULT_TTL_DAYS))


def short_url(code: str, base_url: str | None = None) -> str:
    base = base_url if base_url is not None else public_base_url()
    return f"{base.rstrip('/')}/x/{code}"


def create_short_link(
    client_id: int,
    message_id: int,
    *,
    base_url: str | None = None,
    ttl: timedelta | None = None,
    length: int | None = None,
) -> ShortLink:
    """Give ``message_id`` a fresh reply link with a random code of ``length`` characters (default
    :func:`current_code_length`; the send path passes the length its price counted) that no other link has.

    Each attempt inserts inside a SAVEPOINT, so a code taken by another link (the unique index decides,
    also against concurrent senders) rolls back only that attempt and a new code is drawn; the caller's
    transaction is untouched. Raises :class:`CodeSpaceExhausted` after :data:`MAX_ATTEMPTS` collisions.
    Flushes; the caller commits.
    """
    expires_at = utcnow() + (ttl if ttl is not None else link_ttl())
    length = length or current_code_length()
    for _ in range(MAX_ATTEMPTS):
        code = new_code(length)
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
