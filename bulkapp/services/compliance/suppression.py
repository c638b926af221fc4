"""The tenant's suppression list as Settings > Opt-outs shows it: keyset pages, search, manual add, CSV export."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

from bulkapp import spreadsheet
from bulkapp.extensions import db
from bulkapp.i18n import lazy_stored
from bulkapp.models import Suppression
from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.services.compliance import optouts

PAGE_SIZE = 50
EXPORT_CHUNK = 1000
MAX_QUERY = 100
EXPORT_COLUMNS = ("contact", "source", "keyword", "channel", "opted_out_at")
SOURCE_LABELS = {
    "keyword": _l("Replied"),
    "reply_form": _l("Reply form"),
    "provider": _l("Provider"),
    "manual": _l("Added by hand"),
}


class InvalidContact(ValueError):
    """A number or address that cannot go on the list; the message is a sentence for the user, lazy (it reads in
    the viewer's language when shown)."""


@dataclass(frozen=True)
class Page:
    rows: list[Suppression]
    next_before: int | None
    total: int


def normalise_contact(raw: str) -> str:
    """E.164 for a phone number, a normalised address for an email; :class:`InvalidContact` otherwise."""
    text = (raw or "").strip()
    if not text:
        raise InvalidContact(_l("Enter a phone number or an email address."))
    if "@" in text:
        try:
            return validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise InvalidContact(_l("This is not a valid email address (%(problem)s).", problem=str(exc))) from None
    try:
        return normalise_msisdn(text)
    except InvalidNumber as exc:
        raise InvalidContact(lazy_stored(exc.reason)) from None


def _search(query: str) -> sa.ColumnElement[bool] | None:
    """``0712 34`` finds ``+25471234…``; anything else is a case-insensitive substring of the contact."""
    text = (query or "").strip()[:MAX_QUERY]
    if not text:
        return None
    if re.fullmatch(r"[\d\s+()-]+", text):
        digits = re.sub(r"\D", "", text)
        if digits.startswith("0"):
            digits = "254" + digits[1:]
        return Suppression.contact.contains(digits, autoescape=True)
    return sa.func.lower(Suppression.contact).contains(text.lower(), autoescape=True)


def list_page(client_id: int, *, query: str = "", before: int | None = None, limit: int = PAGE_SIZE) -> Page:
    """Newest first, ``limit`` rows with ids below ``before``; ``next_before`` is the cursor of the next page."""
    where = [Suppression.client_id == client_id]
    condition = _search(query)
    if condition is not None:
        where.append(condition)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Suppression).where(*where))
    select = sa.select(Suppression).where(*where)
    if before is not None:
        select = select.where(Suppression.id < before)
    rows = list(db.session.scalars(select.order_by(Suppression.id.desc()).limit(limit + 1)))
    next_before = rows[limit - 1].id if len(rows) > limit else None
    return Page(rows[:limit], next_before, total)


def add(client_id: int, raw: str) -> tuple[str, bool]:
    """Suppress a number or address by hand (source ``manual``): (normalised contact, whether it is new)."""
    contact = normalise_contact(raw)
    return contact, optouts.opt_out(client_id, contact, source="manual")


def remove(client_id: int, suppression_id: int) -> str | None:
    """Take the tenant's row ``suppression_id`` off the list (the contact is no longer opted out); its contact,
    or None when the tenant has no such row."""
    contact = db.session.scalar(
        sa.select(Suppression.contact).where(Suppression.client_id == client_id, Suppression.id == suppression_id)
    )
    if contact is None:
        return None
    optouts.opt_in(client_id, contact)
    return contact


def export_csv(client_id: int) -> Iterator[str]:
    """The whole list as CSV text chunks, oldest first, read in keyset chunks (never all rows at once)."""
    buffer = io.StringIO()
    writer = spreadsheet.writer(buffer)  # every cell guarded against formulas
    writer.writerow(EXPORT_COLUMNS)
    after = 0
    while True:
        rows = db.session.execute(
            sa.select(
                Suppression.id,
                Suppression.contact,
                Suppression.source,
                Suppression.keyword,
                Suppression.channel,
                Suppression.created_at,
            )
            .where(Suppression.client_id == client_id, Suppression.id > after)
            .order_by(Suppression.id)
            .limit(EXPORT_CHUNK)
        ).all()
        for row in rows:
            at = row.created_at.isoformat() if row.created_at else ""
            writer.writerow([row.contact, row.source, row.keyword, row.channel or "", at])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < EXPORT_CHUNK:
            return
        after = rows[-1].id
