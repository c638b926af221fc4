"""The one outbound guard (bulkapp.outbound) as providers and webhooks use it: addresses, ports, DNS rebinding,
TLS against the host name, and connection failures that read the same whatever the port did.

No real DNS: every test that names a host injects a resolver.
"""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3.util.connection

from bulkapp.outbound import OutboundRefused, OutboundUnreachable, check_destination, refusal_reason
from bulkapp.providers.base import ConfigurationError, TransientError, new_session
from bulkapp.providers.onfon import OnfonProvider
from bulkapp.services.tenant_webhooks import http as webhook_http
from bulkapp.services.tenant_webhooks import targets as webhook_targets
from bulkapp.services.tenant_webhooks.http import PreparedDelivery
from tests.simulators.tls import self_signed_certificate

PUBLIC = "93.184.215.14"
CREDENTIALS = {"access_key": "access-1", "api_key": "key-1", "client_id": "c"}
UNREACHABLE = "We could not reach Onfon Media. Check the base URL and try again."


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "reserved"),  # shared address space (CGNAT)
        ("198.18.0.1", "private"),  # benchmarking
        ("192.0.0.8", "reserved"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("64:ff9b::a01:203", "private"),  # NAT64 of 10.1.2.3
        ("64:ff9b::5db8:d70e", "reserved"),  # NAT64 of a public address: refused all the same
        ("64:ff9b:1::1", "reserved"),  # NAT64 local-use prefix
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:5db8:d70e::1", "reserved"),  # 6to4 of a public address
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:93.184.215.14", "reserved"),
        ("::127.0.0.1", "loopback"),  # IPv4-compatible
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private"),  # Teredo (of 192.0.2.45)
        ("fc00::1", "private"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        (PUBLIC, None),
        ("2606:2800:220:1::1", None),
    ],
)
def test_every_special_purpose_address_is_refused(address, kind):
    assert refusal_reason(address) == kind


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://api.example.com:8443/", "port"),
        ("https://api.example.com:22/", "port"),
        ("https://api.example.com:9443/", "port"),
        ("http://api.example.com/", "scheme"),
        ("https://[64:ff9b::7f00:1]/", "loopback"),
        ("https://[2002:7f00:1::]/", "loopback"),
    ],
)
def test_production_allows_only_https_on_the_standard_ports(url, kind):
    with pytest.raises(OutboundRefused) as refused:
        check_destination(url, allow_private=False, resolver=lambda host, port: [PUBLIC])
    assert refused.value.kind == kind


def test_port_443_and_80_of_a_public_address_pass_and_the_flag_allows_the_rest():
    for url in ("https://api.example.com/", "https://api.example.com:443/x", "https://api.example.com:80/"):
        assert check_destination(url, allow_private=False, resolver=lambda host, port: [PUBLIC]).ip == PUBLIC
    loopback = check_destination("http://sim.test:9443/", allow_private=True, resolver=lambda h, p: ["127.0.0.1"])
    assert (loopback.ip, loopback.port, loopback.host) == ("127.0.0.1", 9443, "sim.test")


def test_every_resolved_address_is_checked_and_a_missing_name_is_unreachable():
    with pytest.raises(OutboundRefused) as refused:
        check_destination("https://api.example.com/", allow_private=False, resolver=lambda h, p: [PUBLIC, "10.0.0.1"])
    assert (refused.value.kind, refused.value.address) == ("private", "10.0.0.1")

    def no_such_name(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(OutboundUnreachable):
        check_destination("https://nowhere.example/", allow_private=False, resolver=no_such_name)


# ------------------------------------------------------------------------------------- provider requests


@pytest.fixture
def sockets(monkeypatch):
    """Records where urllib3 opens each socket, and refuses the connection (no packet leaves the machine)."""
    opened = []

    def create_connection(address, *args, **kwargs):
        opened.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return opened


def rebinding_resolver(*answers: str):
    """DNS that answers each look-up with the next address (the last one from then on)."""
    asked = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return [answers[min(len(asked), len(answers)) - 1]]

    resolve.asked = asked
    return resolve


def onfon(resolver, **session_options) -> OnfonProvider:
    session = new_session(allow_private=False, resolver=resolver, **session_options)
    config = {"sender_id": "ACME", "base_url": "https://onfon.example/v1/sms"}
    return OnfonProvider(CREDENTIALS, config, session=session, timeout=(1.0, 1.0))


def test_dns_rebinding_cannot_reach_loopback_through_a_provider(sockets):
    """Public at the check, 127.0.0.1 a moment later: the socket goes to the checked address (or nowhere)."""
    resolver = rebinding_resolver(PUBLIC, "127.0.0.1")
    provider = onfon(resolver)
    for _ in range(2):  # the second request reuses the checked answer: still the public address
        with pytest.raises(TransientError):
            provider.fetch_balance()
    assert sockets == [(PUBLIC, 443), (PUBLIC, 443)]
    assert resolver.asked == ["onfon.example"]  # urllib3 never resolved the name itself

    with pytest.raises(ConfigurationError) as refused:  # a new session looks the name up again: now refused
        onfon(resolver).fetch_balance()
    assert refused.value.fields == ("base_url",)
    assert refused.value.reason == "The address of Onfon Media is not a public internet address. Check the base URL."
    assert resolver.asked == ["onfon.example", "onfon.example"]
    assert sockets == [(PUBLIC, 443), (PUBLIC, 443)]  # nothing was opened towards 127.0.0.1


def test_each_request_is_checked_not_only_when_the_channel_is_saved(sockets):
    provider = onfon(lambda host, port: ["10.0.0.7"])
    with pytest.raises(ConfigurationError, match="not a public internet address"):
        provider.fetch_balance()
    assert sockets == []


def test_a_closed_port_and_a_filtered_port_read_the_same(monkeypatch):
    """Refused at once or never answered: the tenant sees one sentence, so Test connection scans no ports."""

    def attempt(error: BaseException) -> str:
        def create_connection(address, *args, **kwargs):
            raise error

        monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
        with pytest.raises(TransientError) as caught:
            onfon(lambda host, port: [PUBLIC]).fetch_balance()
        return caught.value.describe()

    closed = attempt(ConnectionRefusedError(111, "Connection refused"))
    filtered = attempt(TimeoutError("timed out"))
    unreachable_net = attempt(OSError(101, "Network is unreachable"))
    assert closed == filtered == unreachable_net == UNREACHABLE


def test_a_closed_and_a_filtered_webhook_target_read_the_same(monkeypatch):
    monkeypatch.setattr(webhook_targets, "_getaddrinfo", lambda host, port: [PUBLIC])
    prepared = PreparedDelivery(
        1, "https://hooks.example.com/in", "msg_1", b"{}", ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], False, (1.0, 1.0)
    )
    errors = []
    for error in (ConnectionRefusedError(111, "Connection refused"), TimeoutError("timed out")):

        def create_connection(address, *args, _error=error, **kwargs):
            assert address == (PUBLIC, 443)
            raise _error

        monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
        outcome = webhook_http.send_attempt(prepared)
        assert outcome.status == "failed" and outcome.retryable
        errors.append(outcome.error)
    assert errors[0] == errors[1] == "Could not connect to hooks.example.com:443."


# ------------------------------------------------------------------------------------- TLS with the name


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS server on 127.0.0.1 whose certificate names only ``vendor.test``; yields (port, CA file)."""
    cert_file, key_file = self_signed_certificate(
        tmp_path_factory.mktemp("tls"), "vendor.test", dns_names=("vendor.test",)
    )
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            seen.append((self.headers["Host"], self.path))
            body = b'{"ErrorCode":0,"ErrorDescription":"Success","Data":[{"PluginType":"SMS","Credits":"KSh12.5000"}]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], str(cert_file), seen
    server.shutdown()
    server.server_close()


def tls_onfon(host: str, port: int, ca_file: str) -> OnfonProvider:
    session = new_session(allow_private=True, resolver=lambda name, _port: ["127.0.0.1"])
    session.verify = ca_file
    config = {"sender_id": "ACME", "base_url": f"https://{host}:{port}/v1/sms"}
    return OnfonProvider(CREDENTIALS, config, session=session, timeout=(2.0, 2.0))


def test_tls_checks_the_certificate_against_the_host_name_while_connecting_to_the_checked_ip(tls_server):
    port, ca_file, seen = tls_server
    balance = tls_onfon("vendor.test", port, ca_file).fetch_balance()
    assert balance.raw == "KSh12.5000"
    assert seen[-1][0] == f"vendor.test:{port}" and seen[-1][1].startswith("/v1/sms/Balance")

    with pytest.raises(TransientError) as caught:  # same IP, another name: the certificate does not match
        tls_onfon("impostor.test", port, ca_file).fetch_balance()
    assert caught.value.describe() == UNREACHABLE


def test_an_address_literal_is_checked_too():  # the example: NAT64 of 127.0.0.1
    provider = OnfonProvider(
        CREDENTIALS,
        {"sender_id": "ACME", "base_url": "https://[64:ff9b::7f00:1]/v1/sms"},
        session=new_session(allow_private=False),
    )
    with pytest.raises(ConfigurationError, match="not a public internet address"):
        provider.fetch_balance()
