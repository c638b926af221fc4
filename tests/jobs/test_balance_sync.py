"""The periodic provider balance sync against Onfon simulators: updates, stored failures, tenant independence."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from bulkapp.extensions import db
from bulkapp.jobs.channels import sync_provider_balances
from bulkapp.jobs.periodic import PERIODIC
from bulkapp.models import Channel, Client
from bulkapp.services.channels import checks as channel_checks
from bulkapp.services.channels import settings as channel_settings
from tests.conftest import make_tenant
from tests.services.channels.test_channel_settings import closed_port
from tests.simulators.onfon import OnfonSimulator


@pytest.fixture
def sims():
    with OnfonSimulator(balance=Decimal("500.2500")) as first, OnfonSimulator(balance=Decimal("75.0000")) as second:
        yield first, second


def onfon_channel(tenant, sim: OnfonSimulator, *, auto_sync: bool = True, **extra) -> Channel:
    values = {**sim.credentials, "sender_id": "ACME", "base_url": f"{sim.url}/v1/sms", **extra}
    channel, _ = channel_settings.create_channel(tenant.id, "onfon", values, allow_private_urls=True)
    channel_settings.set_auto_sync(tenant.id, auto_sync)
    db.session.commit()
    return channel


def fresh(model, id_):
    db.session.expire_all()
    return db.session.get(model, id_)


def test_the_sync_is_registered_every_fifteen_minutes_on_the_low_queue():
    [task] = [t for t in PERIODIC if t.path == "bulkapp.jobs.channels:sync_provider_balances"]
    assert task.queue == "low" and task.every_seconds == 900
    assert task.function() is sync_provider_balances


def test_sync_updates_every_tenant_with_auto_sync(tenant, other_tenant, sims):
    first, second = sims
    a = onfon_channel(tenant, first)
    b = onfon_channel(other_tenant, second)

    assert sync_provider_balances() == {"synced": 2}

    client_a, client_b = fresh(Client, tenant.id), fresh(Client, other_tenant.id)
    assert client_a.onfon_balance == Decimal("500.2500") and client_b.onfon_balance == Decimal("75.0000")
    assert client_a.onfon_last_sync is not None and client_b.onfon_last_sync is not None
    assert fresh(Channel, a.id).config["last_sync"]["ok"] is True
    assert fresh(Channel, b.id).config["balance"]["raw"] == "KSh75.0000"

    first.balance = Decimal("480.0000")  # messages were sent in between
    assert sync_provider_balances() == {"synced": 2}
    assert fresh(Client, tenant.id).onfon_balance == Decimal("480.0000")


def test_tenants_without_auto_sync_or_without_an_active_onfon_channel_are_skipped(tenant, other_tenant, sims):
    first, second = sims
    onfon_channel(tenant, first, auto_sync=False)
    idle = onfon_channel(other_tenant, second)
    channel_settings.set_active(other_tenant.id, idle.id, False)
    db.session.commit()

    assert sync_provider_balances() == {}
    assert fresh(Client, tenant.id).onfon_balance is None and fresh(Client, other_tenant.id).onfon_balance is None
    assert first.stats()["requests"] == 0 and second.stats()["requests"] == 0


def test_one_tenants_failure_is_stored_and_does_not_stop_the_others(tenant, other_tenant, sims):
    first, second = sims
    third_tenant = make_tenant("Tenant C", "owner@c.example")
    broken = onfon_channel(tenant, first, api_key="revoked-key")
    good = onfon_channel(other_tenant, second)
    unreachable = onfon_channel(third_tenant, first, base_url=f"http://127.0.0.1:{closed_port()}/v1/sms")

    counts = sync_provider_balances()

    assert counts == {"failed": 2, "synced": 1}
    failure = fresh(Channel, broken.id).config["last_sync"]
    assert failure["ok"] is False and "Invalid api credential" in failure["message"] and failure["at"]
    assert "revoked-key" not in failure["message"]
    gone = fresh(Channel, unreachable.id).config["last_sync"]
    assert (
        gone["ok"] is False and gone["message"] == "We could not reach Onfon Media. Check the base URL and try again."
    )
    assert first.api_key not in gone["message"]
    assert fresh(Client, tenant.id).onfon_balance is None
    assert fresh(Client, other_tenant.id).onfon_balance == Decimal("75.0000")
    assert fresh(Channel, good.id).config["last_sync"]["ok"] is True


def test_vendor_outage_and_garbage_answers_are_failures_not_crashes(tenant, sims):
    first, _ = sims
    channel = onfon_channel(tenant, first)
    for fault, words in (("5xx", "HTTP 503"), ("malformed_json", "not the expected JSON"), ("empty_body", "JSON")):
        first.fault = fault
        assert sync_provider_balances() == {"failed": 1}
        assert words in fresh(Channel, channel.id).config["last_sync"]["message"]
    first.fault = None
    assert sync_provider_balances() == {"synced": 1}
    synced = fresh(Channel, channel.id).config
    assert synced["last_sync"]["ok"] is True and synced["balance"]["amount"] == "500.2500"


def test_a_slow_vendor_times_out_and_is_stored_as_a_failure(tenant, sims, monkeypatch):
    first, _ = sims
    channel = onfon_channel(tenant, first)
    first.fault, first.timeout_delay = "timeout", 1.5
    monkeypatch.setattr(channel_checks, "SYNC_TIMEOUT", (1.0, 0.3))

    assert sync_provider_balances() == {"failed": 1}
    assert "did not answer in time" in fresh(Channel, channel.id).config["last_sync"]["message"]


def test_an_unexpected_error_for_one_tenant_is_logged_and_the_run_goes_on(tenant, other_tenant, sims, monkeypatch):
    first, second = sims
    onfon_channel(tenant, first)
    onfon_channel(other_tenant, second)
    real = channel_checks.fetch_channel_balance

    def explode_for_first_tenant(snap, **kwargs):
        if snap.client_id == tenant.id:
            raise RuntimeError("adapter bug")
        return real(snap, **kwargs)

    monkeypatch.setattr(channel_checks, "fetch_channel_balance", explode_for_first_tenant)

    assert sync_provider_balances() == {"error": 1, "synced": 1}
    assert fresh(Client, other_tenant.id).onfon_balance == Decimal("75.0000")


def test_suspended_tenants_are_not_synced(tenant, sims):
    first, _ = sims
    onfon_channel(tenant, first)
    db.session.execute(sa.update(Client).where(Client.id == tenant.id).values(status=False))
    db.session.commit()
    assert sync_provider_balances() == {}
