"""Sessions you can end: one server-side record per sign-in, the source of truth for "signed in".

The browser's session cookie holds a random token (``TOKEN_KEY``); the ``user_sessions`` row keeps only its SHA-256.
Every request checks the row (``check``): ended, idle longer than ``SESSION_IDLE_MINUTES`` or older than
``SESSION_MAX_DAYS`` means signed out, whatever the (signed, permanent) cookie still says. ``last_seen_at`` is
written at most once a minute (``TOUCH_EVERY``) so that a page view costs one indexed read and no write.

Callers commit: ``start_session``, ``end_session`` and ``end_all_sessions`` only change the database session.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import orm

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import User, UserSession

TOKEN_KEY = "_session_token"  # the key in Flask's (signed) session cookie
TOUCH_EVERY = timedelta(minutes=1)
USER_AGENT_MAX = 255


def _now() -> datetime:
    """The clock (tests replace it)."""
    return utcnow()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _limits() -> tuple[timedelta, timedelta]:
    config = current_app.config
    return timedelta(minutes=config["SESSION_IDLE_MINUTES"]), timedelta(days=config["SESSION_MAX_DAYS"])


def start_session(user: User, ip: str | None, user_agent: str | None) -> str:
    """Record a sign-in of ``user`` (also their ``last_login_at``, the team page's "last sign-in") and return the
    token for the cookie (shown nowhere else, never stored)."""
    token = secrets.token_urlsafe(32)
    now = _now()
    user.last_login_at = now
    db.session.add(
        UserSession(
            user_id=user.id,
            token_hash=_hash(token),
            created_at=now,
            last_seen_at=now,
            ip_address=(ip or None) and ip[:45],
            user_agent=(user_agent or None) and user_agent[:USER_AGENT_MAX],
        )
    )
    db.session.flush()
    return token


def _live(query, now: datetime):
    idle, absolute = _limits()
    return query.where(
        UserSession.ended_at.is_(None),
        UserSession.last_seen_at > now - idle,
        UserSession.created_at > now - absolute,
    )


def check(user_id: int, token: str | None) -> tuple[UserSession, User] | None:
    """The live record behind ``token`` for ``user_id`` and its user (with the user's tenant), or None (signed
    out): one SELECT on the unique ``token_hash``, the request's only read to know who is signed in. Marks
    ``last_seen_at`` (unflushed) when the last mark is over a minute old; ``needs_commit`` says so."""
    if not token:
        return None
    now = _now()
    row = db.session.execute(
        _live(sa.select(UserSession, User), now)
        .join(User, User.id == UserSession.user_id)
        .options(orm.joinedload(User.client))  # every signed-in page reads it (two-factor rule, tenant role)
        .where(UserSession.token_hash == _hash(token), UserSession.user_id == user_id)
    ).first()
    if row is None:
        return None
    record, user = row
    if now - record.last_seen_at >= TOUCH_EVERY:
        record.last_seen_at = now
        record.touched = True  # a plain attribute, not a column: the mark may be flushed before the commit
    return record, user


def needs_commit(record: UserSession | None) -> bool:
    return getattr(record, "touched", False)


def end_session(token: str | None) -> None:
    """End the session behind ``token`` (nothing happens for an unknown or already ended one)."""
    if not token:
        return
    db.session.execute(
        sa.update(UserSession)
        .where(UserSession.token_hash == _hash(token), UserSession.ended_at.is_(None))
        .values(ended_at=_now())
    )


def end_all_sessions(user_id: int, except_token: str | None = None) -> int:
    """End every session of ``user_id`` but the one behind ``except_token``; returns how many were ended."""
    query = sa.update(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
    if except_token:
        query = query.where(UserSession.token_hash != _hash(except_token))
    return db.session.execute(query.values(ended_at=_now())).rowcount or 0


def end_session_by_id(user_id: int, session_id: int) -> UserSession | None:
    """End one of ``user_id``'s own sessions by its id; None when it is not theirs (or does not exist)."""
    record = db.session.get(UserSession, session_id)
    if record is None or record.user_id != user_id:
        return None
    if record.ended_at is None:
        record.ended_at = _now()
    return record


def is_token_of(record: UserSession, token: str | None) -> bool:
    return bool(token) and record.token_hash == _hash(token)


@dataclass(frozen=True)
class SessionView:
    id: int
    created_at: datetime
    last_seen_at: datetime
    ip_address: str | None
    browser: str
    current: bool


def active_sessions(user_id: int, current_token: str | None = None) -> list[SessionView]:
    """``user_id``'s live sessions, the most recently used first, this browser's marked ``current``."""
    current_hash = _hash(current_token) if current_token else None
    rows = db.session.scalars(
        _live(sa.select(UserSession), _now())
        .where(UserSession.user_id == user_id)
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    )
    return [
        SessionView(
            row.id,
            row.created_at,
            row.last_seen_at,
            row.ip_address,
            describe_browser(row.user_agent),
            row.token_hash == current_hash,
        )  # fmt: skip
        for row in rows
    ]


# (pattern, name): the first match wins, so the browsers that also say "Chrome" or "Safari" come first.
_BROWSERS = (
    (r"Edg(e|A|iOS)?/", "Edge"),
    (r"OPR/|Opera", "Opera"),
    (r"SamsungBrowser/", "Samsung Internet"),
    (r"Firefox/|FxiOS/", "Firefox"),
    (r"Chrome/|CriOS/|Chromium/", "Chrome"),
    (r"Safari/", "Safari"),
)
_SYSTEMS = (
    (r"iPhone", "iPhone"),
    (r"iPad", "iPad"),
    (r"Android", "Android"),
    (r"Windows", "Windows"),
    (r"Mac OS X|Macintosh", "macOS"),
    (r"CrOS", "ChromeOS"),
    (r"Linux", "Linux"),
)


def describe_browser(user_agent: str | None) -> str:
    """A User-Agent in plain words: "Chrome on Windows", "Safari on iPhone", "Unknown browser"."""
    text = user_agent or ""
    browser = next((name for pattern, name in _BROWSERS if re.search(pattern, text)), None)
    system = next((name for pattern, name in _SYSTEMS if re.search(pattern, text)), None)
    if browser and system:
        return _("%(browser)s on %(system)s", browser=browser, system=system)
    return browser or system or _("Unknown browser")
