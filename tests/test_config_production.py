"""Production refuses to start without the settings that protect money, and names every missing one."""

from __future__ import annotations

import re

import pytest

from bulkapp.config import Config, parse_networks

COMPLETE = {
    "BULKAPP_ENV": "production",
    "SECRET_KEY": "s" * 32,
    "FERNET_KEYS": "k",
    "DATABASE_URL": "postgresql://u@h/db",
    "BASE_URL": "https://bulkapp.example",
    "MPESA_CALLBACK_TOKEN": "callback-secret",
}


def environment(monkeypatch, **values) -> None:
    for name in (*COMPLETE, "MPESA_ENV", "MPESA_ALLOWED_IPS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        if value is not None:
            monkeypatch.setenv(name, value)


def test_production_starts_with_every_setting(monkeypatch):
    environment(monkeypatch, **COMPLETE)
    config = Config()
    assert config.ENV_NAME == "production" and config.MPESA_CALLBACK_TOKEN == "callback-secret"


def test_production_refuses_to_start_without_the_m_pesa_callback_token(monkeypatch):
    environment(monkeypatch, **{**COMPLETE, "MPESA_CALLBACK_TOKEN": None})
    with pytest.raises(RuntimeError, match="MPESA_CALLBACK_TOKEN"):
        Config()


def test_one_error_lists_every_missing_setting(monkeypatch):
    environment(monkeypatch, BULKAPP_ENV="production", MPESA_ENV="simulated")
    with pytest.raises(RuntimeError) as error:
        Config()
    # Each problem as its own entry: "BASE_URL" alone, not just inside "DATABASE_URL".
    named = re.findall(r"(?:: |; )([A-Z_]+(?:=simulated)?) \(", str(error.value))
    expected = ["SECRET_KEY", "FERNET_KEYS", "DATABASE_URL", "BASE_URL", "MPESA_CALLBACK_TOKEN", "MPESA_ENV=simulated"]
    assert named == expected


def test_simulated_m_pesa_is_refused_in_production(monkeypatch):
    environment(monkeypatch, **COMPLETE, MPESA_ENV="simulated")
    with pytest.raises(RuntimeError, match="MPESA_ENV=simulated"):
        Config()


def test_development_needs_none_of_them(monkeypatch):
    environment(monkeypatch, MPESA_ENV="simulated")
    assert Config().MPESA_ENV == "simulated"


def test_mpesa_allowed_ips_are_cidr_blocks_or_addresses(monkeypatch):
    networks = parse_networks("196.201.214.0/24, 196.201.213.114 2001:db8::/32")
    assert [str(n) for n in networks] == ["196.201.214.0/24", "196.201.213.114/32", "2001:db8::/32"]
    assert parse_networks("") == ()
    environment(monkeypatch, MPESA_ALLOWED_IPS="196.201.214.0/33")
    with pytest.raises(RuntimeError, match="MPESA_ALLOWED_IPS"):
        Config()
