"""API keys: ``bk_live_``/``bk_test_`` + 32 random bytes; only the SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets


def generate_api_key(test_mode: bool) -> tuple[str, str, str]:
    """Return (key to show once, its SHA-256 hex for storage, a non-secret display prefix)."""
    key = f"bk_{'test' if test_mode else 'live'}_{secrets.token_urlsafe(32)}"
    return key, hash_api_key(key), key_prefix(key)


def key_prefix(key: str) -> str:
    """The part of a key that may be shown and logged: its mode and 4 random characters (``bk_live_AbCd``)."""
    return key[:12]


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
