"""The one guard for HTTP calls to addresses a tenant chose (webhook targets, vendor base URLs).

The host is resolved once, every address it resolves to is checked, and the socket connects to the address
that was checked, so a DNS answer that changes between the check and the connection (DNS rebinding) cannot
reach another network. TLS still checks the certificate against the host name (SNI and hostname check use the
name, only the TCP connection uses the checked IP).

Refused unless ``allow_private`` (WEBHOOK_ALLOW_PRIVATE_URLS, development and tests): plain http, any port
other than 443 and 80, and every address that is not globally routable, including the IPv6 forms that embed
an IPv4 address (mapped, compatible, 6to4 2002::/16, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, Teredo).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter

ALLOWED_PORTS = frozenset({443, 80})
Resolver = Callable[[str, int], list[str]]

# Refused whatever ``ipaddress`` says about them: shared address space (CGNAT), IETF protocol assignments,
# benchmarking, the 6to4 relay anycast, and IPv6 prefixes that embed an IPv4 address.
BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "192.0.0.0/24",
        "192.88.99.0/24",
        "198.18.0.0/15",
        "::/96",  # IPv4-compatible (deprecated)
        "::ffff:0:0/96",  # IPv4-mapped
        "64:ff9b::/96",  # NAT64, well-known prefix
        "64:ff9b:1::/48",  # NAT64, local-use prefix
        "2001::/32",  # Teredo
        "2002::/16",  # 6to4
    )
)
# Prefixes whose last 32 bits are an IPv4 address.
_LOW_32_IS_IPV4 = (ipaddress.ip_network("::/96"), ipaddress.ip_network("64:ff9b::/96"))


class OutboundRefused(ValueError):
    """The destination may not be called. ``kind`` says why: ``scheme`` (http without the flag), ``port``,
    ``url`` (no host), or the kind of address (``loopback``, ``private``, ``link-local``, ``multicast``,
    ``unspecified``, ``reserved``); ``address`` is the resolved address at fault (None for a literal host)."""

    def __init__(self, kind: str, host: str, address: str | None = None, port: int | None = None) -> None:
        super().__init__(f"{host}: {kind} destination refused" + (f" ({address})" if address else ""))
        self.kind = kind
        self.host = host
        self.address = address
        self.port = port


class OutboundUnreachable(OSError):
    """The host name did not resolve (possibly for now)."""

    def __init__(self, host: str) -> None:
        super().__init__(f"{host} does not resolve")
        self.host = host


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked destination: connect to ``ip``; the request still names ``host`` (Host header, TLS)."""

    scheme: str
    host: str
    port: int
    ip: str
    literal: bool  # the URL named an IP address, not a host name


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _LOW_32_IS_IPV4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
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
    if ip.is_reserved or not ip.is_global or any(ip in net for net in BLOCKED_NETWORKS if net.version == ip.version):
        return "reserved"
    return None


def refusal_reason(address: str) -> str | None:
    """What kind of address may not be called (``"private"``, ``"loopback"``...), or None for a public one.
    An IPv6 address that embeds an IPv4 one is always refused: as the kind of the embedded address when that
    is not public, else as ``"reserved"``."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    # ::1 and :: fall in ::/96 but are IPv6's own loopback and unspecified addresses, not IPv4-compatible ones.
    if isinstance(ip, ipaddress.IPv6Address) and not (ip.is_loopback or ip.is_unspecified):
        embedded = _embedded_ipv4(ip)
        if embedded is not None or any(ip in net for net in BLOCKED_NETWORKS if net.version == 6):
            return (_kind(embedded) if embedded is not None else None) or "reserved"
    return _kind(ip)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection, in the resolver's order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_destination(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> Destination:
    """Resolve the URL's host once and check the scheme, the port and every address.

    Raises :class:`OutboundRefused` or :class:`OutboundUnreachable`; returns where to connect.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundRefused("url", url[:100]) from None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise OutboundRefused("url", url[:100])
    port = port or (443 if parts.scheme == "https" else 80)
    if not allow_private and parts.scheme != "https":
        raise OutboundRefused("scheme", host, port=port)
    if not allow_private and port not in ALLOWED_PORTS:
        raise OutboundRefused("port", host, port=port)
    return check_host(host, port, allow_private=allow_private, resolver=resolver, scheme=parts.scheme)


def check_host(
    host: str, port: int, *, allow_private: bool, resolver: Resolver | None = None, scheme: str = "tcp"
) -> Destination:
    """Resolve ``host`` once and check every address (the part of :func:`check_destination` that does not
    depend on a URL; the mail server of an SMTP channel uses it with its own ports)."""
    host = host.strip("[]")
    literal = True
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        literal = False
        try:
            addresses = (resolver or system_resolver)(host, port)
        except (OSError, UnicodeError):
            raise OutboundUnreachable(host) from None
    if not addresses:
        raise OutboundUnreachable(host)
    if not allow_private:
        for address in addresses:
            kind = refusal_reason(address)
            if kind:
                raise OutboundRefused(kind, host, None if literal else address, port)
    # IPv4 first: "localhost" often lists ::1 first while local servers listen on 127.0.0.1 only.
    first = sorted(addresses, key=lambda address: ":" in address)[0]
    return Destination(scheme, host, port, first, literal)


def allow_private_default() -> bool:
    """WEBHOOK_ALLOW_PRIVATE_URLS of the current app; False outside an app (the safe answer)."""
    from flask import current_app, has_app_context

    return bool(has_app_context() and current_app.config.get("WEBHOOK_ALLOW_PRIVATE_URLS"))


def host_header(host: str, port: int, scheme: str) -> str:
    name = host if ":" not in host else f"[{host}]"
    return name if port == (443 if scheme == "https" else 80) else f"{name}:{port}"


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter that checks each request's destination (:func:`check_destination`) and connects to the
    checked address while the URL, the Host header, TLS SNI and the certificate check keep the host name.

    A request may carry ``pinned_ip`` (checked by the caller already); otherwise the adapter resolves and
    checks it, with ``allow_private`` (a bool, or a callable asked at each request) and ``resolver``. A checked
    answer is reused for ``cache_seconds`` so keep-alive connections stay useful; it is still the checked
    address that is connected to.
    """

    def __init__(
        self,
        *,
        allow_private: bool | Callable[[], bool] = allow_private_default,
        resolver: Resolver | None = None,
        cache_seconds: float = 30.0,
        **kwargs: Any,
    ) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, bool], tuple[float, Destination]] = {}
        self._cache_lock = threading.Lock()
        super().__init__(**kwargs)

    def destination(self, url: str) -> Destination:
        allow = self._allow_private() if callable(self._allow_private) else self._allow_private
        parts = urlsplit(url)
        key = (f"{parts.scheme}://{parts.netloc}", allow)
        now = time.monotonic()
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached and now - cached[0] < self._cache_seconds:
            return cached[1]
        checked = check_destination(url, allow_private=allow, resolver=self._resolver)
        with self._cache_lock:
            self._cache[key] = (now, checked)
        return checked

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # noqa: ANN001
        if getattr(request, "pinned_ip", None) is None:
            target = self.destination(request.url)
            request.pinned_ip = target.ip
            if "Host" not in request.headers:
                request.headers["Host"] = host_header(target.host, target.port, target.scheme)
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=None)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):  # noqa: ANN001
        pinned = getattr(request, "pinned_ip", None)
        if pinned is None:
            raise OutboundRefused("url", "unchecked")
        host_params, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
        hostname = host_params["host"]
        host_params["host"] = pinned
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return self.poolmanager.connection_from_host(**host_params, pool_kwargs=pool_kwargs)
