"""A campaign's recipients: the selection it records, streamed in chunks, validated, de-duplicated and
checked against the suppression list.

The selection (``Campaign.recipients``) is a small JSON record: ``{"all": bool, "departments": [...],
"contact_ids": [...], "numbers": "pasted text", "csv": {"token": "...", "filename": "..."}}``. Recipients are
never all in memory: contacts stream from the database, pasted numbers and the CSV file line by line.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from bulkapp.config import INSTANCE_DIR
from bulkapp.extensions import db
from bulkapp.models import Contact, Message
from bulkapp.services.compliance import optouts
from bulkapp.services.contacts.csv_files import PHONE_HEADERS, ImportFileError, inspect_file, quick_msisdn, read_records
from bulkapp.services.messaging.compose import SendError, normalise_recipient
from bulkapp.services.messaging.templates import contact_variables

CHUNK = 1000
MAX_PASTED = 200_000  # characters of pasted numbers
MAX_INVALID_SAMPLES = 20
_TOKEN = re.compile(r"[0-9a-f]{32}")
_SPLIT = re.compile(r"[\r\n,;]+")


@dataclass(frozen=True)
class Candidate:
    """One recipient as given: the raw number/address, where it came from, and its template values."""

    raw: str
    source: str
    values: dict[str, str] | None = None


@dataclass(frozen=True)
class Recipient:
    address: str
    values: dict[str, str]


@dataclass
class Tally:
    """What a pass over the selection found."""

    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    opted_out: int = 0
    invalid_samples: list[dict[str, str]] = field(default_factory=list)

    def add_invalid(self, raw: str, reason: str, source: str) -> None:
        self.invalid += 1
        if len(self.invalid_samples) < MAX_INVALID_SAMPLES:
            self.invalid_samples.append({"to": raw, "reason": reason, "source": source})

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "opted_out": self.opted_out,
            "invalid_samples": self.invalid_samples,
        }


def clean_selection(
    *,
    all_contacts: bool = False,
    departments: Iterable[str] = (),
    contact_ids: Iterable[int] = (),
    numbers: str = "",
    csv: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON record of a selection, normalised (sorted, de-duplicated, bounded)."""
    return {
        "all": bool(all_contacts),
        "departments": sorted({d.strip() for d in departments if d and d.strip()}),
        "contact_ids": sorted({int(i) for i in contact_ids}),
        "numbers": (numbers or "")[:MAX_PASTED],
        "csv": csv or None,
    }


def is_empty(selection: dict[str, Any]) -> bool:
    selection = selection or {}
    return not (
        selection.get("all")
        or selection.get("departments")
        or selection.get("contact_ids")
        or (selection.get("numbers") or "").strip()
        or selection.get("csv")
    )


# ------------------------------------------------------------------------------------------ CSV uploads


def uploads_dir(client_id: int) -> Path:
    base = Path(current_app.config.get("CAMPAIGN_UPLOAD_DIR") or INSTANCE_DIR / "campaign_uploads")
    path = base / str(int(client_id))
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_upload(client_id: int, stream, filename: str) -> dict[str, Any]:
    """Store an uploaded CSV for this tenant and check it; returns the selection's ``csv`` record.
    Raises ImportFileError with the reason when the file is not a usable CSV."""
    token = secrets.token_hex(16)
    path = uploads_dir(client_id) / f"{token}.csv"
    with open(path, "wb") as out:
        while chunk := stream.read(64 * 1024):
            out.write(chunk)
    try:
        info = inspect_file(path)
    except ImportFileError:
        path.unlink(missing_ok=True)
        raise
    return {"token": token, "filename": (filename or "upload.csv")[-120:], "rows": info.data_rows}


def upload_path(client_id: int, csv_record: dict[str, Any] | None) -> Path | None:
    """The stored file of a selection's CSV, only within the tenant's own folder."""
    token = str((csv_record or {}).get("token") or "")
    if not _TOKEN.fullmatch(token):
        return None
    path = uploads_dir(client_id) / f"{token}.csv"
    return path if path.exists() else None


def _csv_candidates(client_id: int, csv_record: dict[str, Any]) -> Iterator[Candidate]:
    path = upload_path(client_id, csv_record)
    if path is None:
        return
    info = inspect_file(path)
    columns = [c.strip().lower() for c in info.columns]
    phone_col = next((i for i, c in enumerate(columns) if c in PHONE_HEADERS), 0)
    for line, cells in read_records(path, info.encoding, info.delimiter, info.has_header):
        raw = cells[phone_col] if phone_col < len(cells) else ""
        values = {}
        if info.has_header:
            values = {columns[i]: cell.strip() for i, cell in enumerate(cells) if i < len(columns) and i != phone_col}
        yield Candidate(raw, f"CSV line {line}", values)


# ------------------------------------------------------------------------------------------ streaming


def _contact_rows(client_id: int, condition: sa.ColumnElement[bool] | None, values: bool) -> Iterator[Candidate]:
    """The tenant's contacts (matching ``condition``) by keyset, as plain rows (no ORM objects); their template
    values only when the message has placeholders."""
    columns = [Contact.id, Contact.contact]
    if values:
        columns += [Contact.name, Contact.department, Contact.fields]
    query = sa.select(*columns).where(Contact.client_id == client_id)
    if condition is not None:
        query = query.where(condition)
    last_id = 0
    while True:
        rows = db.session.execute(query.where(Contact.id > last_id).order_by(Contact.id).limit(CHUNK)).all()
        if not rows:
            return
        for row in rows:
            yield Candidate(row.contact, "contacts", contact_variables(row) if values else {})
        last_id = rows[-1].id


def candidates(client_id: int, selection: dict[str, Any], *, values: bool = True) -> Iterator[Candidate]:
    """Every recipient of the selection as given, in order: contacts, pasted numbers, then the CSV file.
    ``values=False`` (a message without placeholders) skips reading the contacts' fields."""
    selection = selection or {}
    if selection.get("all"):
        yield from _contact_rows(client_id, None, values)
    else:
        if selection.get("departments"):
            yield from _contact_rows(client_id, Contact.department.in_(selection["departments"]), values)
        ids = list(selection.get("contact_ids") or [])
        for start in range(0, len(ids), CHUNK):
            yield from _contact_rows(client_id, Contact.id.in_(ids[start : start + CHUNK]), values)
    for raw in _SPLIT.split(selection.get("numbers") or ""):
        if raw.strip():
            yield Candidate(raw, "pasted", None if values else {})
    if selection.get("csv"):
        yield from _csv_candidates(client_id, selection["csv"])


def retry_candidates(client_id: int, campaign_id: int, run: int, *, values: bool = True) -> Iterator[Candidate]:
    """The recipients of a run that did not get the message: failed (rejected, failed delivery, cancelled)."""
    last_id = 0
    while True:
        rows = db.session.execute(
            sa.select(Message.id, Message.recipient)
            .where(
                Message.client_id == client_id,
                Message.campaign_id == campaign_id,
                Message.campaign_run == run,
                Message.status == "failed",
                Message.id > last_id,
            )
            .order_by(Message.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        for _, recipient in rows:
            yield Candidate(recipient, "retry", None if values else {})
        last_id = rows[-1][0]


def _normalise(channel: str, raw: str) -> str:
    if channel != "email":
        quick = quick_msisdn(raw.strip())
        if quick is not None:
            return quick
    return normalise_recipient(channel, raw)


def resolve(
    client_id: int, channel: str, stream: Iterable[Candidate], tally: Tally, *, seen: set[str] | None = None
) -> Iterator[list[Recipient]]:
    """Validate, de-duplicate (within a chunk, and across chunks when ``seen`` is given) and drop suppressed
    numbers; yields chunks of :class:`Recipient`. Pasted/CSV numbers that are contacts get the contact's values."""
    batch: list[Candidate] = []
    for candidate in stream:
        batch.append(candidate)
        if len(batch) >= CHUNK:
            yield _resolve_chunk(client_id, channel, batch, tally, seen)
            batch = []
    if batch:
        yield _resolve_chunk(client_id, channel, batch, tally, seen)


def _resolve_chunk(
    client_id: int, channel: str, batch: list[Candidate], tally: Tally, seen: set[str] | None
) -> list[Recipient]:
    chunk: dict[str, Recipient] = {}
    lookups: list[str] = []
    for candidate in batch:
        try:
            address = _normalise(channel, candidate.raw)
        except SendError as exc:
            tally.add_invalid(candidate.raw, exc.message, candidate.source)
            continue
        if address in chunk or (seen is not None and address in seen):
            tally.duplicates += 1
            continue
        if seen is not None:
            seen.add(address)
        chunk[address] = Recipient(address, candidate.values or {"phone": address, "contact": address})
        if candidate.values is None:
            lookups.append(address)
    if lookups:
        for contact in db.session.scalars(
            sa.select(Contact).where(Contact.client_id == client_id, Contact.contact.in_(lookups))
        ):
            chunk[contact.contact] = Recipient(contact.contact, contact_variables(contact))
    suppressed = optouts.suppressed_among(client_id, list(chunk)) if chunk else set()
    tally.opted_out += len(suppressed)
    kept = [recipient for address, recipient in chunk.items() if address not in suppressed]
    tally.valid += len(kept)
    return kept
