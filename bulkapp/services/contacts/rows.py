"""Writing mapped CSV rows as contacts: check each row, upsert a chunk in one statement, note the report rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.i18n import N_, stored_sentences
from bulkapp.models import Contact, ContactImport, ContactImportReportRow
from bulkapp.services.contacts.book import (
    DEPARTMENT_LIMIT,
    DEPARTMENT_TOO_LONG,
    FIELD_VALUE_LIMIT,
    NAME_LIMIT,
    NAME_TOO_LONG,
    ContactError,
    clean_text,
    normalise_contact,
)
from bulkapp.services.contacts.csv_files import quick_msisdn

# Report reasons are stored in English (the report rows and the downloadable report); the import page shows
# them in the reader's language (i18n.stored_text). The number checks' sentences are registered where they are
# written (bulkapp/phones.py, services/contacts/book.py).
NO_PHONE, VALUE_TOO_LONG, SAME_NUMBER, ALREADY_THERE, SAME_NUMBER_NAMED, SAME_NUMBER_KEPT, NO_NAME = stored_sentences(
    N_("No phone number."),
    N_("The %(column)s value is longer than %(limit)s characters."),
    N_("Same number as line %(line)s; merged into one contact."),  # reports written before names were said
    N_("Already in your contacts; updated with this row's details."),
    N_("Same number as line %(line)s; merged into one contact named “%(name)s” (the later name wins)."),
    N_("Same number as line %(line)s; merged into one contact. This row has no name, so the earlier one is kept."),
    N_("No name in this row: the contact is saved with its number only."),
)


class _RowError(ValueError):
    """A row that cannot be imported; the message is the report's reason (English, as stored)."""


def _normalise(raw: str) -> str:
    quick = quick_msisdn(raw)
    if quick is not None:
        return quick
    try:
        return normalise_contact(clean_text(raw))
    except ContactError as exc:
        raise _RowError(exc.message) from None


def _merge_on_conflict(stmt, merged_fields):
    """ON CONFLICT (client_id, contact): non-empty name/department win, fields are merged, updated_at moves."""
    table = Contact.__table__
    return stmt.on_conflict_do_update(
        index_elements=[table.c.client_id, table.c.contact],
        set_={
            "name": sa.func.coalesce(stmt.excluded.name, table.c.name),
            "department": sa.func.coalesce(stmt.excluded.department, table.c.department),
            "fields": merged_fields,
            "updated_at": stmt.excluded.updated_at,
        },
    )


class _SQLiteContacts:
    """SQLite: one executemany of INSERT ... ON CONFLICT DO UPDATE per chunk (the driver loops in C)."""

    def __init__(self) -> None:
        from sqlalchemy.dialects.sqlite import insert

        table = Contact.__table__
        # Constant columns live in the statement, not in each row's parameters: fewer values to bind per row.
        stmt = insert(table).values(total_messages=0, created_at=sa.func.now(), updated_at=sa.func.now())
        self.upsert_statement = _merge_on_conflict(stmt, sa.func.json_patch(table.c.fields, stmt.excluded.fields))

    def existing(self, client_id: int, numbers: list[str]) -> set[str]:
        query = sa.select(Contact.contact).where(Contact.client_id == client_id, Contact.contact.in_(numbers))
        return set(db.session.scalars(query))

    def upsert(self, client_id: int, rows: list[dict[str, Any]]) -> None:
        db.session.execute(self.upsert_statement, [{"client_id": client_id, **row} for row in rows])


class _PostgresContacts:
    """PostgreSQL: the whole chunk travels as one JSON document, expanded by jsonb_to_recordset in a single
    INSERT ... SELECT ... ON CONFLICT DO UPDATE: one statement and one round trip per chunk."""

    def __init__(self) -> None:
        from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert

        table = Contact.__table__
        document = sa.cast(sa.bindparam("rows", type_=sa.Text), JSONB)
        rows = (
            sa.func.jsonb_to_recordset(document)
            .table_valued(
                sa.column("contact", sa.Text),
                sa.column("name", sa.Text),
                sa.column("department", sa.Text),
                sa.column("fields", JSONB),
            )
            .render_derived(with_types=True)
        )
        select = sa.select(
            sa.bindparam("client_id", type_=sa.Integer),
            rows.c.contact,
            rows.c.name,
            rows.c.department,
            rows.c.fields,
            sa.literal(0),
            sa.func.now(),
            sa.func.now(),
        ).select_from(rows)
        columns = ["client_id", "contact", "name", "department", "fields", "total_messages", "created_at", "updated_at"]
        stmt = insert(table).from_select(columns, select)
        merged = table.c.fields.op("||", return_type=table.c.fields.type)(stmt.excluded.fields)
        self.upsert_statement = _merge_on_conflict(stmt, merged)
        self.existing_query = sa.select(Contact.contact).where(
            Contact.client_id == sa.bindparam("client_id"),
            Contact.contact == sa.any_(sa.bindparam("numbers", type_=ARRAY(sa.String))),
        )

    def existing(self, client_id: int, numbers: list[str]) -> set[str]:
        return set(db.session.scalars(self.existing_query, {"client_id": client_id, "numbers": numbers}))

    def upsert(self, client_id: int, rows: list[dict[str, Any]]) -> None:
        db.session.execute(self.upsert_statement, {"client_id": client_id, "rows": json.dumps(rows)})


def contacts_writer(dialect: str) -> _SQLiteContacts | _PostgresContacts:
    if dialect == "postgresql":
        return _PostgresContacts()
    if dialect == "sqlite":
        return _SQLiteContacts()
    raise NotImplementedError(dialect)  # pragma: no cover - the product runs on SQLite and PostgreSQL


@dataclass(slots=True)
class _Parsed:
    line: int
    raw: str
    name: str
    number: str | None = None
    department: str | None = None
    fields: dict[str, str] | None = None
    error: str | None = None


class ChunkWriter:
    """Turns an import's mapped rows into contacts one chunk at a time; remembers each number's first line so a
    repeat anywhere later in the file is reported against it."""

    def __init__(self, imp: ContactImport) -> None:
        self.imp = imp
        mapping = imp.mapping
        self.phone = mapping["phone"]
        self.names = mapping.get("name") or []
        self.department = mapping.get("department")
        self.fields = list((mapping.get("fields") or {}).items())
        self.first_line: dict[str, int] = {}
        self.contacts = contacts_writer(db.session.get_bind().dialect.name)

    def parse(self, line: int, cells: list[str]) -> _Parsed:
        width = len(cells)
        raw = cells[self.phone].strip() if self.phone < width else ""
        if len(self.names) == 1:
            name = clean_text(cells[self.names[0]]) if self.names[0] < width else ""
        else:
            name = clean_text(" ".join(cells[i] for i in self.names if i < width))
        row = _Parsed(line=line, raw=raw[:255], name=name[:NAME_LIMIT])
        try:
            if not raw:
                raise _RowError(NO_PHONE)
            row.number = _normalise(raw)
            if len(name) > NAME_LIMIT:
                raise _RowError(NAME_TOO_LONG % {"limit": NAME_LIMIT})
            department = ""
            if self.department is not None and self.department < width:
                department = clean_text(cells[self.department])
            if len(department) > DEPARTMENT_LIMIT:
                raise _RowError(DEPARTMENT_TOO_LONG % {"limit": DEPARTMENT_LIMIT})
            row.department = department or None
            fields = {}
            for key, index in self.fields:
                value = clean_text(cells[index]) if index < width else ""
                if value:
                    if len(value) > FIELD_VALUE_LIMIT:
                        column = self.imp.columns[index]
                        raise _RowError(VALUE_TOO_LONG % {"column": column, "limit": FIELD_VALUE_LIMIT})
                    fields[key] = value
            row.fields = fields
        except _RowError as exc:
            row.number, row.error = None, str(exc)
        return row

    def remember(self, rows: Iterator[tuple[int, list[str]]], count: int) -> None:
        """On a resumed run: re-read the rows already imported, only to know each number's first line."""
        for _ in range(count):
            line, cells = next(rows)
            row = self.parse(line, cells)
            if row.number is not None:
                self.first_line.setdefault(row.number, line)

    def write(self, chunk: list[tuple[int, list[str]]]) -> dict[str, int]:
        """Upsert one chunk and record its report rows; returns the counts to add to the import."""
        report: list[dict[str, Any]] = []
        batch: dict[str, dict[str, Any]] = {}
        new: dict[str, _Parsed] = {}
        counts = {"failed": 0, "merged": 0}
        for line, cells in chunk:
            row = self.parse(line, cells)
            if row.error:
                counts["failed"] += 1
                report.append(self._report(row, "failed", row.error))
                continue
            earlier = self.first_line.get(row.number)
            if earlier is None:
                self.first_line[row.number] = line
                new[row.number] = row
            else:
                counts["merged"] += 1
                # The upsert keeps the later non-empty name: say which one the merged contact ends up with.
                if row.name:
                    reason = SAME_NUMBER_NAMED % {"line": earlier, "name": row.name}
                else:
                    reason = SAME_NUMBER_KEPT % {"line": earlier}
                report.append(self._report(row, "merged", reason))
            entry = batch.get(row.number)
            if entry is None:
                batch[row.number] = {
                    "contact": row.number,
                    "name": row.name or None,
                    "department": row.department,
                    "fields": row.fields,
                }
            else:  # the same number twice in this chunk: later non-empty values win, fields add up
                entry["name"] = row.name or entry["name"]
                entry["department"] = row.department or entry["department"]
                entry["fields"] = {**entry["fields"], **row.fields}
        existing = self.contacts.existing(self.imp.client_id, list(new)) if new else set()
        for number in existing:
            report.append(self._report(new[number], "updated", ALREADY_THERE))
        for number, row in new.items() if self.names else ():  # no name column mapped: names were not asked for
            if not row.name and number not in existing and not batch[number]["name"]:
                report.append(self._report(row, "added", NO_NAME))
        if batch:
            self.contacts.upsert(self.imp.client_id, list(batch.values()))
        if report:
            report.sort(key=lambda r: r["line"])
            db.session.execute(sa.insert(ContactImportReportRow), report)
        counts["updated"] = len(existing)
        counts["created"] = len(new) - len(existing)
        return counts

    def _report(self, row: _Parsed, outcome: str, reason: str) -> dict[str, Any]:
        return {
            "client_id": self.imp.client_id,
            "import_id": self.imp.id,
            "line": row.line,
            "outcome": outcome,
            "value": row.raw,
            "name": row.name,
            "reason": reason[:255],
        }
