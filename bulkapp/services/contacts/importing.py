"""Contacts CSV import: save and inspect an upload, map its columns, run it in chunks, report on every row.

The upload is streamed to ``<instance>/imports/`` and read back row by row (``contact_csv``); each chunk is
written with one bulk upsert (``contact_rows``), so memory does not grow with the file apart from one entry
per distinct number, kept to point a repeated number at its first line. Progress, counts and the per-row
report live in the database, committed chunk by chunk by the caller.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.i18n import N_, lazy_list, stored_sentences
from bulkapp.models import ContactImport, ContactImportReportRow
from bulkapp.services.contacts.book import ContactError, clean_text, normalise_contact
from bulkapp.services.contacts.csv_files import (
    PREVIEW_ROWS,
    ROLES,
    ImportFileError,
    ImportTooLarge,
    guess_roles,
    inspect_file,
    mapping_from_roles,
    read_records,
)
from bulkapp.services.contacts.rows import ChunkWriter
from bulkapp.spreadsheet import safe_cell

CHUNK_ROWS = 2000
CHECK_ROWS = 50  # rows read at the mapping step to find the columns that hold phone numbers or emails
INLINE_ROWS = 5000  # imports up to this many rows run in the request; bigger ones in a background job
STALE_AFTER = timedelta(minutes=5)  # a running import with no heartbeat for this long is resumed
ABANDONED_AFTER = timedelta(hours=24)  # uploads never mapped are removed after this
# Why a running import stopped: stored in English on the import, shown in the reader's language (i18n).
(FILE_GONE,) = stored_sentences(N_("The uploaded file is no longer on the server. Upload it again."))
_STORED_NAME = re.compile(r"[0-9a-f]{32}\.csv")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class MappingError(ValueError):
    """The chosen column roles cannot be used; ``messages`` are sentences for the user (lazy: in their language)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__(" ".join(map(str, messages)))
        self.messages = messages


class ImportSuperseded(RuntimeError):
    """Another worker advanced this import first (RQ delivered the job twice); this run stops."""


def imports_dir() -> Path:
    from flask import current_app

    path = Path(current_app.config["CONTACT_IMPORT_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def stored_path(imp: ContactImport) -> Path | None:
    if not imp.stored_name or not _STORED_NAME.fullmatch(imp.stored_name):
        return None
    return imports_dir() / imp.stored_name


def _display_name(filename: str | None) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    return _CONTROL.sub("", name).strip()[:255] or "contacts.csv"


def start_import(
    client_id: int, user_id: int | None, filename: str | None, stream: BinaryIO, max_bytes: int | None = None
) -> ContactImport:
    """Save an uploaded CSV (streamed to the instance dir), inspect it and record an import awaiting its
    column mapping. Raises ImportFileError (ImportTooLarge past ``max_bytes``); nothing is kept then."""
    stored_name = f"{secrets.token_hex(16)}.csv"
    path = imports_dir() / stored_name
    size = 0
    try:
        with open(path, "wb") as out:
            while block := stream.read(1 << 16):
                size += len(block)
                if max_bytes is not None and size > max_bytes:
                    raise ImportTooLarge(f"The file is larger than the limit of {max_bytes:,} bytes.")
                out.write(block)
        info = inspect_file(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    imp = ContactImport(
        client_id=client_id,
        user_id=user_id,
        status="mapping",
        filename=_display_name(filename),
        stored_name=stored_name,
        size_bytes=size,
        encoding=info.encoding,
        delimiter=info.delimiter,
        has_header=info.has_header,
        columns=info.columns,
        mapping=mapping_from_roles(info.columns, guess_roles(info.columns, info.sample, info.has_header)),
        total_rows=info.data_rows,
    )
    db.session.add(imp)
    db.session.flush()
    return imp


def get_import(client_id: int, import_id: int) -> ContactImport | None:
    return db.session.scalar(
        sa.select(ContactImport).where(ContactImport.client_id == client_id, ContactImport.id == import_id)
    )


def recent_imports(client_id: int, limit: int = 10) -> list[ContactImport]:
    return list(
        db.session.scalars(
            sa.select(ContactImport)
            .where(ContactImport.client_id == client_id)
            .order_by(ContactImport.id.desc())
            .limit(limit)
        )
    )


def preview_rows(imp: ContactImport, limit: int = PREVIEW_ROWS) -> list[list[str]]:
    """The first rows of the file, padded to the column count, for the mapping page."""
    path = stored_path(imp)
    if path is None or not path.exists():
        return []
    rows = []
    for _line, cells in read_records(path, imp.encoding, imp.delimiter, imp.has_header):
        rows.append((cells + [""] * len(imp.columns))[: len(imp.columns)])
        if len(rows) == limit:
            break
    return rows


def apply_mapping(client_id: int, import_id: int, roles: list[str]) -> tuple[ContactImport, bool]:
    """Save the column roles and queue the import. Returns (import, started); ``started`` is False when it
    had already been started (a double submit), so only one caller runs it. Raises MappingError, LookupError."""
    imp = get_import(client_id, import_id)
    if imp is None:
        raise LookupError(import_id)
    if imp.status != "mapping":
        return imp, False
    if len(roles) != len(imp.columns) or any(role not in ROLES for role in roles):
        raise MappingError([_l("The choices do not match the file's columns. Reload the page and try again.")])
    errors = []
    phones = [imp.columns[i] for i, role in enumerate(roles) if role == "phone"]
    departments = [imp.columns[i] for i, role in enumerate(roles) if role == "department"]
    holding = contact_columns(imp)
    if not holding:
        errors.append(NO_CONTACT_COLUMN)
    elif not phones:
        errors.append(_l("Choose the column that holds the phone numbers (or email addresses)."))
    elif len(phones) > 1:
        errors.append(_l("Only one column can be the phone number; you chose %(columns)s.", columns=lazy_list(phones)))
    elif roles.index("phone") not in holding:  # refused now, not after every row has failed
        errors.append(
            _l(
                "The column %(column)s holds no phone numbers or email addresses. Choose the one that does.",
                column=phones[0],
            )
        )
    if len(departments) > 1:
        errors.append(
            _l("Only one column can be the department; you chose %(columns)s.", columns=lazy_list(departments))
        )
    if errors:
        raise MappingError(errors)
    mapping = mapping_from_roles(imp.columns, roles)
    started = db.session.execute(
        sa.update(ContactImport)
        .where(ContactImport.id == imp.id, ContactImport.status == "mapping")
        .values(status="queued", mapping=mapping, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(imp)
    return imp, bool(started)


NO_CONTACT_COLUMN = _l(
    "No column of this file holds phone numbers or email addresses, so there is nothing to import. Add a column "
    "of phone numbers and upload the file again."
)


def contact_columns(imp: ContactImport) -> set[int]:
    """The columns whose first rows include a phone number or an email address (checked as the import will)."""
    found: set[int] = set()
    for row in preview_rows(imp, limit=CHECK_ROWS):
        for index, cell in enumerate(row):
            if index not in found and cell.strip() and _is_contact(cell):
                found.add(index)
    return found


def _is_contact(cell: str) -> bool:
    try:
        normalise_contact(clean_text(cell))
    except ContactError:
        return False
    return True


def discard_import(client_id: int, import_id: int) -> bool:
    """Forget an upload that was never started (its file too). False if it is unknown or already started."""
    imp = get_import(client_id, import_id)
    if imp is None or imp.status != "mapping":
        return False
    path = stored_path(imp)
    db.session.delete(imp)
    db.session.flush()
    if path is not None:
        path.unlink(missing_ok=True)
    return True


def _claim(import_id: int) -> bool:
    now = utcnow()
    return bool(
        db.session.execute(
            sa.update(ContactImport)
            .where(
                ContactImport.id == import_id,
                sa.or_(
                    ContactImport.status == "queued",
                    sa.and_(ContactImport.status == "running", ContactImport.heartbeat_at < now - STALE_AFTER),
                ),
            )
            .values(status="running", heartbeat_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def _advance(imp: ContactImport, done_before: int, rows: int, counts: dict[str, int]) -> None:
    now = utcnow()
    advanced = db.session.execute(
        sa.update(ContactImport)
        .where(ContactImport.id == imp.id, ContactImport.processed_rows == done_before)
        .values(
            processed_rows=done_before + rows,
            created_count=ContactImport.created_count + counts["created"],
            updated_count=ContactImport.updated_count + counts["updated"],
            merged_count=ContactImport.merged_count + counts["merged"],
            failed_count=ContactImport.failed_count + counts["failed"],
            heartbeat_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if advanced != 1:
        raise ImportSuperseded(imp.id)


def run_import(import_id: int, chunk_rows: int = CHUNK_ROWS) -> Iterator[ContactImport]:
    """Import a queued (or stalled) import chunk by chunk; yields after each chunk so the caller commits it.

    Safe to run twice: only one run claims a queued import, a run that finds another one ahead of it stops
    with ImportSuperseded, and a resumed run continues after the last committed chunk. Every upsert is
    idempotent, so re-importing a row changes nothing. The file is deleted once the import is done.
    """
    if not _claim(import_id):
        return
    imp = db.session.get(ContactImport, import_id)
    db.session.refresh(imp)
    if imp.started_at is None:
        imp.started_at = utcnow()
    db.session.flush()
    yield imp  # the claim is committed before any work
    path = stored_path(imp)
    if path is None or not path.exists():
        raise ImportFileError(FILE_GONE)
    writer = ChunkWriter(imp)
    rows = read_records(path, imp.encoding, imp.delimiter, imp.has_header)
    done = imp.processed_rows
    writer.remember(rows, done)
    while True:
        chunk = list(islice(rows, chunk_rows))
        if not chunk:
            break
        counts = writer.write(chunk)
        _advance(imp, done, len(chunk), counts)
        done += len(chunk)
        db.session.expire(imp)
        yield imp
    finish_import(imp)
    yield imp
    path.unlink(missing_ok=True)  # after the caller committed "done"


def finish_import(imp: ContactImport) -> None:
    db.session.refresh(imp)
    imp.status = "done"
    imp.finished_at = utcnow()
    imp.stored_name = None
    imp.total_rows = imp.processed_rows
    if imp.user_id is not None and imp.processed_rows > INLINE_ROWS:
        from bulkapp.services.notifications.notify import notify

        counts = {"added": imp.created_count, "updated": imp.updated_count, "merged": imp.merged_count}
        notify(
            imp.client_id,
            "contacts_imported",
            "contacts_imported",
            {"filename": imp.filename, **counts, "failed": imp.failed_count},
            data={"import_id": imp.id},
            user_id=imp.user_id,
        )
    db.session.flush()


def summary(imp: ContactImport) -> str:
    """The counts in one sentence, in the reader's language (the same words as the import's notification)."""
    counts = {"added": imp.created_count, "updated": imp.updated_count, "failed": imp.failed_count}
    shown = {key: f"{value:,}" for key, value in counts.items()}
    if imp.merged_count:
        return ngettext(
            "%(added)s added, %(updated)s updated, %(merged)s duplicate row merged, %(failed)s failed.",
            "%(added)s added, %(updated)s updated, %(merged)s duplicate rows merged, %(failed)s failed.",
            imp.merged_count,
            merged=f"{imp.merged_count:,}",
            **shown,
        )
    return gettext("%(added)s added, %(updated)s updated, %(failed)s failed.", **shown)


def mark_failed(import_id: int, message: str) -> None:
    """Record why an import stopped; the rows written before it stay imported."""
    db.session.execute(
        sa.update(ContactImport)
        .where(ContactImport.id == import_id, ContactImport.status.in_(("queued", "running")))
        .values(status="failed", error_message=message[:1000], finished_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def report_rows(client_id: int, import_id: int, outcome: str | None = None, limit: int | None = None):
    """The import's report rows in line order (streamed; ``limit`` for a page preview)."""
    query = (
        sa.select(ContactImportReportRow)
        .where(ContactImportReportRow.client_id == client_id, ContactImportReportRow.import_id == import_id)
        .order_by(ContactImportReportRow.line, ContactImportReportRow.id)
    )
    if outcome:
        query = query.where(ContactImportReportRow.outcome == outcome)
    if limit is not None:
        query = query.limit(limit)
    return db.session.scalars(query.execution_options(yield_per=2000))


def report_count(imp: ContactImport, outcome: str | None = None) -> int:
    """How many report rows the import has (``added`` ones are new contacts saved without a name)."""
    query = sa.select(sa.func.count()).where(
        ContactImportReportRow.client_id == imp.client_id, ContactImportReportRow.import_id == imp.id
    )
    if outcome:
        query = query.where(ContactImportReportRow.outcome == outcome)
    return db.session.scalar(query)


REPORT_HEADER = ["line", "phone", "name", "outcome", "reason"]


def report_csv_rows(client_id: int, import_id: int) -> Iterator[list[str]]:
    yield REPORT_HEADER
    for row in report_rows(client_id, import_id):
        yield [str(row.line), safe_cell(row.value), safe_cell(row.name), row.outcome, safe_cell(row.reason)]


def stalled_imports(now=None) -> list[int]:
    """Imports a crashed or lost job left behind: running without a heartbeat, or queued but never started."""
    cutoff = (now or utcnow()) - STALE_AFTER
    return list(
        db.session.scalars(
            sa.select(ContactImport.id).where(
                sa.or_(
                    sa.and_(ContactImport.status == "running", ContactImport.heartbeat_at < cutoff),
                    sa.and_(ContactImport.status == "queued", ContactImport.updated_at < cutoff),
                )
            )
        )
    )


def purge_abandoned_uploads(now=None) -> int:
    """Delete uploads that were never mapped and started within ABANDONED_AFTER (rows and files)."""
    cutoff = (now or utcnow()) - ABANDONED_AFTER
    stale = list(
        db.session.scalars(
            sa.select(ContactImport).where(ContactImport.status == "mapping", ContactImport.created_at < cutoff)
        )
    )
    for imp in stale:
        path = stored_path(imp)
        if path is not None:
            path.unlink(missing_ok=True)
        db.session.delete(imp)
    db.session.flush()
    return len(stale)
