"""The emailed links that carry a signed token: sign-up confirmation, password reset, email change.

One mechanism: an ``itsdangerous`` timed token (its own salt per purpose) holding the user id and a fingerprint
of the state the link is for (the password hash, the current address). Once that state changes the fingerprint
no longer matches, so a link works once and older ones die with it, without a table of tokens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bulkapp.extensions import db
from bulkapp.models import User
from bulkapp.services.accounts.errors import AccountError


@dataclass(frozen=True)
class SignedLink:
    salt: str  # keeps one purpose's tokens from opening another's
    purpose: str  # prefixes the fingerprint
    max_age: int  # seconds

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=self.salt)

    def fingerprint(self, state: str) -> str:
        return hashlib.sha256(f"{self.purpose}:{state}".encode()).hexdigest()[:16]

    def token(self, user: User, state: str, **extra) -> str:
        """A token for ``user`` valid while ``state`` stays what it is now (and ``max_age`` seconds)."""
        return self._serializer().dumps({"user": user.id, "check": self.fingerprint(state), **extra})

    def read(self, token: str, *, expired: str, invalid: str) -> tuple[User, dict]:
        """The token's user and data; AccountError(``expired``) or AccountError(``invalid``) for a late, forged or
        ownerless one. The caller checks the fingerprint against the state (``matches``) and its own rules."""
        try:
            data = self._serializer().loads(token, max_age=self.max_age)
        except SignatureExpired:
            raise AccountError(expired) from None
        except BadSignature:
            raise AccountError(invalid) from None
        user = db.session.get(User, data.get("user")) if isinstance(data, dict) else None
        if user is None:
            raise AccountError(invalid)
        return user, data

    def matches(self, data: dict, state: str) -> bool:
        return data.get("check") == self.fingerprint(state)
