"""Formatting shared by pages and services: shillings, numbers and dates in the reader's language.

A low module: it imports nothing of the app, so services and models can use it without reaching up into
``web.py``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask_babel import format_datetime, format_decimal


def format_ksh(value) -> str:
    if value is None:
        return "—"
    return f"KSh {Decimal(value):,.2f}"


# strftime directives the templates use, as CLDR date patterns (month names then follow the locale).
_STRFTIME_TO_CLDR = {
    "%d": "dd",
    "%e": "d",
    "%b": "MMM",
    "%B": "MMMM",
    "%m": "MM",
    "%Y": "yyyy",
    "%y": "yy",
    "%H": "HH",
    "%M": "mm",
    "%S": "ss",
    "%a": "EEE",
    "%A": "EEEE",
}


def _cldr_pattern(fmt: str) -> str:
    out, i = [], 0
    while i < len(fmt):
        token = fmt[i : i + 2]
        if token in _STRFTIME_TO_CLDR:
            out.append(_STRFTIME_TO_CLDR[token])
            i += 2
        elif fmt[i].isalpha() or fmt[i] == "'":
            j = i
            while j < len(fmt) and (fmt[j].isalpha() or fmt[j] == "'") and fmt[j : j + 2] not in _STRFTIME_TO_CLDR:
                j += 1
            out.append("'" + fmt[i:j].replace("'", "''") + "'")
            i = j
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def local_time(value: datetime | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    """A UTC datetime in the user's timezone, with month and day names in the page's language."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    return format_datetime(value, _cldr_pattern(fmt))


def format_number(value, digits: int | None = None) -> str:
    """A plain number for the page's locale (KSh amounts use |ksh instead)."""
    if value is None:
        return "—"
    if digits is not None:
        return format_decimal(value, format="#,##0." + "0" * digits if digits else "#,##0")
    return format_decimal(value)
