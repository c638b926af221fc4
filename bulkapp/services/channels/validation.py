"""Channel settings forms: each provider's fields (plus a transactional sender ID for SMS) and their checks.

Values are checked before anything is saved: lengths, whole numbers, identifiers that end up in vendor URLs,
sender IDs, email addresses, and vendor base URLs / SMTP hosts, which must be public (https on port 443, no
private, loopback, link-local or IPv4-embedding address) unless WEBHOOK_ALLOW_PRIVATE_URLS allows them for
development and tests. Saving checks them once; every request checks them again (bulkapp.outbound).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from bulkapp.outbound import OutboundRefused, OutboundUnreachable, check_destination, check_host
from bulkapp.providers.base import ConfigurationError, Provider, SettingField
from bulkapp.providers.registry import ProviderInfo, available_providers, get_provider, provider_class
from bulkapp.providers.smtp import MAIL_PORTS

SANDBOX = "sandbox"
KIND_LABELS = {"sms": "SMS", "whatsapp": "WhatsApp", "email": _l("Email")}
MAX_VALUE_LENGTH = 500

# The config key of each SMS vendor's own sender field; its value is mirrored into config["sender_id"] so that
# every SMS channel names its default (promotional) sender the same way.
SENDER_FIELDS = {"sandbox": "sender_id", "onfon": "sender_id", "mobitech": "sender_name", "twilio": "from_number"}
TRANSACTIONAL_SENDER = SettingField(
    "transactional_sender_id",
    _l("Transactional sender ID"),
    required=False,
    help=_l("Used for one-to-one messages (OTPs, receipts, replies). Leave blank to use the default sender."),
)
ADVANCED_FIELDS = frozenset({"base_url", "batch_size", "api_version", "timeout"})
# Adapter settings a tenant does not set: a path on this server (SMTP's CA file) would let a tenant probe our
# files. An operator may still set them in the database; saving the form keeps them.
OPERATOR_FIELDS = frozenset({"ca_file"})
INTEGER_RANGES = {
    "batch_size": (1, 1000),
    "port": (1, 65535),
    "priority": (0, 10),
    "service_id": (0, 999_999_999),
    "timeout": (1, 120),
}
PATTERNS = {
    "account_sid": (r"AC[0-9a-fA-F]{32}", _l("A Twilio Account SID is AC followed by 32 letters and digits.")),
    "messaging_service_sid": (
        r"MG[0-9a-fA-F]{32}",
        _l("A Messaging Service SID is MG followed by 32 letters and digits."),
    ),
    "instance_id": (r"[A-Za-z0-9_-]{1,64}", _l("Use the instance ID as UltraMsg shows it, e.g. instance1150.")),
    "phone_number_id": (r"\d{5,32}", _l("The phone number ID is the long number Meta shows, digits only.")),
    "api_version": (r"v\d{1,3}\.\d{1,2}", _l("Write the version like v23.0.")),
    "template_language": (r"[a-z]{2,3}(_[A-Z]{2})?", _l("Write a language code like en or en_US.")),
}
SENDER_VALUE_FIELDS = frozenset({"sender_id", "transactional_sender_id", "sender_name", "from_number"})
ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ._&-]{1,11}")
NUMERIC_SENDER = re.compile(r"\+?\d{3,15}")
PRIVATE_ADDRESS = _l("That address is on a private network; provider addresses must be public.")


class ChannelSettingsError(ValueError):
    """The settings form has errors: ``errors`` maps field names to sentences; ``message`` is for the form."""

    def __init__(self, errors: Mapping[str, str] | None = None, message: str | None = None) -> None:
        self.errors = dict(errors or {})
        self.message = message or _l("Please correct the fields marked below.")
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of a provider's settings form: ``store`` says where the value goes."""

    name: str
    label: str
    store: str  # "credentials" (encrypted) or "config"
    secret: bool
    required: bool
    default: str | int | None
    help: str
    choices: tuple[str, ...]
    advanced: bool


def addable_providers() -> list[ProviderInfo]:
    """Providers a tenant can add (every one except the sandbox, which each tenant already has)."""
    return [info for info in available_providers() if info.name != SANDBOX]


def is_known_provider(name: str) -> bool:
    try:
        provider_class(name)
    except ConfigurationError:
        return False
    return True


def provider_label(name: str) -> str:
    try:
        return provider_class(name).label
    except ConfigurationError:
        return name


def form_fields(provider: str) -> tuple[FormField, ...]:
    """The settings form of ``provider``: the vendor's credential and config fields, plus a transactional
    sender ID for SMS vendors right after their own sender field. ConfigurationError for an unknown name."""
    cls = provider_class(provider)
    fields: list[FormField] = []
    for store, specs in (("credentials", cls.credential_fields), ("config", cls.config_fields)):
        for spec in specs:
            if spec.name in OPERATOR_FIELDS:
                continue
            fields.append(_form_field(spec, store, provider))
            if store == "config" and spec.name == SENDER_FIELDS.get(provider):
                fields.append(_form_field(TRANSACTIONAL_SENDER, "config", provider))
    return tuple(fields)


def _sentences(*parts: str) -> str:
    return " ".join(str(part) for part in parts if part)


def _form_field(spec: SettingField, store: str, provider: str) -> FormField:
    label, help_text = spec.label, spec.help
    if spec.name == SENDER_FIELDS.get(provider):
        label = _l("%(label)s (default, promotional)", label=spec.label)
        help_text = LazyString(_sentences, spec.help, _l("Used for campaigns and whenever no other sender is set."))
    return FormField(
        name=spec.name,
        label=label,
        store=store,
        secret=spec.secret,
        required=spec.required and spec.default is None,
        default=spec.default,
        help=help_text,
        choices=spec.choices,
        advanced=spec.name in ADVANCED_FIELDS,
    )


def supports_balance(provider: str) -> bool:
    """True when the vendor has a balance API (its adapter overrides ``fetch_balance``)."""
    try:
        return provider_class(provider).fetch_balance is not Provider.fetch_balance
    except ConfigurationError:
        return False


def clean_settings(
    provider: str,
    values: Mapping[str, Any],
    *,
    saved_credentials: Mapping[str, Any] | None = None,
    allow_private_urls: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a settings form and split it into ``(credentials, config)``.

    Blank optional fields are left out (the vendor default applies); a blank secret keeps the saved one.
    Raises :class:`ChannelSettingsError` with one sentence per field at fault.
    """
    fields = form_fields(provider)
    saved = dict(saved_credentials or {})
    errors: dict[str, str] = {}
    credentials: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for field in fields:
        raw = values.get(field.name)
        text = "" if raw is None else str(raw).strip()
        target = credentials if field.store == "credentials" else config
        if len(text) > MAX_VALUE_LENGTH:
            errors[field.name] = _l("Too long: at most %(limit)s characters.", limit=MAX_VALUE_LENGTH)
            continue
        if not text:
            if field.secret and saved.get(field.name):
                target[field.name] = saved[field.name]
            elif field.required:
                errors[field.name] = _l("%(label)s is required.", label=field.label)
            continue
        try:
            target[field.name] = _clean_value(provider, field, text, allow_private_urls)
        except ValueError as exc:
            errors[field.name] = exc.args[0]  # a lazy text stays lazy, to be shown in the user's language
    if not errors:
        errors.update(_vendor_errors(provider, credentials, config))
    if errors:
        raise ChannelSettingsError(errors)
    sender_field = SENDER_FIELDS.get(provider)
    if sender_field and sender_field != "sender_id" and config.get(sender_field):
        config["sender_id"] = config[sender_field]
    return credentials, config


def _clean_value(provider: str, field: FormField, text: str, allow_private: bool) -> Any:
    name = field.name
    if field.choices and text not in field.choices:
        raise ValueError(_l("Choose one of: %(choices)s.", choices=", ".join(field.choices)))
    if name in INTEGER_RANGES:
        low, high = INTEGER_RANGES[name]
        if not re.fullmatch(r"\d{1,10}", text) or not low <= int(text) <= high:
            raise ValueError(_l("Enter a whole number from %(low)s to %(high)s.", low=low, high=high))
        if name == "port" and provider == "smtp" and not allow_private and int(text) not in MAIL_PORTS:
            raise ValueError(_l("Use a standard mail port: 587, 465, 25 or 2525."))
        return int(text)
    if name in PATTERNS:
        pattern, message = PATTERNS[name]
        if not re.fullmatch(pattern, text):
            raise ValueError(message)
    if name in SENDER_VALUE_FIELDS and not (ALPHANUMERIC_SENDER.fullmatch(text) or NUMERIC_SENDER.fullmatch(text)):
        raise ValueError(_l("A sender ID is up to 11 letters and digits (with a letter), or a number/shortcode."))
    if name == "base_url":
        default = next((spec.default for spec in provider_class(provider).config_fields if spec.name == name), None)
        if text.rstrip("/") != str(default or "").rstrip("/"):
            check_public_url(text, allow_private=allow_private)
        return text.rstrip("/")
    if name == "host":
        if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}|\[?[0-9A-Fa-f:]+\]?", text):
            raise ValueError(_l("Enter a server name like smtp.example.com."))
        check_public_host(text.strip("[]"), allow_private=allow_private)
    if name == "from_address":
        try:
            validate_email(text, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(str(exc)) from None
    return text


def _vendor_errors(provider: str, credentials: dict[str, Any], config: dict[str, Any]) -> dict[str, str]:
    """The adapter's own checks (e.g. Twilio needs a From number or a Messaging Service SID)."""
    try:
        with get_provider(provider, credentials, config):
            return {}
    except ConfigurationError as exc:
        names = exc.fields or ("provider",)
        return {name: exc.reason for name in names}


def check_public_url(url: str, *, allow_private: bool) -> None:
    """A vendor API base URL must be https on port 443 (or 80) of a public address, so that a tenant cannot
    make this server call its own network (the same rules every request meets again, :mod:`bulkapp.outbound`).
    ``allow_private`` (WEBHOOK_ALLOW_PRIVATE_URLS, development and tests) allows http, any port and private,
    loopback and link-local addresses. ValueError with a sentence otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(_l("Enter a full address starting with https://."))
    if parts.username or parts.password:
        raise ValueError(_l("Leave user names and passwords out of the address."))
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
    except ValueError:
        raise ValueError(_l("The port in this address is not valid.")) from None
    if allow_private:
        return
    try:
        check_destination(url, allow_private=False)
    except OutboundUnreachable as exc:
        raise ValueError(_l("We could not find the server %(host)s.", host=exc.host)) from None
    except OutboundRefused as exc:
        if exc.kind == "scheme":
            raise ValueError(_l("Use an https:// address.")) from None
        if exc.kind == "port":
            raise ValueError(_l("Use the standard https port (443), or leave the port out.")) from None
        raise ValueError(PRIVATE_ADDRESS) from None


def check_public_host(host: str, *, port: int = 443, allow_private: bool) -> None:
    """ValueError unless ``host`` resolves only to public addresses (skipped when private ones are allowed)."""
    if allow_private:
        return
    try:
        check_host(host, port, allow_private=False)
    except OutboundUnreachable:
        raise ValueError(_l("We could not find the server %(host)s.", host=host)) from None
    except OutboundRefused:
        raise ValueError(PRIVATE_ADDRESS) from None
