"""The one place that turns untrusted text (query strings, form fields, API bodies) into ids, numbers (page
sizes too) and dates, each within bounds a database column and a date type can hold (keyset cursors, in
``services.messaging.cursors``, read their id with :func:`parse_id`).

Only ASCII digits count as digits (``"²".isdigit()`` is true, ``int("²")`` fails), underscores are
refused (``int("1_000")`` would accept them), and a value outside its bounds is treated like any other
bad value: the ``parse_*`` helpers answer ``None`` and never raise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

INT_MAX = 2**31 - 1  # INTEGER columns (every primary key)
BIGINT_MAX = 2**63 - 1  # BIGINT columns
MIN_YEAR = 2000  # filters and schedules: nothing in this product is older or further away
MAX_YEAR = 2100
SCHEDULE_HORIZON = timedelta(days=5 * 366)  # "at most 5 years ahead"

_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)
_SIGNED = re.compile(r"-?[0-9]{1,19}", re.ASCII)
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)


def parse_int(raw: object, low: int, high: int) -> int | None:
    """A whole number written in ASCII digits (an optional leading minus) within ``low..high``, else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and _SIGNED.fullmatch(raw.strip()):
        value = int(raw.strip())
    else:
        return None
    return value if low <= value <= high else None


def parse_id(raw: object, *, big: bool = False) -> int | None:
    """A row id: 1..2^31-1 (INTEGER) or 1..2^63-1 with ``big`` (BIGINT). Anything else is None."""
    return parse_int(raw, 1, BIGINT_MAX if big else INT_MAX)


def parse_ids(values: Iterable[object], *, big: bool = False) -> list[int]:
    """The valid ids among ``values``, in order, without duplicates; invalid ones are dropped."""
    seen: dict[int, None] = {}
    for value in values:
        parsed = parse_id(value, big=big)
        if parsed is not None:
            seen.setdefault(parsed)
    return list(seen)


def parse_date(raw: object, *, min_year: int = MIN_YEAR, max_year: int = MAX_YEAR) -> date | None:
    """A ``YYYY-MM-DD`` calendar date with the year in ``min_year..max_year``, else None."""
    if isinstance(raw, datetime):
        raw = raw.date()
    if isinstance(raw, date):
        return raw if min_year <= raw.year <= max_year else None
    if not isinstance(raw, str):
        return None
    match = _DATE.fullmatch(raw.strip())
    if not match or not min_year <= int(match.group(1)) <= max_year:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:  # 2026-02-30
        return None


def parse_datetime(raw: object, *, min_year: int = MIN_YEAR, max_year: int = MAX_YEAR) -> datetime | None:
    """An ISO-8601 date-time (``Z`` or an offset; none means UTC) as an aware UTC datetime with the year in
    ``min_year..max_year`` both as written and in UTC, else None. Never raises."""
    if not isinstance(raw, str) or not raw.isascii() or len(raw) > 40:
        return None
    text = raw.strip()
    if not _DATE.fullmatch(text[:10]) or not min_year <= int(text[:4]) <= max_year:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return parsed if min_year <= parsed.year <= max_year else None


def parse_future(raw: object, now: datetime, *, horizon: timedelta = SCHEDULE_HORIZON) -> datetime | None:
    """A date-time strictly after ``now`` and at most ``horizon`` ahead (a schedule), else None."""
    parsed = parse_datetime(raw)
    if parsed is None or not now < parsed <= now + horizon:
        return None
    return parsed


MAX_JSON_DEPTH = 32  # no API body nests deeper than a few levels


class MalformedJson(ValueError):
    """A request body that is not JSON, or nests deeper than :data:`MAX_JSON_DEPTH`."""


def parse_json(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The decoded JSON document; :class:`MalformedJson` for invalid text, bad UTF-8 or deep nesting."""
    try:
        payload = json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise MalformedJson("not valid JSON") from None
    stack = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise MalformedJson(f"nested deeper than {max_depth} levels")
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return payload


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL, and surrogates (in a str only ever lone ones)


def scrub_unstorable(value: str) -> str:
    """``value`` with every NUL character and lone surrogate replaced by U+FFFD: for text a caller cannot refuse
    (a vendor's callback would be retried forever), where :func:`storable_text` would say no."""
    return _UNSTORABLE.sub("\ufffd", value)


def storable_text(value: str) -> bool:
    """Text a database column can hold: no NUL character and no unpaired surrogate (``"\\ud800"``)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def has_unstorable_text(value: Any) -> bool:
    """Whether any string in a decoded JSON document (keys included) fails :func:`storable_text`."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not storable_text(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
