"""The contact book: normalised numbers, create/update/delete, search with keyset pages, activity, export."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bulkapp.extensions import db
from bulkapp.i18n import N_, stored_sentences
from bulkapp.models import Campaign, Contact, Conversation, Message
from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.spreadsheet import FORMULA_START, safe_cell  # exports prefix a formula with ', imports drop it

NAME_LIMIT = 120
DEPARTMENT_LIMIT = 80
FIELD_KEY_LIMIT = 40
FIELD_VALUE_LIMIT = 1000
PAGE_SIZE = 50
BULK_LIMIT = 500  # ids per bulk delete
NO_DEPARTMENT = "__none__"  # the department filter's "no department" choice
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
# Error sentences stay English (an import report stores them, the API answers in English); the contacts pages
# show them in the reader's language through i18n.stored_text.
(
    ALREADY_IN_CONTACTS,
    NOT_AN_EMAIL,
    NAME_TOO_LONG,
    DEPARTMENT_TOO_LONG,
    FIELD_LINE_SHAPE,
    FIELD_VALUE_TOO_LONG,
    TOO_MANY_TO_DELETE,
) = stored_sentences(
    N_("%(contact)s is already in your contacts."),
    N_("This is not a valid email address."),
    N_("The name is longer than %(limit)s characters."),
    N_("The department is longer than %(limit)s characters."),
    N_("Line %(line)s: write it as “name: value”, e.g. “order_id: 1234”."),
    N_("Line %(line)s: keep values under %(limit)s characters."),
    N_("Delete at most %(limit)s contacts at a time."),
)


class ContactError(ValueError):
    """Invalid contact input; ``field`` names the form field the ``message`` (English) belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class DuplicateContact(ContactError):
    """The number (or email) is already in this tenant's book; ``existing_id`` is that contact."""

    def __init__(self, existing_id: int | None, contact: str) -> None:
        super().__init__("contact", ALREADY_IN_CONTACTS % {"contact": contact})
        self.existing_id = existing_id


def normalise_contact(raw: str) -> str:
    """A phone number in any Kenyan form -> E.164; an email address -> lower case. Raises ContactError."""
    text = (raw or "").strip()
    if "@" in text:
        if not EMAIL.fullmatch(text) or len(text) > 254:
            raise ContactError("contact", NOT_AN_EMAIL)
        return text.lower()
    try:
        return normalise_msisdn(text)
    except InvalidNumber as exc:
        raise ContactError("contact", exc.reason) from None


_UNTIDY = re.compile(r"^\s|\s$|\s\s|[\t\n\r\f\v]|^'")


def clean_text(value: Any) -> str:
    """One line of text: spaces collapsed, spreadsheet formula guard (a leading ') removed."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    if not _UNTIDY.search(text):  # the usual case, and the import's hot path
        return text
    text = " ".join(text.split())
    if text.startswith("'") and text[1:2] in FORMULA_START:
        text = text[1:]
    return text


def clean_name(value: Any) -> str | None:
    name = clean_text(value)
    if len(name) > NAME_LIMIT:
        raise ContactError("name", NAME_TOO_LONG % {"limit": NAME_LIMIT})
    return name or None


def clean_department(value: Any) -> str | None:
    department = clean_text(value)
    if len(department) > DEPARTMENT_LIMIT:
        raise ContactError("department", DEPARTMENT_TOO_LONG % {"limit": DEPARTMENT_LIMIT})
    return department or None


def field_key(label: str) -> str:
    """A template-variable name for a column or field label: ``"Order ID"`` -> ``order_id``."""
    key = re.sub(r"[^a-z0-9]+", "_", (label or "").strip().lower()).strip("_")
    return key[:FIELD_KEY_LIMIT].rstrip("_")


def parse_fields_text(text: str) -> dict[str, str]:
    """``key: value`` lines (``=`` works too) -> fields. Raises ContactError naming the bad line."""
    fields: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        separator = ":" if ":" in line else "="
        key, found, value = line.partition(separator)
        key = field_key(key)
        if not found or not key:
            raise ContactError("fields", FIELD_LINE_SHAPE % {"line": number})
        value = clean_text(value)
        if len(value) > FIELD_VALUE_LIMIT:
            raise ContactError("fields", FIELD_VALUE_TOO_LONG % {"line": number, "limit": FIELD_VALUE_LIMIT})
        if value:
            fields[key] = value
    return fields


def fields_text(fields: dict[str, Any] | None) -> str:
    return "\n".join(f"{key}: {value}" for key, value in (fields or {}).items())


def _existing_id(client_id: int, contact: str) -> int | None:
    return db.session.scalar(sa.select(Contact.id).where(Contact.client_id == client_id, Contact.contact == contact))


def create_contact(
    client_id: int,
    *,
    contact: str,
    name: str | None = None,
    department: str | None = None,
    fields: dict[str, Any] | None = None,
) -> Contact:
    """Add one contact. Raises ContactError (bad input) or DuplicateContact (number already in the book)."""
    number = normalise_contact(contact)
    values = {"name": clean_name(name), "department": clean_department(department), "fields": dict(fields or {})}
    existing = _existing_id(client_id, number)
    if existing is not None:
        raise DuplicateContact(existing, number)
    row = Contact(client_id=client_id, contact=number, **values)
    try:
        with db.session.begin_nested():  # a concurrent insert of the same number loses cleanly
            db.session.add(row)
    except IntegrityError:
        raise DuplicateContact(_existing_id(client_id, number), number) from None
    return row


def get_contact(client_id: int, contact_id: int) -> Contact | None:
    return db.session.scalar(sa.select(Contact).where(Contact.client_id == client_id, Contact.id == contact_id))


def update_contact(
    client_id: int,
    contact_id: int,
    *,
    contact: str,
    name: str | None = None,
    department: str | None = None,
    fields: dict[str, Any] | None = None,
) -> Contact:
    """Change a contact; ``fields=None`` keeps its fields. Raises LookupError, ContactError, DuplicateContact."""
    row = get_contact(client_id, contact_id)
    if row is None:
        raise LookupError(contact_id)
    number = normalise_contact(contact)
    name, department = clean_name(name), clean_department(department)
    if number != row.contact:
        other = _existing_id(client_id, number)
        if other is not None:
            raise DuplicateContact(other, number)
    row.contact, row.name, row.department = number, name, department
    if fields is not None:
        row.fields = dict(fields)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise DuplicateContact(_existing_id(client_id, number), number) from None
    return row


def delete_contacts(client_id: int, contact_ids: Iterable[int]) -> int:
    """Delete the tenant's contacts among ``contact_ids`` (their conversations go with them); returns how many.

    Ids of other tenants are ignored. At most BULK_LIMIT ids per call.
    """
    ids = sorted({int(i) for i in contact_ids})
    if not ids:
        return 0
    if len(ids) > BULK_LIMIT:
        raise ContactError("ids", TOO_MANY_TO_DELETE % {"limit": BULK_LIMIT})
    result = db.session.execute(
        sa.delete(Contact).where(Contact.client_id == client_id, Contact.id.in_(ids)),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount


def _number_fragment(query: str) -> str | None:
    """The national digits of something typed like a phone number (``0712 34`` -> ``71234``), else None."""
    if not re.fullmatch(r"[\d\s+()\-]{3,}", query):
        return None
    digits = re.sub(r"\D", "", query)
    for prefix in ("00254", "254", "0"):
        if digits.startswith(prefix) and len(digits) > len(prefix):
            digits = digits[len(prefix) :]
            break
    return digits or None


def filtered(client_id: int, q: str | None = None, department: str | None = None) -> sa.Select:
    """``SELECT contacts`` of the tenant matching a search (name, number or email) and a department."""
    query = sa.select(Contact).where(Contact.client_id == client_id)
    q = " ".join((q or "").split())
    if q:
        conditions = [Contact.name.icontains(q, autoescape=True), Contact.contact.icontains(q, autoescape=True)]
        digits = _number_fragment(q)
        if digits:
            conditions.append(Contact.contact.contains(digits, autoescape=True))
        query = query.where(sa.or_(*conditions))
    if department == NO_DEPARTMENT:
        query = query.where(Contact.department.is_(None))
    elif department:
        query = query.where(Contact.department == department)
    return query


@dataclass(frozen=True)
class Page:
    contacts: list[Contact]
    newer: int | None  # cursor (``before``) for the previous page, None on the first page
    older: int | None  # cursor (``after``) for the next page, None on the last page


def page_of_contacts(
    client_id: int,
    q: str | None = None,
    department: str | None = None,
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> Page:
    """Newest first, keyset-paginated on id: ``after`` = the last id seen (older page), ``before`` = the first
    id seen (newer page). Never OFFSET, so page 2,000 costs what page 1 does."""
    query = filtered(client_id, q, department)
    if before is not None:
        rows = list(db.session.scalars(query.where(Contact.id > before).order_by(Contact.id.asc()).limit(limit + 1)))
        has_newer = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        has_older = True
    else:
        if after is not None:
            query = query.where(Contact.id < after)
        rows = list(db.session.scalars(query.order_by(Contact.id.desc()).limit(limit + 1)))
        has_older = len(rows) > limit
        rows = rows[:limit]
        has_newer = after is not None
    if not rows:
        return Page([], None, None)
    return Page(rows, rows[0].id if has_newer else None, rows[-1].id if has_older else None)


def count_contacts(client_id: int, q: str | None = None, department: str | None = None) -> int:
    query = filtered(client_id, q, department).with_only_columns(sa.func.count(Contact.id))
    return db.session.scalar(query) or 0


def departments(client_id: int, limit: int = 500) -> list[str]:
    query = (
        sa.select(Contact.department)
        .where(Contact.client_id == client_id, Contact.department.is_not(None))
        .distinct()
        .order_by(Contact.department)
        .limit(limit)
    )
    return list(db.session.scalars(query))


@dataclass(frozen=True)
class Activity:
    conversations: list[Conversation]
    messages: list[Message]
    campaigns: list[tuple[Campaign, int]]  # campaign and how many of its messages went to this contact


def contact_activity(client_id: int, contact: Contact, limit: int = 20) -> Activity:
    """The contact's conversations, latest messages (either direction) and the campaigns that reached them."""
    conversations = list(
        db.session.scalars(
            sa.select(Conversation)
            .where(Conversation.client_id == client_id, Conversation.contact_id == contact.id)
            .order_by(Conversation.last_message_at.desc().nulls_last(), Conversation.id.desc())
        )
    )
    with_contact = sa.or_(Message.recipient == contact.contact, Message.sender == contact.contact)
    if conversations:
        with_contact = sa.or_(with_contact, Message.conversation_id.in_([c.id for c in conversations]))
    latest = sa.select(Message).where(Message.client_id == client_id, with_contact)
    messages = list(db.session.scalars(latest.order_by(Message.id.desc()).limit(limit)))
    received = (
        sa.select(Message.campaign_id, sa.func.count(Message.id).label("n"))
        .where(Message.client_id == client_id, Message.recipient == contact.contact, Message.campaign_id.is_not(None))
        .group_by(Message.campaign_id)
        .subquery()
    )
    campaigns = [
        (campaign, n)
        for campaign, n in db.session.execute(
            sa.select(Campaign, received.c.n)
            .join(received, received.c.campaign_id == Campaign.id)
            .where(Campaign.client_id == client_id)
            .order_by(Campaign.id.desc())
            .limit(limit)
        )
    ]
    return Activity(conversations, messages, campaigns)


def export_rows(client_id: int, q: str | None = None, department: str | None = None) -> Iterator[list[str]]:
    """CSV rows of the (filtered) book: a header, then one row per contact, streamed from the database.

    Columns: name, phone, department, then every field key in use. Text that a spreadsheet would run as a
    formula gets a leading ' (the importer removes it again), so an export imports back unchanged.
    """
    query = filtered(client_id, q, department)
    keys: dict[str, None] = {}
    stream = {"yield_per": 2000}
    for fields in db.session.scalars(query.with_only_columns(Contact.fields).execution_options(**stream)):
        for key in fields or {}:
            keys.setdefault(key)
    columns = list(keys)
    yield ["name", "phone", "department", *columns]
    for row in db.session.scalars(query.order_by(Contact.id).execution_options(**stream)):
        fields = row.fields or {}
        yield [
            safe_cell(row.name),
            safe_cell(row.contact),
            safe_cell(row.department),
            *(safe_cell(fields.get(key)) for key in columns),
        ]
