"""Promotional quiet hours: promotional campaigns only send between 08:00 and 18:00 Africa/Nairobi by default.

The window is per tenant: ``settings["promotional_hours"] = {"start": "08:00", "end": "18:00"}`` (local
Nairobi time, start inclusive, end exclusive). Every function takes ``now`` so callers and tests decide the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")
DEFAULT_START = time(8, 0)
DEFAULT_END = time(18, 0)


@dataclass(frozen=True)
class Window:
    start: time
    end: time

    def label(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M} EAT"


def _parse(value: Any, default: time) -> time:
    if str(value) == "24:00":  # "until midnight"
        return time.max
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except (TypeError, ValueError):
        return default


def window(settings: dict[str, Any] | None) -> Window:
    """The tenant's promotional sending window; the default when unset or malformed (end must follow start)."""
    configured = (settings or {}).get("promotional_hours") or {}
    if not isinstance(configured, dict):
        configured = {}
    start = _parse(configured.get("start"), DEFAULT_START)
    end = _parse(configured.get("end"), DEFAULT_END)
    if end <= start:
        return Window(DEFAULT_START, DEFAULT_END)
    return Window(start, end)


def _local(now: datetime) -> datetime:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(NAIROBI)


def is_open(settings: dict[str, Any] | None, now: datetime) -> bool:
    """True when promotional messages may go out at ``now``."""
    hours = window(settings)
    return hours.start <= _local(now).time() < hours.end


def next_opening(settings: dict[str, Any] | None, now: datetime) -> datetime:
    """The next time (UTC) the window opens after ``now``: today's start if still ahead, else tomorrow's."""
    hours = window(settings)
    local = _local(now)
    day = local.date() if local.time() < hours.start else local.date() + timedelta(days=1)
    return datetime.combine(day, hours.start, tzinfo=NAIROBI).astimezone(UTC)


def allowed(kind: str, settings: dict[str, Any] | None, now: datetime) -> bool:
    """Whether a campaign of this kind may send now (quiet hours bind promotional campaigns on every channel)."""
    return kind != "promotional" or is_open(settings, now)
