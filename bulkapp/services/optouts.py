"""Opt-outs: STOP-style keywords, the tenant's suppression list, and START to come back."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.models import Client, Contact, Suppression

OPT_OUT_KEYWORDS = ("STOP", "STOP ALL", "UNSUBSCRIBE", "ONDOKA", "TOKA")
OPT_IN_KEYWORDS = ("START", "ANZA")
DEFAULT_FOOTER = "STOP*456*9*5#"
SOURCES = ("keyword", "reply_form", "provider", "manual")


def normalise_keyword(text: str) -> str:
    """``" stop  all! "`` -> ``"STOP ALL"``: case, spacing and trailing punctuation do not matter."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text or "")).strip().upper()


def keywords(client: Client) -> tuple[list[str], list[str]]:
    """The tenant's (opt-out, opt-in) keywords, normalised; defaults when the tenant set none."""
    settings = client.settings or {}
    out = settings.get("optout_keywords") or list(OPT_OUT_KEYWORDS)
    back = settings.get("optin_keywords") or list(OPT_IN_KEYWORDS)
    return [normalise_keyword(k) for k in out if normalise_keyword(k)], [
        normalise_keyword(k) for k in back if normalise_keyword(k)
    ]


def classify(client: Client, text: str) -> str | None:
    """``"opt_out"``, ``"opt_in"`` or None for an inbound text (the whole text must be the keyword)."""
    word = normalise_keyword(text)
    if not word:
        return None
    out, back = keywords(client)
    if word in out:
        return "opt_out"
    if word in back:
        return "opt_in"
    return None


def set_keywords(client: Client, opt_out: Iterable[str], opt_in: Iterable[str]) -> None:
    out = sorted({normalise_keyword(k) for k in opt_out if normalise_keyword(k)})
    back = sorted({normalise_keyword(k) for k in opt_in if normalise_keyword(k)})
    if not out:
        raise ValueError("Keep at least one opt-out keyword.")
    if set(out) & set(back):
        raise ValueError("A keyword cannot both opt out and opt in.")
    client.settings = {**(client.settings or {}), "optout_keywords": out, "optin_keywords": back}
    db.session.flush()


def opt_out(
    client_id: int, contact: str, *, source: str, keyword: str | None = None, channel: str | None = None
) -> bool:
    """Add a number to the suppression list (once) and mark the contact; True when it is new."""
    if source not in SOURCES:
        raise ValueError(f"unknown opt-out source {source!r}")
    values: dict[str, Any] = {
        "client_id": client_id, "contact": contact, "source": source, "keyword": keyword, "channel": channel,
        "created_at": utcnow(),
    }  # fmt: skip
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    added = db.session.execute(
        insert(Suppression).values(**values).on_conflict_do_nothing(index_elements=["client_id", "contact"])
    ).rowcount
    db.session.execute(
        sa.update(Contact)
        .where(Contact.client_id == client_id, Contact.contact == contact, Contact.opted_out_at.is_(None))
        .values(opted_out_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(added)


def opt_in(client_id: int, contact: str) -> bool:
    """Take a number off the suppression list; True when it was on it."""
    removed = db.session.execute(
        sa.delete(Suppression).where(Suppression.client_id == client_id, Suppression.contact == contact)
    ).rowcount
    db.session.execute(
        sa.update(Contact)
        .where(Contact.client_id == client_id, Contact.contact == contact)
        .values(opted_out_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(removed)


def is_suppressed(client_id: int, contact: str) -> bool:
    return (
        db.session.scalar(
            sa.select(Suppression.id).where(Suppression.client_id == client_id, Suppression.contact == contact)
        )
        is not None
    )


def suppressed_among(client_id: int, contacts: Iterable[str], chunk: int = 900) -> set[str]:
    """Which of these numbers are suppressed (queried in chunks, for campaign-sized lists)."""
    found: set[str] = set()
    batch: list[str] = []
    for contact in contacts:
        batch.append(contact)
        if len(batch) == chunk:
            found |= _suppressed(client_id, batch)
            batch = []
    if batch:
        found |= _suppressed(client_id, batch)
    return found


def _suppressed(client_id: int, batch: list[str]) -> set[str]:
    return set(
        db.session.scalars(
            sa.select(Suppression.contact).where(Suppression.client_id == client_id, Suppression.contact.in_(batch))
        )
    )


def footer(client: Client) -> str:
    """The opt-out instruction appended to promotional SMS."""
    return (client.settings or {}).get("optout_footer") or DEFAULT_FOOTER
