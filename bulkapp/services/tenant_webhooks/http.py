"""One webhook attempt over HTTP, the Standard Webhooks way: sign, check the target again, POST, classify.

No database here: ``webhooks_out`` prepares the attempt before the call and records the outcome after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

import requests

from bulkapp.i18n import N_, stored_sentences
from bulkapp.models import Event
from bulkapp.parsing import parse_int
from bulkapp.services.tenant_webhooks.targets import TargetRefused, TargetUnreachable, post, resolve_target

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 15.0)  # connect, read (seconds)
MAX_RETRY_AFTER = timedelta(hours=6)  # a receiver's Retry-After is honoured up to this
EXCERPT_BYTES = 1024
EXCERPT_CHARS = 500

# Why an attempt failed: stored in English (WebhookDelivery.error), shown in the reader's language by the delivery
# log (i18n.stored_text). The redirect and 410 sentences come before "answered %(code)s", which would match them too.
# A connection refused and one that timed out read the same (NO_CONNECTION), so the log cannot be used to tell
# which ports of a host answer; "Could not connect within" is kept only so that older rows still translate.
(
    TLS_FAILED,
    _NO_CONNECTION_WITHIN,
    NO_ANSWER_WITHIN,
    NO_CONNECTION,
    GONE,
    REDIRECT_TO,
    REDIRECT,
    ANSWERED,
) = stored_sentences(
    N_("The TLS handshake failed (check the server's certificate)."),
    N_("Could not connect within %(seconds)s s."),
    N_("No answer within %(seconds)s s."),
    N_("Could not connect to %(host)s:%(port)s."),
    N_("The endpoint answered 410 Gone, so webhooks were turned off."),
    N_("The endpoint answered %(code)s (a redirect to %(location)s); redirects are not followed."),
    N_("The endpoint answered %(code)s (a redirect); redirects are not followed."),
    N_("The endpoint answered %(code)s."),
)


@dataclass(frozen=True)
class PreparedDelivery:
    """Everything one HTTP attempt needs, read from the database before the call."""

    delivery_id: int
    url: str
    webhook_id: str
    body: bytes
    secrets: list[str] = field(repr=False)
    allow_private: bool
    timeout: tuple[float, float]


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: ``succeeded``, ``failed`` (``retryable`` or not) or ``refused`` (the target is
    not allowed). ``gone`` is a 410 answer, which turns the tenant's webhooks off."""

    status: str
    status_code: int | None = None
    response_ms: int | None = None
    excerpt: str | None = None
    error: str | None = None
    retryable: bool = False
    retry_after: timedelta | None = None
    gone: bool = False


# ------------------------------------------------------------------------------------------ signing


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`` keyed by the secret's decoded bytes."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def event_body(event: Event) -> bytes:
    """The JSON body, identical for every attempt of the event."""
    payload = {"type": event.type, "timestamp": event.created_at.isoformat(), "data": event.data or {}}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(prepared: PreparedDelivery, timestamp: int) -> dict[str, str]:
    signatures = " ".join(sign(secret, prepared.webhook_id, timestamp, prepared.body) for secret in prepared.secrets)
    return {
        "Content-Type": "application/json",
        "webhook-id": prepared.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }


# ------------------------------------------------------------------------------------------ one HTTP call


def send_attempt(prepared: PreparedDelivery) -> Outcome:
    """Check the target again (every resolved address) and POST the signed event; redirects not followed."""
    try:
        target = resolve_target(prepared.url, allow_private=prepared.allow_private)
    except TargetRefused as exc:
        return Outcome("refused", error=str(exc))
    except TargetUnreachable as exc:
        return Outcome("failed", error=str(exc), retryable=True)
    started = time.monotonic()
    try:
        response = post(target, prepared.body, signed_headers(prepared, int(time.time())), prepared.timeout)
    except requests.exceptions.SSLError:
        return Outcome("failed", error=TLS_FAILED, retryable=True)
    except requests.exceptions.ConnectTimeout as exc:  # the same words as a refused connection: see NO_CONNECTION
        log.info("webhook delivery %s: %r", prepared.delivery_id, exc)
        return Outcome("failed", error=NO_CONNECTION % {"host": target.host, "port": target.port}, retryable=True)
    except requests.exceptions.Timeout:
        return Outcome("failed", error=NO_ANSWER_WITHIN % {"seconds": f"{prepared.timeout[1]:g}"}, retryable=True)
    except requests.exceptions.RequestException as exc:
        log.info("webhook delivery %s: %r", prepared.delivery_id, exc)
        return Outcome("failed", error=NO_CONNECTION % {"host": target.host, "port": target.port}, retryable=True)
    try:
        excerpt = _excerpt(response)
    finally:
        response.close()
    elapsed = int((time.monotonic() - started) * 1000)
    return _classify(response, elapsed, excerpt)


def _excerpt(response: requests.Response) -> str | None:
    try:
        raw = response.raw.read(EXCERPT_BYTES, decode_content=True)
    except Exception:  # a broken or slow body does not change the status code we already have
        return None
    text = raw.decode("utf-8", errors="replace").strip()
    return text[:EXCERPT_CHARS] or None


def _classify(response: requests.Response, elapsed_ms: int, excerpt: str | None) -> Outcome:
    code = response.status_code
    common = {"status_code": code, "response_ms": elapsed_ms, "excerpt": excerpt}
    if 200 <= code < 300:
        return Outcome("succeeded", **common)
    if code == 410:
        return Outcome("failed", error=GONE, gone=True, **common)
    if 300 <= code < 400:
        where = response.headers.get("Location", "")[:200]
        error = REDIRECT_TO % {"code": code, "location": where} if where else REDIRECT % {"code": code}
        return Outcome("failed", error=error, retryable=True, **common)
    return Outcome(
        "failed",
        error=ANSWERED % {"code": code},
        retryable=True,
        retry_after=_retry_after(response) if code in (429, 503) else None,
        **common,
    )


def _retry_after(response: requests.Response) -> timedelta | None:
    seconds = parse_int(response.headers.get("Retry-After") or "", 0, int(MAX_RETRY_AFTER.total_seconds()) * 1000)
    if seconds is None:  # an HTTP date, or nothing a timedelta can hold
        return None
    return min(timedelta(seconds=seconds), MAX_RETRY_AFTER)
