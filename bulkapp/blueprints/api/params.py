"""Checking the fields of API request bodies and query strings; each problem is an ApiError 422."""

from __future__ import annotations

from typing import Any

from bulkapp.blueprints.api.errors import ApiError
from bulkapp.parsing import parse_id, parse_int


def invalid(field: str, message: str, code: str | None = None) -> ApiError:
    return ApiError(422, code or f"invalid_{field}", message, field)


def optional_str(payload: dict[str, Any], field: str, limit: int | None = None) -> str | None:
    value = payload.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, f"'{field}' must be a string.")
    if limit is not None and len(value) > limit:
        raise invalid(field, f"'{field}' can be at most {limit:,} characters.")
    return value


def optional_int(payload: dict[str, Any], field: str) -> int | None:
    value = payload.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or parse_id(value) is None:
        raise invalid(field, f"'{field}' must be a positive whole number.")
    return value


def optional_bool(payload: dict[str, Any], field: str) -> bool | None:
    value = payload.get(field)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid(field, f"'{field}' must be true or false.")
    return value


def optional_object(payload: dict[str, Any], field: str) -> dict[str, Any] | None:
    value = payload.get(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid(field, f"'{field}' must be an object.")
    return value


def channel(payload: dict[str, Any], default: str = "sms") -> str:
    from bulkapp.models import CHANNELS

    value = payload.get("channel", default)
    if value is None:
        value = default
    if value not in CHANNELS:
        raise invalid("channel", "'channel' must be one of sms, whatsapp, email.")
    return value


def query_int(args, name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    value = parse_int(raw, low, high)
    if value is None:
        raise invalid(name, f"'{name}' must be a whole number from {low} to {high}.")
    return value


def query_id(args, name: str) -> int | None:
    raw = args.get(name)
    if raw in (None, ""):
        return None
    value = parse_id(raw)
    if value is None:
        raise invalid(name, f"'{name}' must be a positive whole number.")
    return value


def query_choice(args, name: str, choices: tuple[str, ...]) -> str | None:
    raw = args.get(name)
    if raw in (None, ""):
        return None
    if raw not in choices:
        raise invalid(name, f"'{name}' must be one of {', '.join(choices)}.")
    return raw
