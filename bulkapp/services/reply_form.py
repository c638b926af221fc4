"""The public reply form behind ``/x/<code>``: finding a live link, counting clicks, and the signed form token
that proves the page was loaded (and when) before a reply is accepted."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Client, ShortLink

CODE = re.compile(r"[0-9A-Za-z]{4}")
TOKEN_MAX_AGE = 24 * 3600  # a form left open longer than a day is loaded again
SALT = "reply-form"


def find_link(code: str) -> ShortLink | None:
    """The link with exactly this (case-sensitive) code; None for anything that is not a 4-character code."""
    if not CODE.fullmatch(code or ""):
        return None
    return db.session.scalar(sa.select(ShortLink).where(ShortLink.code == code))


@dataclass(frozen=True)
class LinkPage:
    """What the reply page needs, read in one query: the link, its business's display name, whether it is live."""

    id: int
    business: str
    live: bool


def open_link(code: str) -> LinkPage | None:
    """The link with exactly this (case-sensitive) code and its business (one query); None when unknown. A link
    is not live once expired or while its account is suspended."""
    if not CODE.fullmatch(code or ""):
        return None
    row = db.session.execute(
        sa.select(ShortLink.id, ShortLink.expires_at, Client.company_name, Client.name, Client.status)
        .join(Client, Client.id == ShortLink.client_id)
        .where(ShortLink.code == code)
    ).first()
    if row is None:
        return None
    live = bool(row.status) and (row.expires_at is None or row.expires_at > utcnow())
    return LinkPage(row.id, row.company_name or row.name, live)


def accepts_replies(link: ShortLink) -> bool:
    """False once the link expired (``expires_at``) or its business account is suspended."""
    if link.expires_at is not None and link.expires_at <= utcnow():
        return False
    return bool(db.session.scalar(sa.select(Client.status).where(Client.id == link.client_id)))


def business_name(link: ShortLink) -> str:
    """The only thing the page says about who sent the message: the business's display name."""
    row = db.session.execute(sa.select(Client.company_name, Client.name).where(Client.id == link.client_id)).one()
    return row.company_name or row.name


def record_click(link_id: int) -> None:
    """One more view of the form (an atomic increment, safe under concurrent clicks)."""
    db.session.execute(
        sa.update(ShortLink)
        .where(ShortLink.id == link_id)
        .values(clicks=ShortLink.clicks + 1, last_clicked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def issue_token(secret: str, code: str, issued_at: float | None = None) -> str:
    """A signed token naming the code and when the form was shown."""
    return URLSafeSerializer(secret, salt=SALT).dumps(
        [code, round(issued_at if issued_at is not None else time.time(), 3)]
    )


def token_problem(
    secret: str, code: str, token: str | None, min_seconds: float, now: float | None = None
) -> str | None:
    """None when ``token`` was issued for ``code`` between ``min_seconds`` and a day ago; else ``invalid``,
    ``too_fast`` or ``stale``."""
    try:
        token_code, issued_at = URLSafeSerializer(secret, salt=SALT).loads(token or "")
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
