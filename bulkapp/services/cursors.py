"""Keyset page cursors over ``(timestamp, id)``: opaque to clients, exact to the microsecond."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"(\d{1,18})_(\d{1,18})")


class InvalidCursor(ValueError):
    """A pagination cursor that this code did not make."""


def encode(at: datetime, row_id: int) -> str:
    delta = at - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}_{row_id}"


def decode(cursor: str) -> tuple[datetime, int]:
    match = _CURSOR.fullmatch(cursor or "")
    if not match:
        raise InvalidCursor(f"{cursor!r} is not a cursor")
    try:
        return EPOCH + timedelta(microseconds=int(match.group(1))), int(match.group(2))
    except OverflowError:  # past the year 9999
        raise InvalidCursor(f"{cursor!r} is not a cursor") from None
