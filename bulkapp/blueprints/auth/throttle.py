"""Failed sign-ins slow an account down without locking its owner out.

Keys: the normalised email (hashed, so no address sits in the rate-limit store) and the client address.
- Per address, every sign-in POST counts against ``LOGIN_RATE_LIMIT`` (the Flask-Limiter decorator on the view).
- Per account, failures from every address are counted for an hour. From the ``FREE_FAILURES``-th on, each
  failure makes *that address* wait before it may try this account again, and the wait doubles with each
  further failure (1 s, 2 s, 4 s ... up to ``MAX_DELAY``). An address that has not failed on the account is
  never made to wait, so ten wrong guesses from ten machines cannot keep the owner out; a guesser, though, gets
  one try per address per (growing) wait. Unknown emails are throttled exactly like real ones.
"""

from __future__ import annotations

import hashlib
import math
import time

from bulkapp.extensions import limiter
from bulkapp.services.accounts.users import normalise_email

FREE_FAILURES = 5
MAX_DELAY = 15 * 60
WINDOW = 3600


def account_key(email: str) -> str:
    """The account part of a rate-limit key: a hash of the normalised email."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()[:32]


def _keys(email: str, address: str) -> tuple[str, str]:
    account = account_key(email)
    return f"login-failures/{account}", f"login-wait/{account}/{address}"


def delay_for(failures: int) -> int:
    """Seconds an address waits after the account's ``failures``-th failure (0 below ``FREE_FAILURES``)."""
    if failures < FREE_FAILURES:
        return 0
    return min(MAX_DELAY, 2 ** min(failures - FREE_FAILURES, 20))


def wait_seconds(email: str, address: str) -> int:
    """How long this address must still wait before trying this account again (0: it may try now)."""
    if not limiter.enabled:
        return 0
    _failures, wait_key = _keys(email, address)
    storage = limiter.storage
    if not storage.get(wait_key):
        return 0
    return max(1, math.ceil(storage.get_expiry(wait_key) - time.time()))


def record_failure(email: str, address: str) -> int:
    """Count a failed sign-in; returns the seconds this address now has to wait for this account."""
    if not limiter.enabled:
        return 0
    failures_key, wait_key = _keys(email, address)
    storage = limiter.storage
    delay = delay_for(storage.incr(failures_key, WINDOW))
    if delay:
        storage.clear(wait_key)  # a fresh wait, not the remainder of an older, shorter one
        storage.incr(wait_key, delay)
    return delay
