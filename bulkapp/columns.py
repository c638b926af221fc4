"""Column types: exact money, timezone-aware UTC timestamps, encrypted JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

MONEY_SCALE = 10_000  # stored as integer ten-thousandths of a shilling
MONEY_QUANTUM = Decimal("0.0001")


def to_decimal(value) -> Decimal:
    """Exact Decimal with four places; floats are refused because they are not exact."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass a Decimal, int or string")
    return Decimal(value).quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP)


class Money(TypeDecorator):
    """KSH amount as Decimal in Python, integer ten-thousandths in the database (exact on every backend)."""

    impl = sa.BigInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return int(to_decimal(value) * MONEY_SCALE)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return (Decimal(int(value)) / MONEY_SCALE).quantize(MONEY_QUANTUM)


def money_to_storage(value) -> int:
    """The integer a Money column stores, for Core statements that do arithmetic in SQL."""
    return int(to_decimal(value) * MONEY_SCALE)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps naive values)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EncryptedJSON(TypeDecorator):
    """A JSON object encrypted with the app's MultiFernet before it reaches the database."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        from bulkapp.crypto import encrypt

        return encrypt(json.dumps(value, sort_keys=True))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        from bulkapp.crypto import decrypt

        return json.loads(decrypt(value))


def render_migration_type(type_, obj, autogen_context):
    """Alembic ``render_item`` hook: migrations name plain SQL types, never this module's classes."""
    if type_ == "type":
        if isinstance(obj, Money):
            return "sa.BigInteger()"
        if isinstance(obj, UTCDateTime):
            return "sa.DateTime(timezone=True)"
        if isinstance(obj, EncryptedJSON):
            return "sa.Text()"
        if isinstance(obj, sa.JSON) and getattr(obj, "_variant_mapping", None):
            autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
            return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False
