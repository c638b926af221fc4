"""Channel settings service: validation, encryption at rest, the one-active rule, webhook URLs, connection tests
and balance reads against the vendor simulators over real loopback sockets."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.models import Channel, Client
from bulkapp.providers.base import ConnectionCheck
from bulkapp.services.channels import checks
from bulkapp.services.channels import settings as svc
from bulkapp.services.channels import validation as fields
from tests.simulators.onfon import OnfonSimulator
from tests.simulators.twilio import TwilioSimulator
from tests.simulators.ultramsg import UltraMsgSimulator
from tests.simulators.whatsapp_cloud import WhatsAppCloudSimulator


@pytest.fixture
def onfon():
    with OnfonSimulator(balance=Decimal("1234.5600")) as sim:
        yield sim


def onfon_values(sim: OnfonSimulator, **extra) -> dict[str, str]:
    return {**sim.credentials, "sender_id": "ACME", "base_url": f"{sim.url}/v1/sms", **extra}


def add_onfon(tenant, sim, **extra) -> Channel:
    channel, _off = svc.create_channel(tenant.id, "onfon", onfon_values(sim, **extra), allow_private_urls=True)
    db.session.commit()
    return channel


def sandbox_of(tenant) -> Channel:
    return db.session.scalar(sa.select(Channel).where(Channel.client_id == tenant.id, Channel.provider == "sandbox"))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------- creating


def test_credentials_are_encrypted_at_rest_and_read_back(tenant, onfon):
    channel = add_onfon(tenant, onfon, api_key="api-key-TOP-SECRET-42")

    raw = db.session.execute(
        sa.text("SELECT credentials, config FROM channels WHERE id = :id"), {"id": channel.id}
    ).one()
    assert "api-key-TOP-SECRET-42" not in raw.credentials and onfon.access_key not in raw.credentials
    assert raw.credentials.startswith("gAAAAA")  # a Fernet token
    assert "TOP-SECRET" not in str(raw.config)
    db.session.expire_all()
    stored = db.session.get(Channel, channel.id)
    assert stored.credentials == {**onfon.credentials, "api_key": "api-key-TOP-SECRET-42"}
    assert stored.config == {"sender_id": "ACME", "base_url": f"{onfon.url}/v1/sms"}
    assert stored.name == "sms" and stored.active and len(stored.webhook_token) >= 32


def test_one_active_channel_per_kind_and_the_sandbox_is_left_alone(tenant, onfon):
    first = add_onfon(tenant, onfon)
    second, switched_off = svc.create_channel(
        tenant.id, "onfon", onfon_values(onfon, client_id="second-account"), allow_private_urls=True
    )
    db.session.commit()

    assert switched_off == ["Onfon Media"]
    db.session.expire_all()
    assert db.session.get(Channel, first.id).active is False
    assert db.session.get(Channel, second.id).active is True
    assert sandbox_of(tenant).active is True  # the test-mode channel takes no part in the rule

    notes = svc.set_active(tenant.id, first.id, True)
    db.session.commit()
    assert notes == ["Onfon Media is now your active SMS channel. Switched off: Onfon Media."]
    db.session.expire_all()
    assert [db.session.get(Channel, c.id).active for c in (first, second)] == [True, False]
    assert svc.set_active(tenant.id, first.id, True) == []  # a double click changes nothing


def test_inactive_channel_can_be_added_without_touching_the_active_one(tenant, onfon):
    active = add_onfon(tenant, onfon)
    idle, off = svc.create_channel(
        tenant.id, "onfon", onfon_values(onfon, client_id="spare"), active=False, allow_private_urls=True
    )
    assert off == [] and idle.active is False and db.session.get(Channel, active.id).active is True


def test_other_kinds_do_not_switch_sms_off(tenant, onfon):
    sms = add_onfon(tenant, onfon)
    with UltraMsgSimulator() as sim:
        whatsapp, off = svc.create_channel(
            tenant.id, "ultramsg", {**sim.credentials, "base_url": sim.url}, allow_private_urls=True
        )
    assert off == [] and whatsapp.name == "whatsapp" and db.session.get(Channel, sms.id).active


def test_a_second_channel_for_the_same_account_is_refused(tenant, onfon):
    add_onfon(tenant, onfon)
    with pytest.raises(svc.ChannelSettingsError) as caught:
        svc.create_channel(tenant.id, "onfon", onfon_values(onfon), allow_private_urls=True)
    assert "already set up" in caught.value.message
    assert db.session.scalar(sa.select(sa.func.count(Channel.id)).where(Channel.provider == "onfon")) == 1


def test_sandbox_and_unknown_providers_cannot_be_added(tenant):
    for provider in ("sandbox", "nope", ""):
        with pytest.raises(svc.ChannelSettingsError) as caught:
            svc.create_channel(tenant.id, provider, {})
        assert "provider" in caught.value.errors


# ----------------------------------------------------------------------------------------- validation


def test_missing_required_fields_are_named(tenant):
    with pytest.raises(svc.ChannelSettingsError) as caught:
        svc.create_channel(tenant.id, "onfon", {"access_key": "  ", "client_id": "x"})
    assert caught.value.errors == {
        "access_key": "Access key is required.",
        "api_key": "API key is required.",
        "sender_id": "Sender ID (default, promotional) is required.",
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sender_id", "WAY-TOO-LONG-SENDER", "sender ID is up to 11"),
        ("sender_id", "Bad<script>", "sender ID is up to 11"),
        ("transactional_sender_id", "12", "sender ID is up to 11"),
        ("batch_size", "ten", "whole number from 1 to 1000"),
        ("batch_size", "0", "whole number from 1 to 1000"),
        ("batch_size", "99999999999999", "whole number from 1 to 1000"),
        ("batch_size", "-5", "whole number from 1 to 1000"),
        ("base_url", "ftp://api.example.com", "starting with https://"),
        ("base_url", "not a url", "starting with https://"),
        ("base_url", "http://93.184.215.14/v1/sms", "Use an https:// address"),
        ("base_url", "https://127.0.0.1:8443/v1/sms", "standard https port (443)"),
        ("base_url", "https://93.184.215.14:8443/v1/sms", "standard https port (443)"),
        ("base_url", "https://93.184.215.14:22/", "standard https port (443)"),
        ("base_url", "https://[64:ff9b::7f00:1]/v1/sms", "private network"),  # NAT64 of 127.0.0.1
        ("base_url", "https://[64:ff9b::5db8:d70e]/v1/sms", "private network"),  # NAT64 of a public address
        ("base_url", "https://[64:ff9b:1::1]/v1/sms", "private network"),
        ("base_url", "https://[2002:7f00:1::]/v1/sms", "private network"),  # 6to4 of 127.0.0.1
        ("base_url", "https://[::ffff:127.0.0.1]/v1/sms", "private network"),
        ("base_url", "https://[::ffff:5db8:d70e]/v1/sms", "private network"),  # mapped, even of a public address
        ("base_url", "https://[::7f00:1]/v1/sms", "private network"),  # IPv4-compatible
        ("base_url", "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "private network"),  # Teredo
        ("base_url", "https://100.64.0.1/v1/sms", "private network"),  # shared address space (CGNAT)
        ("base_url", "https://10.1.2.3/v1/sms", "private network"),
        ("base_url", "https://169.254.169.254/latest", "private network"),
        ("base_url", "https://[::1]/v1", "private network"),
        ("base_url", "https://user:pw@api.example.com/", "user names and passwords"),
        ("base_url", "https://api.example.com:99999/", "port"),
        ("base_url", "https://no-such-host.invalid/v1", "could not find"),
        ("api_key", "k" * 501, "at most 500 characters"),
    ],
)
def test_bad_values_get_a_sentence_on_their_field(tenant, field, value, message):
    values = {"access_key": "a", "api_key": "b", "client_id": "c", "sender_id": "ACME", field: value}
    with pytest.raises(svc.ChannelSettingsError) as caught:
        svc.create_channel(tenant.id, "onfon", values)
    assert message in caught.value.errors[field]
    assert db.session.scalar(sa.select(sa.func.count(Channel.id)).where(Channel.provider == "onfon")) == 0


def test_private_addresses_are_allowed_only_with_the_development_flag(tenant, onfon):
    values = onfon_values(onfon)
    with pytest.raises(svc.ChannelSettingsError):
        svc.create_channel(tenant.id, "onfon", values, allow_private_urls=False)
    channel, _ = svc.create_channel(tenant.id, "onfon", values, allow_private_urls=True)
    assert channel.config["base_url"] == f"{onfon.url}/v1/sms"


def test_the_vendor_default_url_is_accepted_without_a_lookup(tenant):
    values = {"access_key": "a", "api_key": "b", "client_id": "c", "sender_id": "ACME"}
    channel, _ = svc.create_channel(tenant.id, "onfon", {**values, "base_url": "https://api.onfonmedia.co.ke/v1/sms/"})
    assert channel.config["base_url"] == "https://api.onfonmedia.co.ke/v1/sms"


def test_twilio_rules_and_the_adapters_own_check(tenant):
    sid = "AC" + "1" * 32
    with pytest.raises(svc.ChannelSettingsError) as caught:
        svc.create_channel(tenant.id, "twilio", {"account_sid": "AC/../x", "auth_token": "t", "from_number": "+1500"})
    assert "AC followed by 32" in caught.value.errors["account_sid"]
    with pytest.raises(svc.ChannelSettingsError) as caught:
        svc.create_channel(tenant.id, "twilio", {"account_sid": sid, "auth_token": "t"})
    assert "From number or a Messaging Service SID" in caught.value.errors["from_number"]
    assert "messaging_service_sid" in caught.value.errors


def test_other_vendor_fields_are_checked(tenant):
    cases = [
        ("ultramsg", {"instance_id": "inst/../1", "token": "t"}, "instance_id"),
        ("ultramsg", {"instance_id": "instance1", "token": "t", "priority": "11"}, "priority"),
        ("whatsapp_cloud", {"access_token": "a", "app_secret": "s", "phone_number_id": "12ab"}, "phone_number_id"),
        (
            "whatsapp_cloud",
            {"access_token": "a", "app_secret": "s", "phone_number_id": "12345", "api_version": "23"},
            "api_version",
        ),
        ("smtp", {"host": "smtp.example.com", "from_address": "not-an-email"}, "from_address"),
        ("smtp", {"host": "smtp.example.com", "from_address": "a@example.com", "security": "tls9"}, "security"),
        ("smtp", {"host": "smtp.example.com", "from_address": "a@example.com", "port": "70000"}, "port"),
        ("smtp", {"host": "127.0.0.1", "from_address": "a@example.com"}, "host"),
        ("smtp", {"host": "[64:ff9b::7f00:1]", "from_address": "a@example.com"}, "host"),  # NAT64 of 127.0.0.1
        ("smtp", {"host": "93.184.215.14", "from_address": "a@example.com", "port": "22"}, "port"),  # no port scans
        ("smtp", {"host": "bad host!", "from_address": "a@example.com"}, "host"),
        ("smtp", {"host": "no-such-host.invalid", "from_address": "a@example.com"}, "host"),  # does not resolve
        ("mobitech", {"api_key": "k", "sender_name": "TOO-LONG-NAME-HERE"}, "sender_name"),
    ]
    for provider, values, field in cases:
        with pytest.raises(svc.ChannelSettingsError) as caught:
            svc.create_channel(tenant.id, provider, values)
        assert field in caught.value.errors, (provider, values, caught.value.errors)


def test_server_file_paths_are_not_tenant_settings_and_survive_an_edit(tenant):
    assert "ca_file" not in [f.name for f in fields.form_fields("smtp")]
    values = {"host": "smtp.example.com", "from_address": "a@example.com", "ca_file": "/etc/shadow"}
    channel, _ = svc.create_channel(tenant.id, "smtp", values, allow_private_urls=True)
    assert "ca_file" not in channel.config
    channel.config = {**channel.config, "ca_file": "/etc/ssl/private-ca.pem"}  # set by an operator
    db.session.commit()
    svc.update_channel(
        tenant.id, channel.id, {**values, "ca_file": "/etc/passwd", "from_name": "Shop"}, allow_private_urls=True
    )
    assert channel.config["ca_file"] == "/etc/ssl/private-ca.pem" and channel.config["from_name"] == "Shop"


def test_sms_senders_promotional_and_transactional(tenant, onfon):
    channel = add_onfon(tenant, onfon, transactional_sender_id="ACME-OTP")
    assert channel.config["sender_id"] == "ACME" and channel.config["transactional_sender_id"] == "ACME-OTP"
    names = [f.name for f in fields.form_fields("onfon")]
    assert names.index("transactional_sender_id") == names.index("sender_id") + 1
    assert "transactional_sender_id" not in [f.name for f in fields.form_fields("ultramsg")]


def test_mobitech_sender_is_mirrored_as_the_default_sender_id(tenant):
    channel, _ = svc.create_channel(tenant.id, "mobitech", {"api_key": "k" * 64, "sender_name": "23107"})
    assert channel.config["sender_name"] == "23107" and channel.config["sender_id"] == "23107"


# -------------------------------------------------------------------------------------------- editing


def test_blank_secrets_keep_the_saved_ones_and_new_ones_replace_them(tenant, onfon):
    channel = add_onfon(tenant, onfon)
    checks.record_test_result(tenant.id, channel.id, ConnectionCheck(True, "Connected"))
    values = {"access_key": "", "api_key": "", "client_id": onfon.client_id, "sender_id": "BULKAPP"}
    svc.update_channel(tenant.id, channel.id, {**values, "base_url": f"{onfon.url}/v1/sms"}, allow_private_urls=True)
    db.session.commit()
    db.session.expire_all()
    saved = db.session.get(Channel, channel.id)
    assert saved.credentials == onfon.credentials
    assert saved.config["sender_id"] == "BULKAPP"
    assert saved.config["last_test"]["message"] == "Connected"  # only the sender changed: the test still holds

    values["api_key"] = "rotated-key"
    svc.update_channel(tenant.id, channel.id, {**values, "base_url": f"{onfon.url}/v1/sms"}, allow_private_urls=True)
    db.session.commit()
    db.session.expire_all()
    saved = db.session.get(Channel, channel.id)
    assert saved.credentials["api_key"] == "rotated-key" and saved.credentials["access_key"] == onfon.access_key
    assert "last_test" not in saved.config  # new credentials: the old result no longer says anything


def test_update_with_errors_changes_nothing(tenant, onfon):
    channel = add_onfon(tenant, onfon)
    with pytest.raises(svc.ChannelSettingsError):
        svc.update_channel(tenant.id, channel.id, {"client_id": "", "sender_id": "ACME"}, allow_private_urls=True)
    db.session.rollback()
    assert db.session.get(Channel, channel.id).credentials == onfon.credentials


def test_sandbox_can_be_edited_but_not_switched_off_or_deleted(tenant):
    sandbox = sandbox_of(tenant)
    svc.update_channel(tenant.id, sandbox.id, {"sender_id": "MYSHOP", "transactional_sender_id": "MYSHOP-TX"})
    assert sandbox.config["sender_id"] == "MYSHOP" and sandbox.config["transactional_sender_id"] == "MYSHOP-TX"
    for action in (
        lambda: svc.set_active(tenant.id, sandbox.id, False),
        lambda: svc.set_active(tenant.id, sandbox.id, True),
        lambda: svc.delete_channel(tenant.id, sandbox.id),
    ):
        with pytest.raises(svc.ChannelActionRefused):
            action()
    db.session.rollback()
    assert sandbox_of(tenant).active is True


def test_disable_and_delete_and_the_live_warning(tenant, onfon):
    channel = add_onfon(tenant, onfon)
    assert svc.kinds_without_active(tenant.id) == []  # test mode: everything goes to the sandbox
    db.session.get(Client, tenant.id).is_test_mode = False
    assert svc.kinds_without_active(tenant.id) == []
    assert svc.set_active(tenant.id, channel.id, False) == ["Onfon Media is switched off."]
    assert svc.set_active(tenant.id, channel.id, False) == []
    assert svc.kinds_without_active(tenant.id) == ["SMS"]
    assert svc.delete_channel(tenant.id, channel.id) == ["Onfon Media channel deleted."]
    db.session.commit()
    assert db.session.get(Channel, channel.id) is None
    assert svc.kinds_without_active(tenant.id) == ["SMS"]


def test_another_tenants_channel_is_not_found(tenant, other_tenant, onfon):
    channel = add_onfon(tenant, onfon)
    for action in (
        lambda: svc.update_channel(other_tenant.id, channel.id, {"sender_id": "X"}),
        lambda: svc.set_active(other_tenant.id, channel.id, False),
        lambda: svc.delete_channel(other_tenant.id, channel.id),
        lambda: svc.rotate_webhook_token(other_tenant.id, channel.id),
        lambda: checks.snapshot(other_tenant.id, channel.id),
        lambda: checks.record_test_result(other_tenant.id, channel.id, ConnectionCheck(True, "x")),
    ):
        with pytest.raises(svc.ChannelNotFound):
            action()
    db.session.rollback()
    assert db.session.get(Channel, channel.id).active is True


def test_rotating_the_token_changes_the_urls(tenant, onfon):
    channel = add_onfon(tenant, onfon)
    before = svc.webhook_urls(channel, "https://app.example")
    svc.rotate_webhook_token(tenant.id, channel.id)
    after = svc.webhook_urls(channel, "https://app.example")
    assert before != after and channel.webhook_token in after[0][1]


# ------------------------------------------------------------------------------------------ webhook URLs


def test_webhook_urls_for_every_vendor():
    def channel(provider: str, token: str | None = "tok_EN-123") -> Channel:
        return Channel(provider=provider, webhook_token=token)

    base = "https://bulk.example.co.ke/"
    assert svc.webhook_urls(channel("onfon"), base) == [
        ("Incoming SMS URL", "https://bulk.example.co.ke/webhooks/onfon/inbound?token=tok_EN-123"),
        ("Delivery report (DLR) URL", "https://bulk.example.co.ke/webhooks/onfon/dlr?token=tok_EN-123"),
    ]
    assert svc.webhook_urls(channel("twilio"), base) == [
        ("Incoming messages (A message comes in)", "https://bulk.example.co.ke/webhooks/twilio/inbound"),
        ("Status callback URL", "https://bulk.example.co.ke/webhooks/twilio/status"),
    ]
    assert svc.webhook_urls(channel("whatsapp_cloud"), base) == [
        ("Callback URL", "https://bulk.example.co.ke/webhooks/whatsapp"),
        ("Verify token", "tok_EN-123"),
    ]
    assert svc.webhook_urls(channel("ultramsg"), base) == [
        ("Webhook URL", "https://bulk.example.co.ke/webhooks/ultramsg?token=tok_EN-123")
    ]
    assert svc.webhook_urls(channel("mobitech"), base) == [
        ("Delivery report (DLR) URL", "https://bulk.example.co.ke/webhooks/mobitech/dlr?token=tok_EN-123")
    ]
    assert svc.webhook_urls(channel("sandbox"), base) == []
    assert svc.webhook_urls(channel("smtp"), base) == []
    assert svc.webhook_urls(channel("onfon", token=None), base) == []


def test_webhook_urls_match_the_webhook_routes(app):
    """The paths we tell tenants to paste are the ones the webhook blueprint serves."""
    served = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/webhooks/")}
    for provider in ("onfon", "twilio", "whatsapp_cloud", "ultramsg", "mobitech"):
        for label, url in svc.webhook_urls(Channel(provider=provider, webhook_token="t"), "https://x.example"):
            if url.startswith("https://"):
                path = url.removeprefix("https://x.example").split("?")[0]
                assert path in served, f"{provider} {label}: {path} is not a route"


# ------------------------------------------------------------------------------------- connection tests


def test_connection_test_against_the_onfon_simulator(tenant, onfon):
    channel = add_onfon(tenant, onfon)
    check = checks.check_connection(checks.snapshot(tenant.id, channel.id))
    assert check == ConnectionCheck(True, "Connected to Onfon. Balance: KSh1234.5600")

    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    checks.record_test_result(tenant.id, channel.id, check, at=at)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Channel, channel.id).config["last_test"] == {
        "ok": True,
        "message": "Connected to Onfon. Balance: KSh1234.5600",
        "at": "2026-03-01T09:30:00+00:00",
    }


def test_wrong_credentials_show_the_vendors_own_words(tenant, onfon):
    channel = add_onfon(tenant, onfon, api_key="wrong-key")
    check = checks.check_connection(checks.snapshot(tenant.id, channel.id))
    assert check.ok is False
    assert "Onfon rejected the API credentials" in check.message and "Invalid api credential" in check.message


def test_unreachable_vendor_message_never_shows_the_secrets(tenant):
    port = closed_port()
    values = {"access_key": "ACCESS-xyz-789", "api_key": "API/KEY+secret 42", "client_id": "c", "sender_id": "ACME"}
    channel, _ = svc.create_channel(
        tenant.id, "onfon", {**values, "base_url": f"http://127.0.0.1:{port}/v1/sms"}, allow_private_urls=True
    )
    snap = checks.snapshot(tenant.id, channel.id)
    check = checks.check_connection(snap)
    balance = checks.fetch_channel_balance(snap)
    for message in (check.message, balance.message):  # a sentence, no "HTTPConnectionPool(...)", no secret
        assert message == "We could not reach Onfon Media. Check the base URL and try again."
    assert check.ok is False and balance.ok is False


def test_connection_tests_of_the_other_vendors():
    with TwilioSimulator() as sim:
        ok = checks.check_connection(_snap("twilio", sim.credentials, sim.config()))
        bad = checks.check_connection(_snap("twilio", {**sim.credentials, "auth_token": "nope"}, sim.config()))
    assert ok.ok and "Connected to Twilio account" in ok.message
    assert not bad.ok and ("Authenticate" in bad.message or "20003" in bad.message)
    with WhatsAppCloudSimulator() as sim:
        ok = checks.check_connection(_snap("whatsapp_cloud", sim.credentials, sim.config()))
        bad = checks.check_connection(_snap("whatsapp_cloud", {**sim.credentials, "access_token": "x"}, sim.config()))
    assert ok.ok and not bad.ok
    with UltraMsgSimulator() as sim:
        ok = checks.check_connection(_snap("ultramsg", sim.credentials, sim.config()))
        bad = checks.check_connection(_snap("ultramsg", {**sim.credentials, "token": "wrong"}, sim.config()))
    assert ok.ok and not bad.ok and "Wrong token" in bad.message
    assert checks.check_connection(_snap("sandbox", {}, {})).ok


def test_a_channel_with_broken_settings_fails_the_test_in_words():
    check = checks.check_connection(_snap("onfon", {"access_key": "a"}, {"sender_id": "ACME"}))
    assert check == ConnectionCheck(False, "Onfon Media needs: API key, Client ID.")


def _snap(provider: str, credentials: dict, config: dict) -> checks.ChannelSnapshot:
    kind = "whatsapp" if provider in ("ultramsg", "whatsapp_cloud") else "sms"
    return checks.ChannelSnapshot(1, 1, provider, kind, True, credentials, config)


# ----------------------------------------------------------------------------------------------- balances


def test_balance_sync_updates_the_tenant_exactly(tenant, onfon):
    channel = add_onfon(tenant, onfon)
    result = checks.fetch_channel_balance(checks.snapshot(tenant.id, channel.id))
    assert result == checks.BalanceResult(True, "Balance: KSh1234.5600", Decimal("1234.5600"), "KES", "KSh1234.5600")
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    checks.record_balance_result(tenant.id, channel.id, result, at=at)
    db.session.commit()
    db.session.expire_all()
    client = db.session.get(Client, tenant.id)
    assert client.onfon_balance == Decimal("1234.5600") and client.onfon_last_sync == at
    config = db.session.get(Channel, channel.id).config
    assert config["balance"] == {"amount": "1234.5600", "raw": "KSh1234.5600", "currency": "KES", "at": at.isoformat()}
    assert config["last_sync"]["ok"] is True


def test_an_older_result_never_overwrites_a_newer_sync(tenant, onfon):
    channel = add_onfon(tenant, onfon)
    now = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    checks.record_balance_result(tenant.id, channel.id, checks.BalanceResult(True, "b", Decimal("50")), at=now)
    checks.record_balance_result(
        tenant.id, channel.id, checks.BalanceResult(True, "a", Decimal("70")), at=now - timedelta(minutes=1)
    )
    db.session.commit()
    db.session.expire_all()
    client = db.session.get(Client, tenant.id)
    assert client.onfon_balance == Decimal("50.0000") and client.onfon_last_sync == now


def test_a_failed_sync_keeps_the_last_balance_and_an_inactive_channel_leaves_the_tenant_alone(tenant, onfon):
    channel = add_onfon(tenant, onfon)
    checks.record_balance_result(tenant.id, channel.id, checks.BalanceResult(True, "ok", Decimal("10"), "KES", "KSh10"))
    checks.record_balance_result(tenant.id, channel.id, checks.BalanceResult(False, "Onfon is busy"))
    db.session.commit()
    config = db.session.get(Channel, channel.id).config
    assert config["last_sync"]["ok"] is False and config["last_sync"]["message"] == "Onfon is busy"
    assert config["balance"]["amount"] == "10.0000"

    svc.set_active(tenant.id, channel.id, False)
    checks.record_balance_result(tenant.id, channel.id, checks.BalanceResult(True, "ok", Decimal("99")))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Client, tenant.id).onfon_balance == Decimal("10.0000")


def test_vendors_without_a_balance_api():
    assert (
        fields.supports_balance("onfon") and fields.supports_balance("twilio") and fields.supports_balance("mobitech")
    )
    assert not fields.supports_balance("sandbox") and not fields.supports_balance("ultramsg")
    result = checks.fetch_channel_balance(_snap("sandbox", {}, {}))
    assert result.ok is False and "no balance API" in result.message
