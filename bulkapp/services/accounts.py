"""Tenants and users: creation, sign-up and authentication."""

from __future__ import annotations

import secrets
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from bulkapp.columns import to_decimal, utcnow
from bulkapp.extensions import db
from bulkapp.i18n import N_, stored_sentences
from bulkapp.models import Channel, Client, User
from bulkapp.services import wallet
from bulkapp.services.api_keys import generate_api_key
from bulkapp.services.passwords import hash_password, needs_rehash, verify_password

ACCOUNT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud over the phone
# The ledger keeps it in English; the wallet and admin ledgers show it in the reader's language (i18n.stored_text).
(OPENING_BALANCE,) = stored_sentences(N_("Opening balance"))


class AccountError(ValueError):
    """A domain error with a sentence for the user, attached to ``field`` when there is one. The sentence is lazy:
    it reads in the viewer's language where it is shown (English in the CLI)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def new_account_number() -> str:
    """A short paybill account reference, unique across tenants."""
    while True:
        candidate = "BK" + "".join(secrets.choice(ACCOUNT_ALPHABET) for _ in range(6))
        if not db.session.scalar(sa.select(Client.id).where(Client.account_number == candidate)):
            return candidate


def create_client(
    name: str,
    *,
    sender_id: str | None = None,
    balance: Decimal | str | int = 0,
    price_per_unit: Decimal | str | None = None,
    test_mode: bool = True,
    contact: str | None = None,
) -> tuple[Client, str]:
    """Create a tenant with an API key, a paybill account number and a sandbox SMS channel.

    Returns the client and its API key (shown once). An opening balance is credited through the ledger.
    """
    name = (name or "").strip()
    if not name:
        raise AccountError(_l("A business name is required."), "business_name")
    price = to_decimal(price_per_unit if price_per_unit is not None else current_app.config["DEFAULT_PRICE_PER_UNIT"])
    if price <= 0:
        raise AccountError(_l("The price per unit must be positive."), "price_per_unit")
    key, key_hash, prefix = generate_api_key(test_mode)
    client = Client(
        name=name,
        company_name=name,
        contact=contact,
        sender_id=(sender_id or None),
        balance=Decimal(0),
        price_per_unit=price,
        api_key=key_hash,
        api_key_prefix=prefix,
        is_test_mode=test_mode,
        account_number=new_account_number(),
        settings={"low_balance_threshold": "100.00"},
        webhook_events=[],
    )
    db.session.add(client)
    db.session.flush()
    db.session.add(
        Channel(
            client_id=client.id,
            name="sms",
            provider="sandbox",
            credentials={},
            active=True,
            config={"sender_id": sender_id or "BULKAPP"},
            webhook_token=secrets.token_urlsafe(24),
        )
    )
    opening = to_decimal(balance)
    if opening > 0:
        wallet.credit(
            client.id, opening, reference=f"opening:{client.id}", type="adjustment", description=OPENING_BALANCE
        )
    db.session.flush()
    return client, key


def create_user(
    email: str,
    password: str,
    *,
    name: str | None = None,
    client_id: int | None = None,
    admin: bool = False,
    phone: str | None = None,
) -> User:
    """A tenant user (role ``user``) or a platform admin (role ``admin``, no tenant)."""
    email = (email or "").strip().lower()
    if "@" not in email:
        raise AccountError(_l("Enter a valid email address."), "email")
    if len(password or "") < 8:
        raise AccountError(_l("The password needs at least 8 characters."), "password")
    if admin == (client_id is not None):
        raise AccountError(_l("A user belongs to exactly one tenant, unless it is a platform admin."))
    if db.session.scalar(sa.select(User.id).where(User.email == email)):
        raise AccountError(_l("An account with this email already exists."), "email")
    user = User(
        email=email,
        password=hash_password(password),
        name=(name or email.split("@")[0]).strip(),
        client_id=client_id,
        role="admin" if admin else "user",
        phone=phone,
        preferences={},
    )
    db.session.add(user)
    db.session.flush()
    return user


def sign_up(business_name: str, name: str, email: str, password: str, phone: str) -> User:
    """Self-service sign-up: a test-mode tenant on the sandbox provider plus its first user."""
    client, _key = create_client(business_name, test_mode=True, contact=phone)
    return create_user(email, password, name=name, client_id=client.id, phone=phone)


def authenticate(email: str, password: str) -> User | None:
    """The user for these credentials, or None. Takes the same time whether or not the email exists."""
    user = db.session.scalar(sa.select(User).where(User.email == (email or "").strip().lower()))
    if not verify_password(user.password if user else None, password or ""):
        return None
    if not user.is_active:
        return None
    if needs_rehash(user.password):
        user.password = hash_password(password)
    user.last_login_at = utcnow()
    return user
