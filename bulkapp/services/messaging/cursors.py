"""Keyset page cursors over ``(timestamp, id)``: opaque to clients, exact to the microsecond."""

from __future__ import annotations

from datetime import datetime

from bulkapp.parsing import encode_cursor, parse_cursor


class InvalidCursor(ValueError):
    """A pagination cursor that this code did not make (or one no column could hold)."""


def encode(at: datetime, row_id: int) -> str:
    return encode_cursor(at, row_id)


def decode(cursor: str) -> tuple[datetime, int]:
    parsed = parse_cursor(cursor)
    if parsed is None:
        raise InvalidCursor(f"{cursor!r} is not a cursor")
    return parsed
