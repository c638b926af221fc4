"""SSRF-safe webhook targets: URL rules, address checks, and a pooled HTTP client pinned to the checked IP."""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from bulkapp.i18n import N_, stored_sentences

MAX_URL_LENGTH = 500
STRICT_PORTS = (443, 8443)
USER_AGENT = "Bulkapp-Webhooks/1.0"

# Refused on top of what ``ipaddress`` flags: shared address space (CGNAT), benchmarking, 6to4 relays.
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(net) for net in ("100.64.0.0/10", "198.18.0.0/15", "192.88.99.0/24", "64:ff9b:1::/48")
)


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
    N_("Use the standard https port (443) or 8443."),
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
    if not allow_private and port is not None and port not in STRICT_PORTS:
        raise TargetRefused(ODD_PORT)
    return url


def refusal_reason(address: str) -> str | None:
    """What kind of address may not be called (``"private"``, ``"loopback"``...), or None for a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global or any(ip in net for net in _EXTRA_BLOCKED if ip.version == net.version):
        return "reserved"
    return None


def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(info[4][0] for info in infos))


def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Check the URL and every address its host resolves to; return the target to connect to.

    Raises TargetRefused (bad URL, or any address private/loopback/link-local/multicast/reserved unless
    ``allow_private``) or TargetUnreachable (the name does not resolve).
    """
    url = check_url_shape(url, allow_private=allow_private)
    parts = urlsplit(url)
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = True
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        literal = False
        try:
            addresses = _getaddrinfo(host, port)
        except (OSError, UnicodeError):
            raise TargetUnreachable(DOES_NOT_RESOLVE % {"host": host}) from None
    if not addresses:
        raise TargetUnreachable(DOES_NOT_RESOLVE % {"host": host})
    if not allow_private:
        for address in addresses:
            reason = refusal_reason(address)
            if reason and literal:
                raise TargetRefused(_HOST_IS[reason] % {"host": host})
            if reason:
                raise TargetRefused(_HOST_POINTS_TO[reason] % {"host": host, "address": address})
    return Target(url=url, scheme=parts.scheme, host=host, port=port, ip=addresses[0])


class PinnedAdapter(HTTPAdapter):
    """Connects to ``request.pinned_ip`` (the checked address) while the URL, the Host header, TLS SNI and
    certificate checks keep the host name, so DNS cannot change the destination after the check."""

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        pinned = getattr(request, "pinned_ip", None)
        if pinned is None:
            raise TargetRefused("The address was not checked before connecting.")
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        hostname = host_params["host"]
        host_params["host"] = pinned
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)


_session: requests.Session | None = None
_session_lock = threading.Lock()


def session() -> requests.Session:
    """The process-wide pooled session for webhook deliveries (no proxies from the environment)."""
    global _session
    with _session_lock:
        if _session is None:
            pooled = requests.Session()
            pooled.trust_env = False  # an environment proxy would connect somewhere we did not check
            adapter = PinnedAdapter(pool_connections=32, pool_maxsize=8, max_retries=0)
            pooled.mount("https://", adapter)
            pooled.mount("http://", adapter)
            _session = pooled
        return _session


def post(target: Target, body: bytes, headers: dict[str, str], timeout: tuple[float, float]) -> requests.Response:
    """POST ``body`` to the checked target, redirects not followed; the caller reads and closes the response."""
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    default_port = 443 if target.scheme == "https" else 80
    if target.port != default_port:
        host_header = f"{host_header}:{target.port}"
    request = requests.Request(
        "POST", target.url, data=body, headers={**headers, "Host": host_header, "User-Agent": USER_AGENT}
    )
    prepared = session().prepare_request(request)
    prepared.pinned_ip = target.ip
    return session().send(prepared, timeout=timeout, allow_redirects=False, stream=True)
