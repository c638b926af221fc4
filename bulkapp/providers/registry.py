"""Every provider by name: build one from a channel's settings, or list them for the settings form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from bulkapp.providers.base import ChannelKind, ConfigurationError, HttpProvider, Provider, SettingField
from bulkapp.providers.mobitech import MobitechProvider
from bulkapp.providers.onfon import OnfonProvider
from bulkapp.providers.sandbox import SandboxProvider
from bulkapp.providers.smtp import SmtpProvider
from bulkapp.providers.twilio import TwilioProvider
from bulkapp.providers.ultramsg import UltraMsgProvider
from bulkapp.providers.whatsapp_cloud import WhatsAppCloudProvider

PROVIDERS: dict[str, type[Provider]] = {
    cls.name: cls
    for cls in (
        SandboxProvider,
        OnfonProvider,
        TwilioProvider,
        MobitechProvider,
        UltraMsgProvider,
        WhatsAppCloudProvider,
        SmtpProvider,
    )
}


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What the Channels settings page needs to render a provider's form."""

    name: str
    label: str
    channel: ChannelKind
    credential_fields: tuple[SettingField, ...]
    config_fields: tuple[SettingField, ...]
    signs_webhooks: bool


def provider_class(name: str) -> type[Provider]:
    """The class registered as ``name`` (``channels.provider``); ConfigurationError for an unknown name."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ConfigurationError(f"Unknown provider {name!r}.", fields=["provider"]) from None


def get_provider(
    name: str,
    credentials: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None,
    session: requests.Session | None = None,
    timeout: tuple[float, float] | None = None,
) -> Provider:
    """Build the provider for a channel. HTTP vendors use ``session`` (shared pool) when given, else their own,
    and ``timeout`` (connect, read) when given. Raises ConfigurationError for missing settings."""
    cls = provider_class(name)
    if issubclass(cls, HttpProvider):
        return cls(credentials, config, session=session, timeout=timeout)
    return cls(credentials, config)


def available_providers(channel: ChannelKind | None = None) -> list[ProviderInfo]:
    """Every provider (or those of one channel kind) with its settings fields, in registry order."""
    return [
        ProviderInfo(cls.name, cls.label, cls.channel, cls.credential_fields, cls.config_fields, cls.signs_webhooks)
        for cls in PROVIDERS.values()
        if channel is None or cls.channel == channel
    ]
