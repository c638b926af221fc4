"""The public reply form behind ``/x/<code>``: finding a live link and the signed form token
that proves the page was loaded (and when) before a reply is accepted."""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Client, ShortLink
from bulkapp.services.messaging.reply_codes import MAX_REPLY_CODE_LENGTH, REPLY_CODE_LENGTH

CODE = re.compile(rf"[0-9A-Za-z]{{{REPLY_CODE_LENGTH},{MAX_REPLY_CODE_LENGTH}}}")
TOKEN_MAX_AGE = 24 * 3600  # a form left open longer than a day is loaded again
SALT = "reply-form"


def find_link(code: str) -> ShortLink | None:
    """The link with exactly this (case-sensitive) code; None for anything that cannot be a code."""
    if not CODE.fullmatch(code or ""):
        return None
    return db.session.scalar(sa.select(ShortLink).where(ShortLink.code == code))


@dataclass(frozen=True)
class LinkPage:
    """What the reply page needs, read in one query: the link, its business's display name and state."""

    id: int
    business: str
    expires_at: datetime | None
    account_active: bool

    @property
    def live(self) -> bool:
        """False once expired or while the account is suspended."""
        return self.account_active and (self.expires_at is None or self.expires_at > utcnow())


_LINKS, _CLIENTS = ShortLink.__table__, Client.__table__
# Built once: the page is public and hot (every SMS carries a link), so it skips the ORM and statement building.
_OPEN_LINK = (
    sa.select(_LINKS.c.id, _LINKS.c.expires_at, _CLIENTS.c.company_name, _CLIENTS.c.name, _CLIENTS.c.status)
    .join(_CLIENTS, _CLIENTS.c.id == _LINKS.c.client_id)
    .where(_LINKS.c.code == sa.bindparam("code"))
)
CACHE_SIZE = 10_000


class TimedCache:
    """A small per-process cache: entries live ``SHORTLINK_CACHE_SECONDS`` (default 30; 0 turns it off) and the
    oldest goes when :data:`CACHE_SIZE` is reached. One per app and purpose, in ``app.extensions``."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def of(name: str) -> TimedCache:
        key = f"bulkapp_{name}"
        return current_app.extensions.get(key) or current_app.extensions.setdefault(key, TimedCache())

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def put(self, key: Hashable, value: Any) -> None:
        seconds = current_app.config["SHORTLINK_CACHE_SECONDS"]
        if seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= CACHE_SIZE:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (time.monotonic() + seconds, value)


def open_link(code: str) -> LinkPage | None:
    """The link with exactly this (case-sensitive) code and its business; None when unknown.

    Read with one indexed query on a connection of its own, given back at once (on SQLite a transaction holds
    the write lock), and kept in a :class:`TimedCache`: a burst of views of one link (reloads, link-preview
    fetchers, a forwarded message) reads the database once. Expiry is checked on every view; a suspension or a
    new business name shows within the cache's lifetime, and a reply (POST) always reads the database."""
    if not CODE.fullmatch(code or ""):
        return None
    cache = TimedCache.of("link_pages")
    page = cache.get(code)
    if page is not None:
        return page
    with db.engine.connect() as conn:
        row = conn.execute(_OPEN_LINK, {"code": code}).first()
    if row is None:
        return None  # not cached: the code may be given to a new link any moment
    page = LinkPage(row.id, row.company_name or row.name, row.expires_at, bool(row.status))
    cache.put(code, page)
    return page


def accepts_replies(link: ShortLink) -> bool:
    """False once the link expired (``expires_at``) or its business account is suspended."""
    if link.expires_at is not None and link.expires_at <= utcnow():
        return False
    return bool(db.session.scalar(sa.select(Client.status).where(Client.id == link.client_id)))


def business_name(link: ShortLink) -> str:
    """The only thing the page says about who sent the message: the business's display name."""
    row = db.session.execute(sa.select(Client.company_name, Client.name).where(Client.id == link.client_id)).one()
    return row.company_name or row.name


@functools.lru_cache(maxsize=4)
def _serializer(secret: str) -> URLSafeSerializer:
    """One per secret: making one derives its key, a cost every view of the form would pay again."""
    return URLSafeSerializer(secret, salt=SALT)


def issue_token(secret: str, code: str, issued_at: float | None = None) -> str:
    """A signed token naming the code and when the form was shown."""
    return _serializer(secret).dumps([code, round(issued_at if issued_at is not None else time.time(), 3)])


def token_problem(
    secret: str, code: str, token: str | None, min_seconds: float, now: float | None = None
) -> str | None:
    """None when ``token`` was issued for ``code`` between ``min_seconds`` and a day ago; else ``invalid``,
    ``too_fast`` or ``stale``."""
    try:
        token_code, issued_at = _serializer(secret).loads(token or "")
    except (BadSignature, TypeError, ValueError):
        return "invalid"
    if token_code != code or not isinstance(issued_at, int | float):
        return "invalid"
    age = (now if now is not None else time.time()) - issued_at
    if age < min_seconds:
        return "too_fast"
    if age > TOKEN_MAX_AGE:
        return "stale"
    return None
