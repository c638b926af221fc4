"""SSRF-safe webhook targets: URL rules and their sentences, on top of the one outbound guard
(:mod:`bulkapp.outbound`: address checks, and a pooled HTTP client pinned to the checked IP)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from bulkapp.i18n import N_, stored_sentences
from bulkapp.outbound import (
    ALLOWED_PORTS,
    GuardedAdapter,
    OutboundRefused,
    OutboundUnreachable,
    check_destination,
    host_header,
    system_resolver,
)

MAX_URL_LENGTH = 500
USER_AGENT = "Bulkapp-Webhooks/1.0"

# Why a URL is refused: English in ``str(exc)`` (a delivery attempt stores it), shown in the reader's language
# by the settings page and the delivery log (i18n.stored_text).
(
    NO_URL,
    URL_TOO_LONG,
    NOT_A_URL,
    NOT_A_FULL_URL,
    NOT_HTTPS,
    HAS_CREDENTIALS,
    HAS_FRAGMENT,
    HAS_SPACES,
    ODD_PORT,
    DOES_NOT_RESOLVE,
) = stored_sentences(
    N_("Enter the URL we should POST events to."),
    N_("The URL is too long (at most %(limit)s characters)."),
    N_("That is not a valid URL."),
    N_("Enter a full URL starting with https://."),
    N_("The URL must start with https:// (events carry your customers' data)."),
    N_("Leave the user name and password out of the URL."),
    N_("Leave the #fragment out of the URL."),
    N_("The URL must not contain spaces."),
    N_("Use the standard https port (443)."),
    N_("The host name %(host)s does not resolve."),
)
# One whole sentence per kind of address (refusal_reason), so that each reads naturally in Swahili too.
_HOST_IS = {
    "loopback": N_("%(host)s is a loopback address; webhooks only go to public servers."),
    "link-local": N_("%(host)s is a link-local address; webhooks only go to public servers."),
    "multicast": N_("%(host)s is a multicast address; webhooks only go to public servers."),
    "unspecified": N_("%(host)s is an unspecified address; webhooks only go to public servers."),
    "private": N_("%(host)s is a private address; webhooks only go to public servers."),
    "reserved": N_("%(host)s is a reserved address; webhooks only go to public servers."),
}
_HOST_POINTS_TO = {
    "loopback": N_("%(host)s points to a loopback address (%(address)s); webhooks only go to public servers."),
    "link-local": N_("%(host)s points to a link-local address (%(address)s); webhooks only go to public servers."),
    "multicast": N_("%(host)s points to a multicast address (%(address)s); webhooks only go to public servers."),
    "unspecified": N_("%(host)s points to an unspecified address (%(address)s); webhooks only go to public servers."),
    "private": N_("%(host)s points to a private address (%(address)s); webhooks only go to public servers."),
    "reserved": N_("%(host)s points to a reserved address (%(address)s); webhooks only go to public servers."),
}
stored_sentences(*_HOST_IS.values(), *_HOST_POINTS_TO.values())


class TargetRefused(ValueError):
    """The URL may not be called: ``str(exc)`` says why, in English words for the tenant (a stored sentence)."""


class TargetUnreachable(Exception):
    """The host name did not resolve (may be temporary, so the delivery is retried)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where the socket connects (``ip``) and what the request names (``host``, ``port``)."""

    url: str
    scheme: str
    host: str
    port: int
    ip: str


def check_url_shape(url: str, *, allow_private: bool) -> str:
    """Validate the URL without touching the network; return it trimmed. Raises TargetRefused."""
    url = (url or "").strip()
    if not url:
        raise TargetRefused(NO_URL)
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(URL_TOO_LONG % {"limit": MAX_URL_LENGTH})
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused(NOT_A_URL) from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused(NOT_A_FULL_URL)
    if parts.scheme != "https" and not allow_private:
        raise TargetRefused(NOT_HTTPS)
    if parts.username is not None or parts.password is not None:
        raise TargetRefused(HAS_CREDENTIALS)
    if parts.fragment:
        raise TargetRefused(HAS_FRAGMENT)
    if any(ch.isspace() for ch in url):
        raise TargetRefused(HAS_SPACES)
    if not allow_private and port is not None and port not in ALLOWED_PORTS:
        raise TargetRefused(ODD_PORT)
    return url


def _getaddrinfo(host: str, port: int) -> list[str]:
    return system_resolver(host, port)  # a seam: a test stands in for DNS here


def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Check the URL and every address its host resolves to (:func:`bulkapp.outbound.check_destination`);
    return the target to connect to.

    Raises TargetRefused (bad URL, or any address private/loopback/link-local/multicast/reserved unless
    ``allow_private``) or TargetUnreachable (the name does not resolve).
    """
    url = check_url_shape(url, allow_private=allow_private)
    try:
        checked = check_destination(url, allow_private=allow_private, resolver=_getaddrinfo)
    except OutboundUnreachable as exc:
        raise TargetUnreachable(DOES_NOT_RESOLVE % {"host": exc.host}) from None
    except OutboundRefused as exc:
        if exc.kind not in _HOST_IS:
            raise TargetRefused(ODD_PORT if exc.kind == "port" else NOT_A_FULL_URL) from None
        if exc.address is None:
            raise TargetRefused(_HOST_IS[exc.kind] % {"host": exc.host}) from None
        raise TargetRefused(_HOST_POINTS_TO[exc.kind] % {"host": exc.host, "address": exc.address}) from None
    return Target(url=url, scheme=checked.scheme, host=checked.host, port=checked.port, ip=checked.ip)


_session: requests.Session | None = None
_session_lock = threading.Lock()


def session() -> requests.Session:
    """The process-wide pooled session for webhook deliveries (no proxies from the environment)."""
    global _session
    with _session_lock:
        if _session is None:
            pooled = requests.Session()
            pooled.trust_env = False  # an environment proxy would connect somewhere we did not check
            adapter = GuardedAdapter(allow_private=False, pool_connections=32, pool_maxsize=8, max_retries=0)
            pooled.mount("https://", adapter)
            pooled.mount("http://", adapter)
            _session = pooled
        return _session


def post(target: Target, body: bytes, headers: dict[str, str], timeout: tuple[float, float]) -> requests.Response:
    """POST ``body`` to the checked target, redirects not followed; the caller reads and closes the response."""
    host = host_header(target.host, target.port, target.scheme)
    request = requests.Request(
        "POST", target.url, data=body, headers={**headers, "Host": host, "User-Agent": USER_AGENT}
    )
    prepared = session().prepare_request(request)
    prepared.pinned_ip = target.ip
    return session().send(prepared, timeout=timeout, allow_redirects=False, stream=True)
