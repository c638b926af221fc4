"""Encryption at rest for provider credentials and webhook secrets (MultiFernet, keys from the environment)."""

from __future__ import annotations

from cryptography.fernet import Fernet, MultiFernet
from flask import current_app

_cache: dict[str, MultiFernet] = {}


def _fernet() -> MultiFernet:
    keys = current_app.config["FERNET_KEYS"]
    if keys not in _cache:
        _cache[keys] = MultiFernet([Fernet(k.strip()) for k in keys.split(",") if k.strip()])
    return _cache[keys]


def encrypt(plaintext: str) -> str:
    """Encrypt with the first key of FERNET_KEYS."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with any key of FERNET_KEYS (old keys keep working during rotation)."""
    return _fernet().decrypt(token.encode()).decode()
