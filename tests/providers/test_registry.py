"""The registry and the shared interface helpers every adapter relies on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
from werkzeug.test import EnvironBuilder

from bulkapp.providers.base import (
    ConfigurationError,
    HttpProvider,
    MalformedPayload,
    NotSupported,
    WebhookRequest,
    parse_time,
    to_e164,
)
from bulkapp.providers.onfon import OnfonProvider
from bulkapp.providers.registry import PROVIDERS, available_providers, get_provider, provider_class
from bulkapp.providers.sandbox import SandboxProvider


def test_every_provider_declares_its_form():
    names = [info.name for info in available_providers()]
    assert names == ["sandbox", "onfon", "twilio", "mobitech", "ultramsg", "whatsapp_cloud", "smtp"]
    assert [info.name for info in available_providers("whatsapp")] == ["ultramsg", "whatsapp_cloud"]
    onfon = next(info for info in available_providers() if info.name == "onfon")
    assert [(f.name, f.secret) for f in onfon.credential_fields] == [
        ("access_key", True),
        ("api_key", True),
        ("client_id", False),
    ]
    signing = {info.name for info in available_providers() if info.signs_webhooks}
    assert signing == {"twilio", "whatsapp_cloud"}
    for cls in PROVIDERS.values():
        assert cls.label and cls.channel in ("sms", "whatsapp", "email")


def test_get_provider_builds_with_a_shared_session_and_timeout():
    session = requests.Session()
    provider = get_provider(
        "onfon", {"access_key": "a", "api_key": "b", "client_id": "c"}, {"sender_id": "ACME"}, session, (1.0, 2.0)
    )
    assert isinstance(provider, OnfonProvider) and isinstance(provider, HttpProvider)
    assert provider.session is session and provider.timeout == (1.0, 2.0)
    assert provider.config["base_url"] == "https://api.onfonmedia.co.ke/v1/sms"
    provider.close()
    assert session.adapters  # an injected session is left open for its owner
    assert isinstance(get_provider("sandbox", None, None), SandboxProvider)


def test_missing_settings_name_their_fields():
    with pytest.raises(ConfigurationError) as caught:
        get_provider("onfon", {"access_key": "a", "api_key": "  "}, {})
    assert caught.value.fields == ("api_key", "client_id", "sender_id")
    assert "API key, Client ID, Sender ID" in caught.value.reason


def test_unknown_provider():
    with pytest.raises(ConfigurationError):
        provider_class("africastalking")


def test_unsupported_webhooks_say_so():
    with pytest.raises(NotSupported):
        SandboxProvider().parse_inbound(WebhookRequest("POST", "https://x", {}, b""))


def test_webhook_request_from_a_werkzeug_request_keeps_the_form_usable():
    builder = EnvironBuilder(
        method="POST",
        base_url="https://app.example",
        path="/webhooks/twilio/inbound",
        query_string="a=1",
        data={"From": "+254712345678", "Body": "Hi there"},
    )
    flask_like = builder.get_request()
    request = WebhookRequest.from_werkzeug(flask_like)
    assert request.url == "https://app.example/webhooks/twilio/inbound?a=1"
    assert request.form == {"From": "+254712345678", "Body": "Hi there"} and request.args == {"a": "1"}
    assert request.header("CONTENT-TYPE") == "application/x-www-form-urlencoded"
    assert flask_like.form["Body"] == "Hi there"  # the raw body was cached, not consumed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-04-08 09:31", datetime(2026, 4, 8, 6, 31, tzinfo=UTC)),
        ("2026-04-08 09:31:05", datetime(2026, 4, 8, 6, 31, 5, tzinfo=UTC)),
        ("20260408093105", datetime(2026, 4, 8, 6, 31, 5, tzinfo=UTC)),
        ("2026-04-08T09:31:05Z", datetime(2026, 4, 8, 9, 31, 5, tzinfo=UTC)),
        ("1694427240", datetime(2023, 9, 11, 10, 14, tzinfo=UTC)),
        (1694427240000, datetime(2023, 9, 11, 10, 14, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
    ],
)
def test_lenient_timestamps(value, expected):
    assert parse_time(value) == expected


def test_sender_numbers():
    assert to_e164("254712345678") == "+254712345678"
    assert to_e164("0712 345 678") == "+254712345678"
    assert to_e164("15550984277") == "+15550984277"
    with pytest.raises(MalformedPayload):
        to_e164("ACME")
