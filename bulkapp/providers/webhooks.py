"""Incoming vendor webhooks as plain data, and parsers for what vendors send (numbers, times, tokens)."""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.providers.errors import MalformedPayload

NAIROBI = ZoneInfo("Africa/Nairobi")


@dataclass(frozen=True)
class WebhookRequest:
    """An incoming vendor webhook as plain data: method, the full public URL (with its query string), headers
    and the raw body bytes. Query arguments, form fields and JSON are derived from those, lazily, so that
    signatures are always checked over exactly what arrived.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    raw_body: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", {k.lower(): v for k, v in dict(self.headers).items()})

    @classmethod
    def from_werkzeug(cls, request: Any, url: str | None = None) -> WebhookRequest:
        """Build from a werkzeug/Flask request object passed in explicitly; ``url`` overrides ``request.url``
        when the public URL differs (TLS-terminating proxy without ProxyFix). Reads the body with caching, so
        ``request.form`` still works afterwards."""
        raw = request.get_data(cache=True)
        return cls(request.method, url or request.url, dict(request.headers.items()), raw)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @cached_property
    def args(self) -> dict[str, str]:
        """Query-string arguments (first value of each)."""
        return _first_values(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    @cached_property
    def form_items(self) -> tuple[tuple[str, str], ...]:
        """Every form-encoded body field in arrival order, repeats kept (Twilio signs them all)."""
        if self.content_type != "application/x-www-form-urlencoded":
            return ()
        try:
            text = self.raw_body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPayload("The form body is not valid UTF-8.") from exc
        return tuple(parse_qsl(text, keep_blank_values=True))

    @cached_property
    def form(self) -> dict[str, str]:
        return _first_values(self.form_items)

    def json(self) -> Any:
        """The body parsed as JSON; :class:`MalformedPayload` when it is empty or not JSON."""
        if not self.raw_body.strip():
            raise MalformedPayload("The request body is empty; a JSON document was expected.")
        try:
            return json.loads(self.raw_body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedPayload(f"The request body is not valid JSON ({exc}).") from exc

    def payload_records(self) -> list[dict[str, Any]]:
        """Flat records for vendors that send either a form, a JSON object (or list of objects) or a bare GET:
        query arguments first, body fields over them."""
        body_is_json = self.content_type.endswith("json") or self.raw_body.lstrip()[:1] in (b"{", b"[")
        if self.method == "GET" or not self.raw_body.strip() or not body_is_json:
            return [{**self.args, **self.form}]
        data = self.json()
        items = data if isinstance(data, list) else [data]
        if not items or not all(isinstance(item, dict) for item in items):
            raise MalformedPayload("The JSON body must be an object or a list of objects.")
        return [{**self.args, **item} for item in items]


def _first_values(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def token_matches(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a channel token; False when either side is missing."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def to_e164(raw: Any) -> str:
    """A sender number from a webhook as E.164 (``2547…``, ``+2547…``, ``07…`` all work); MalformedPayload
    when it is not a phone number. Foreign numbers keep their country code."""
    text = str(raw or "").strip()
    digits = re.sub(r"\D", "", text)
    try:
        return normalise_msisdn(text)
    except InvalidNumber:
        if 8 <= len(digits) <= 15 and not digits.startswith("0"):
            return "+" + digits  # a valid-looking international number libphonenumber does not classify
        raise MalformedPayload(f"{text!r} is not a phone number.") from None


def e164_or_none(raw: Any) -> str | None:
    """Like :func:`to_e164` for optional fields (a DLR's recipient): None instead of an error."""
    if raw in (None, ""):
        return None
    try:
        return to_e164(str(raw).removeprefix("whatsapp:"))
    except MalformedPayload:
        return None


def national_digits(e164: str) -> str:
    """``+254712345678`` -> ``254712345678`` (Onfon, Mobitech, WhatsApp Cloud want no ``+``)."""
    return e164.lstrip("+")


def parse_time(value: Any, tz: ZoneInfo = NAIROBI) -> datetime | None:
    """A vendor timestamp as aware UTC, leniently: Unix seconds (or milliseconds), ISO 8601, ``YYYY-mm-dd HH:MM
    [:SS]`` and ``YYYYmmddHHMMSS``. Naive times are read in ``tz`` (Kenyan vendors report local time). None when
    the value is empty or unreadable: a delivery report is still worth applying without its time."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if re.fullmatch(r"\d{9,10}(\.\d+)?", text) or re.fullmatch(r"\d{13}", text):
        seconds = float(text) / (1000 if len(text) == 13 else 1)
        return datetime.fromtimestamp(seconds, UTC)
    parsed = None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y%m%d%H%M%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"):
        try:
            parsed = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
