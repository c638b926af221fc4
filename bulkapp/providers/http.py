"""The HTTP transport every HTTP vendor shares: a pooled session behind the outbound guard, one request with
explicit timeouts and no retries, and what a failed request or a non-200 answer means.

Every request goes through :class:`bulkapp.outbound.GuardedAdapter`: the vendor's host is resolved, every
address checked and the connection made to the checked one (with TLS still checked against the host name), so
a base URL that was public when the channel was saved cannot be turned into a private one by DNS later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NameResolutionError, NewConnectionError

from bulkapp.outbound import GuardedAdapter, OutboundRefused, OutboundUnreachable, Resolver, allow_private_default
from bulkapp.providers.errors import (
    BAD_ADDRESS,
    BROKE,
    BROKE_AFTER_SENDING,
    MAY_HAVE_ACCEPTED,
    NO_ANSWER,
    UNREACHABLE,
    AuthenticationError,
    ConfigurationError,
    OutcomeUnknown,
    PermanentError,
    TransientError,
    refused_reason,
)

log = logging.getLogger("bulkapp.providers")


def new_session(
    pool_size: int = 16,
    *,
    allow_private: bool | Callable[[], bool] = allow_private_default,
    resolver: Resolver | None = None,
) -> requests.Session:
    """A pooled session: keep-alive connections, no automatic retries (a retry could send twice), no proxy
    from the environment, and every request checked by the outbound guard (``allow_private`` defaults to the
    app's WEBHOOK_ALLOW_PRIVATE_URLS, asked at each request; ``resolver`` replaces DNS in tests)."""
    session = requests.Session()
    session.trust_env = False  # an environment proxy would connect somewhere the guard did not check
    adapter = GuardedAdapter(
        allow_private=allow_private, resolver=resolver, pool_connections=4, pool_maxsize=pool_size, max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "Bulkapp/1.0"
    return session


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    vendor: str,
    timeout: tuple[float, float],
    idempotent: bool,
    redact: Callable[[str], str],
    **kwargs: Any,
) -> requests.Response:
    """Make one HTTP request; never retries. The errors carry plain sentences; the details go to the log.

    Raises :class:`TransientError` when nothing was sent (name not found, connection refused or timed out,
    TLS handshake failure: all in the same words) and, for ``idempotent`` calls, also when the answer never
    came. For other calls a read timeout or a connection broken after sending raises :class:`OutcomeUnknown`.
    A destination the outbound guard refuses raises :class:`ConfigurationError` on ``base_url``.
    """
    words = {"vendor": vendor}
    try:
        return session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
    except OutboundRefused as exc:
        log.warning("refused to call %s: %s", vendor, exc)
        raise ConfigurationError(refused_reason(exc, vendor), fields=["base_url"]) from exc
    except OutboundUnreachable as exc:
        log.warning("could not reach %s: %s", vendor, exc)
        raise TransientError(UNREACHABLE % words) from exc
    except requests.ConnectTimeout as exc:
        log.warning("could not reach %s: %s", vendor, redact(str(exc)))
        raise TransientError(UNREACHABLE % words) from exc
    except requests.ReadTimeout as exc:
        log.warning("no answer from %s: %s", vendor, redact(str(exc)))
        if idempotent:
            raise TransientError(NO_ANSWER % words) from exc
        raise OutcomeUnknown(MAY_HAVE_ACCEPTED % words) from exc
    except requests.ConnectionError as exc:
        log.warning("connection to %s failed: %s", vendor, redact(str(exc)))
        if failed_before_sending(exc):
            raise TransientError(UNREACHABLE % words) from exc
        if idempotent:
            raise TransientError(BROKE % words) from exc
        raise OutcomeUnknown(BROKE_AFTER_SENDING % words) from exc
    except requests.RequestException as exc:  # a malformed URL and the like: the settings are at fault
        log.warning("could not call %s: %s", vendor, redact(str(exc)))
        raise ConfigurationError(BAD_ADDRESS % words, fields=["base_url"]) from exc


def failed_before_sending(exc: requests.ConnectionError) -> bool:
    if isinstance(exc, requests.exceptions.SSLError):
        return True  # the TLS handshake comes before any byte of the request
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError | NameResolutionError)


def raise_for_http_status(response: requests.Response, *, vendor: str, sending: bool, auth_reason: str) -> None:
    """What a non-200 status means when the vendor says nothing more specific.

    401/403: bad credentials. 429/503: busy, nothing accepted (retry after the vendor's delay). Another
    5xx while sending: the vendor may have accepted the messages, so the outcome is unknown (never
    resend blindly); outside a send it is just transient. Anything else is permanent.
    """
    status = response.status_code
    if status == 200:
        return
    text = response.text[:200]
    if status in (401, 403):
        raise AuthenticationError(auth_reason, code=str(status), vendor_message=text)
    if status in (429, 503):
        raise TransientError(
            f"{vendor} is busy (HTTP {status}); nothing was accepted.",
            code=str(status),
            vendor_message=text,
            retry_after=retry_after_seconds(response),
        )
    if status >= 500 and sending:
        raise OutcomeUnknown(
            f"{vendor} failed with HTTP {status} while handling the request; it may have been accepted.",
            vendor_message=text,
        )
    if status >= 500:
        raise TransientError(f"{vendor} failed with HTTP {status}.", code=str(status), vendor_message=text)
    raise PermanentError(f"{vendor} answered HTTP {status}.", code=str(status), vendor_message=text)


def decode_json(response: requests.Response) -> Any:
    """The answer's JSON, or None when the body is empty or not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def retry_after_seconds(response: requests.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or None."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
