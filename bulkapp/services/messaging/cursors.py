"""Keyset page cursors over ``(timestamp, id)``: opaque to clients, exact to the microsecond."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bulkapp.parsing import MAX_YEAR, parse_id

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"([0-9]{1,18})_([0-9]{1,19})", re.ASCII)
_LAST_MICROSECOND = (datetime(MAX_YEAR + 1, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


class InvalidCursor(ValueError):
    """A pagination cursor that this code did not make (or one no column could hold)."""


def encode(at: datetime, row_id: int) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    delta = at - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}_{row_id}"


def decode(cursor: object) -> tuple[datetime, int]:
    """The ``(timestamp, id)`` of a cursor made by :func:`encode`; :class:`InvalidCursor` for anything else (a
    timestamp after the year 2100, an id no INTEGER column can hold)."""
    match = _CURSOR.fullmatch(cursor) if isinstance(cursor, str) else None
    row_id = parse_id(match.group(2)) if match else None
    if row_id is None or int(match.group(1)) > _LAST_MICROSECOND:
        raise InvalidCursor(f"{cursor!r} is not a cursor")
    return EPOCH + timedelta(microseconds=int(match.group(1))), row_id


def older_than(cursor: str, at_column, id_column):
    """The condition for the rows after ``cursor`` in ``(at_column, id_column)`` newest-first order.
    Raises :class:`InvalidCursor`."""
    at, row_id = decode(cursor)
    return sa.or_(at_column < at, sa.and_(at_column == at, id_column < row_id))


def next_cursor(rows: Sequence, limit: int, at_attribute: str) -> str | None:
    """The cursor of the page after ``rows`` (fetched with ``limit + 1``), or None when this is the last."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode(getattr(last, at_attribute), last.id)
