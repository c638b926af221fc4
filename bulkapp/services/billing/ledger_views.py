"""Read side of the wallet ledger: filtered history, keyset pages, plain-words rows and CSV export."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from bulkapp import spreadsheet
from bulkapp.extensions import db
from bulkapp.i18n import stored_text
from bulkapp.models import WALLET_STATUSES, WALLET_TYPES, WalletTransaction
from bulkapp.parsing import parse_id

PAGE_SIZE = 25
CSV_CHUNK = 500
DEFAULT_TIMEZONE = "Africa/Nairobi"

TYPE_LABELS = {
    "topup": _l("Top-up"),
    "deduction": _l("Message charge"),
    "refund": _l("Refund"),
    "adjustment": _l("Adjustment"),
    "hold": _l("Campaign hold"),
    "release": _l("Hold released"),
}
# Labels are lazy: shown in the page's language (English or Swahili) when rendered.
STATUS_LABELS = {"pending": _l("Pending"), "completed": _l("Completed"), "failed": _l("Failed")}
CSV_HEADER = (
    "id",
    "date",
    "type",
    "status",
    "amount_ksh",
    "balance_before_ksh",
    "balance_after_ksh",
    "reference",
    "mpesa_receipt",
    "description",
    "simulated",
)
# The columns a history row needs: the CSV export reads plain rows, never ORM instances, so a stream that outlives
# its request's session (stream_with_context) cannot hit an expired or detached object.
ROW_COLUMNS = (
    WalletTransaction.id,
    WalletTransaction.type,
    WalletTransaction.status,
    WalletTransaction.amount,
    WalletTransaction.balance_before,
    WalletTransaction.balance_after,
    WalletTransaction.reference,
    WalletTransaction.mpesa_reference,
    WalletTransaction.checkout_request_id,
    WalletTransaction.description,
    WalletTransaction.simulated,
    WalletTransaction.meta.label("meta"),
    WalletTransaction.created_at,
)


def zone(name: str | None) -> ZoneInfo:
    """The user's timezone, or Nairobi when the stored name is missing or unknown."""
    try:
        return ZoneInfo(name or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


@dataclass(frozen=True)
class HistoryFilters:
    """What the history shows: a type, a status, and whole days (inclusive) in the user's timezone."""

    type: str | None = None
    status: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        if self.type is not None and self.type not in WALLET_TYPES:
            raise ValueError(f"unknown transaction type {self.type!r}")
        if self.status is not None and self.status not in WALLET_STATUSES:
            raise ValueError(f"unknown transaction status {self.status!r}")

    def query_args(self) -> dict[str, str]:
        """The filters as URL query arguments (for the Older link and the CSV export)."""
        args = {
            "type": self.type,
            "status": self.status,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
        }
        return {key: value for key, value in args.items() if value}

    def utc_range(self) -> tuple[datetime | None, datetime | None]:
        """``[start, end)`` in UTC: midnight of ``date_from`` to midnight after ``date_to``, local time."""
        tz = zone(self.timezone)
        start = datetime.combine(self.date_from, time.min, tz) if self.date_from else None
        end = datetime.combine(self.date_to + timedelta(days=1), time.min, tz) if self.date_to else None
        return start, end


@dataclass(frozen=True)
class HistoryRow:
    """One ledger row as people read it."""

    id: int
    type: str
    type_label: str
    status: str
    status_label: str
    amount: Decimal
    amount_text: str
    balance_before: Decimal | None
    balance_after: Decimal | None
    reference: str
    receipt: str | None
    note: str
    created_at: datetime
    simulated: bool = False  # paid through the simulated M-Pesa: no money moved

    @property
    def waiting(self) -> bool:
        """An STK top-up still waiting for M-Pesa: its row keeps polling."""
        return self.type == "topup" and self.status == "pending"


@dataclass(frozen=True)
class HistoryPage:
    rows: list[HistoryRow]
    next_cursor: int | None  # the id to continue below ("Older"), None on the last page
    cursor: int | None  # the cursor this page started from (None: the newest page)


def history_select(client_id: int, filters: HistoryFilters, *columns) -> sa.Select:
    """The tenant's ledger rows matching ``filters``, newest first (by id): whole rows, or ``columns``."""
    query = sa.select(*(columns or (WalletTransaction,))).where(WalletTransaction.client_id == client_id)
    if filters.type:
        query = query.where(WalletTransaction.type == filters.type)
    if filters.status:
        query = query.where(WalletTransaction.status == filters.status)
    start, end = filters.utc_range()
    if start is not None:
        query = query.where(WalletTransaction.created_at >= start)
    if end is not None:
        query = query.where(WalletTransaction.created_at < end)
    return query.order_by(WalletTransaction.id.desc())


def parse_cursor(raw: str | None) -> int | None:
    """A page cursor from a URL (a positive row id); anything else means the newest page."""
    return parse_id(raw)


def history_page(
    client_id: int, filters: HistoryFilters, cursor: int | None = None, limit: int = PAGE_SIZE
) -> HistoryPage:
    """One page of history: rows with an id below ``cursor`` (keyset), and the cursor of the next page."""
    query = history_select(client_id, filters)
    if cursor is not None:
        query = query.where(WalletTransaction.id < cursor)
    found = db.session.scalars(query.limit(limit + 1)).all()
    rows = [present(tx) for tx in found[:limit]]
    next_cursor = rows[-1].id if len(found) > limit else None
    return HistoryPage(rows=rows, next_cursor=next_cursor, cursor=cursor)


def present(tx: WalletTransaction | sa.Row) -> HistoryRow:
    """A ledger row (an instance, or a plain row of :data:`ROW_COLUMNS`) in plain words: a top-up says what
    happened to it; an adjustment shows its reason."""
    return HistoryRow(
        id=tx.id,
        type=tx.type,
        type_label=TYPE_LABELS.get(tx.type, tx.type.title()),
        status=tx.status,
        status_label=STATUS_LABELS.get(tx.status, tx.status.title()),
        amount=tx.amount,
        amount_text=signed_amount(tx.amount),
        balance_before=tx.balance_before,
        balance_after=tx.balance_after,
        reference=tx.reference,
        receipt=tx.mpesa_reference,
        note=transaction_note(tx),
        created_at=tx.created_at,
        simulated=bool(tx.simulated),
    )


def transaction_note(tx: WalletTransaction) -> str:
    """What the row means, for the history and the export (a top-up's already in the reader's language)."""
    from bulkapp.services.billing.topups import describe_topup

    meta = tx.meta or {}
    if tx.type == "topup" and tx.checkout_request_id:
        return describe_topup(tx)[1]
    if tx.status == "failed" and meta.get("reason"):
        return str(meta["reason"])
    if tx.type == "adjustment" and meta.get("reason"):
        return str(meta["reason"])
    return tx.description or ""


def exact_amount(value: Decimal | None) -> str:
    """The stored amount without rounding: at least two decimals, more only when they are not zero
    (``500.00``, ``-0.875``, ``0.0625``)."""
    if value is None:
        return ""
    text = f"{value:.4f}"
    whole, fraction = text.split(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{whole}.{fraction}"


def _grouped(value: Decimal) -> str:
    """The exact amount grouped in thousands for reading: ``1,250.00``, ``0.875``."""
    whole, fraction = exact_amount(abs(value)).split(".")
    return f"{int(whole):,}.{fraction}"


def signed_amount(value: Decimal) -> str:
    """``+500.00`` / ``-0.875``: the exact amount with its sign."""
    return ("-" if value < 0 else "+") + _grouped(value)


def ksh_exact(value: Decimal | None, prefix: bool = True) -> str:
    """Template filter: ``KSh 1,250.00`` / ``KSh 0.875`` without rounding (``—`` for nothing)."""
    if value is None:
        return "—"
    text = ("-" if value < 0 else "") + _grouped(value)
    return f"KSh {text}" if prefix else text


def _stored_in(text: str, cache: dict[str, str]) -> str:
    """A stored English sentence in the current language (the caller forces it), remembered in ``cache``."""
    found = cache.get(text)
    if found is None:
        if len(cache) > 10_000:
            cache.clear()
        found = cache[text] = stored_text(text)
    return found


def history_csv(
    client_id: int, filters: HistoryFilters, chunk: int = CSV_CHUNK, *, language: str = "en"
) -> Iterator[str]:
    """The filtered history as CSV text, newest first, produced in keyset chunks of ``chunk`` rows.

    Amounts are exact (:func:`exact_amount`), dates are ISO 8601 in the user's timezone, descriptions in
    ``language`` (given, not looked up: the stream runs after the request that started it). Each chunk is
    read as plain rows in its own short transaction, so a slow download never holds the database.
    """
    tz = zone(filters.timezone)
    buffer = io.StringIO()
    writer = spreadsheet.writer(buffer, lineterminator="\r\n")  # every cell guarded against formulas

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_HEADER)
    yield flush()
    translated: dict[str, str] = {}  # stored descriptions repeat ("Opening balance", "SMS to ..."): translate each once
    cursor: int | None = None
    while True:
        query = history_select(client_id, filters, *ROW_COLUMNS)
        if cursor is not None:
            query = query.where(WalletTransaction.id < cursor)
        with force_locale(language):
            found = db.session.execute(query.limit(chunk)).all()
            rows = [present(tx) for tx in found]
            described = {tx.id for tx in found if tx.type == "topup" and tx.checkout_request_id}
            db.session.rollback()  # read-only: end the transaction between chunks
            for row in rows:
                writer.writerow(
                    (
                        row.id,
                        row.created_at.astimezone(tz).isoformat(timespec="seconds"),
                        row.type,
                        row.status,
                        exact_amount(row.amount),
                        exact_amount(row.balance_before),
                        exact_amount(row.balance_after),
                        row.reference,
                        row.receipt,
                        row.note if row.id in described else _stored_in(row.note, translated),
                        "yes" if row.simulated else "",
                    )
                )
        if rows:
            yield flush()
        if len(rows) < chunk:
            return
        cursor = rows[-1].id
