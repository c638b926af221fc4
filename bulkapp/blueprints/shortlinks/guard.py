"""A global budget on unknown reply-link codes, so guessing codes from many addresses gets nowhere fast.

Per-address limits stop one address; an enumeration spread over many addresses is stopped here. Every lookup of
a code that does not exist (or cannot exist) spends one unit of ``SHORTLINK_UNKNOWN_RATE_LIMIT``, counted across
all addresses in the limiter's storage (Redis when configured, so across every web process). While that budget
is spent, an address that itself looked up an unknown code within ``SHORTLINK_MISS_MEMORY`` is refused (429)
before any lookup, for known and unknown codes alike, so the refusal says nothing about which codes exist. A
recipient opening the code they were sent has made no such miss, so known codes keep working meanwhile.
"""

from __future__ import annotations

from functools import lru_cache

from flask import current_app
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse

from bulkapp.extensions import limiter

BUDGET_KEY = "shortlinks-unknown"
MISS_KEY = "shortlinks-miss"


@lru_cache(maxsize=8)
def _item(text: str) -> RateLimitItem:
    return parse(text)


def _enabled() -> bool:
    return bool(current_app.config.get("RATELIMIT_ENABLED", True)) and limiter.enabled


def _budget() -> RateLimitItem:
    return _item(current_app.config.get("SHORTLINK_UNKNOWN_RATE_LIMIT") or "300 per minute")


def _memory() -> RateLimitItem:
    return _item(current_app.config.get("SHORTLINK_MISS_MEMORY") or "1 per 10 minutes")


def refused() -> bool:
    """True when this address may look up no code now: the global budget of unknown lookups is spent and this
    address made one of them recently."""
    if not _enabled():
        return False
    strategy = limiter.limiter
    if strategy.test(_budget(), BUDGET_KEY):
        return False
    return not strategy.test(_memory(), MISS_KEY, get_remote_address())


def count_miss() -> None:
    """Spend one unit of the global budget and remember that this address looked up an unknown code."""
    if not _enabled():
        return
    strategy = limiter.limiter
    strategy.hit(_budget(), BUDGET_KEY)
    strategy.hit(_memory(), MISS_KEY, get_remote_address())
