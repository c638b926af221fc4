"""The sign-in's second step when two-factor is on: the password step only leaves a short-lived pending marker in
the session (nobody is signed in yet); ``two_factor.login_code`` signs in once a code checks out.

Codes are rate-limited per account: ``MAX_FAILURES`` wrong codes within ``WINDOW`` seconds and the account's
second step (and the 2FA checks on its profile) answer 429 until the window ends; each attempt also counts
against the per-address ``LOGIN_RATE_LIMIT``.
"""

from __future__ import annotations

import math
import time

from flask import redirect, session, url_for

from bulkapp.extensions import limiter
from bulkapp.services.accounts import two_factor

PENDING_KEY = "_two_factor_pending"
PENDING_SECONDS = 300
MAX_FAILURES = 5
WINDOW = 15 * 60


def hold(user, next_url: str | None):
    """After a right password: when the user has two-factor on, keep them pending and send them to the code
    form (a redirect response); None when no second step is needed."""
    if not two_factor.enabled(user):
        return None
    session.pop(PENDING_KEY, None)
    session[PENDING_KEY] = {"user_id": user.id, "until": int(time.time()) + PENDING_SECONDS, "next": next_url or ""}
    return redirect(url_for("auth.login_code"))


def pending() -> dict | None:
    """The pending marker, or None when there is none or it has expired."""
    marker = session.get(PENDING_KEY)
    if not isinstance(marker, dict) or int(marker.get("until") or 0) < time.time():
        session.pop(PENDING_KEY, None)
        return None
    return marker


def _key(user_id: int) -> str:
    return f"two-factor-failures/{user_id}"


def wait_seconds(user_id: int) -> int:
    """Seconds until this account may try a code again (0: now)."""
    if not limiter.enabled:
        return 0
    storage, key = limiter.storage, _key(user_id)
    if (storage.get(key) or 0) < MAX_FAILURES:
        return 0
    return max(1, math.ceil(storage.get_expiry(key) - time.time()))


def record_failure(user_id: int) -> None:
    if limiter.enabled:
        limiter.storage.incr(_key(user_id), WINDOW)
