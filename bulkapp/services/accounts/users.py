"""Tenants and users: creation, sign-up and authentication."""

from __future__ import annotations

import secrets
import unicodedata
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from bulkapp.columns import to_decimal, utcnow
from bulkapp.extensions import db
from bulkapp.i18n import N_, stored_sentences
from bulkapp.models import Channel, Client, User
from bulkapp.services.accounts.api_keys import generate_api_key
from bulkapp.services.accounts.errors import AccountError
from bulkapp.services.accounts.passwords import hash_password, needs_rehash, verify_password
from bulkapp.services.accounts.roles import MANAGER, OWNER, ROLES
from bulkapp.services.accounts.signed_links import SignedLink
from bulkapp.services.billing import wallet

ACCOUNT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud over the phone
# The ledger keeps it in English; the wallet and admin ledgers show it in the reader's language (i18n.stored_text).
(OPENING_BALANCE,) = stored_sentences(N_("Opening balance"))
CONFIRM_MAX_AGE = 3 * 24 * 3600  # a sign-up's confirmation link works for 3 days


def normalise_email(email: str | None) -> str:
    """The one form of an address that accounts, sign-in and throttling key on: NFKC, no surrounding blanks,
    lower case (``'A1@X.COM '`` and ``'a1@x.com'`` are one account)."""
    return unicodedata.normalize("NFKC", email or "").strip().lower()


class EmailNotConfirmed(AccountError):
    """The password is right but the account's email address was never confirmed: it cannot sign in yet."""

    def __init__(self, user: User) -> None:
        super().__init__(_l("Confirm your email address first: open the link we sent to it."), "email")
        self.user = user


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
    verified: bool = True,
    tenant_role: str | None = None,
) -> User:
    """A tenant user (role ``user``) or a platform admin (role ``admin``, no tenant).

    A tenant user's ``tenant_role`` defaults to ``owner`` when the tenant has no owner yet, else ``manager``
    (the CLI and invitations choose their own); a second owner is refused (``roles.py``, transfer instead).

    Users made by an admin, the CLI, the demo or an invitation are ``verified`` (usable at once); self-service
    sign-ups are not until their confirmation link is opened and the password entered (``confirm_email``).
    """
    email = normalise_email(email)
    if "@" not in email:
        raise AccountError(_l("Enter a valid email address."), "email")
    if len(password or "") < 8:
        raise AccountError(_l("The password needs at least 8 characters."), "password")
    if admin == (client_id is not None):
        raise AccountError(_l("A user belongs to exactly one tenant, unless it is a platform admin."))
    if db.session.scalar(sa.select(User.id).where(User.email == email)):
        raise AccountError(_l("An account with this email already exists."), "email")
    if client_id is not None:
        tenant_role = _tenant_role_for(client_id, tenant_role)
    user = User(
        email=email,
        password=hash_password(password),
        name=(name or email.split("@")[0]).strip(),
        client_id=client_id,
        role="admin" if admin else "user",
        phone=phone,
        preferences={},
        email_verified_at=utcnow() if verified else None,
        tenant_role=None if admin else tenant_role,
    )
    db.session.add(user)
    db.session.flush()
    return user


def tenant_owner(client_id: int) -> User | None:
    """The tenant's owner, active or disabled by a platform admin; None before the first user. There is one at
    most: a second owner is refused (``create_user``) and the ownership moves only by transfer."""
    return db.session.scalar(sa.select(User).where(User.client_id == client_id, User.tenant_role == OWNER).limit(1))


def _tenant_role_for(client_id: int, wanted: str | None) -> str:
    """The role a new user of the tenant gets: ``wanted``, or owner for the first one and manager after."""
    has_owner = tenant_owner(client_id) is not None
    if wanted is None:
        return MANAGER if has_owner else OWNER
    if wanted not in ROLES:
        raise AccountError(_l("Choose a role from the list."), "role")
    if wanted == OWNER and has_owner:
        raise AccountError(_l("This team already has an owner: transfer the ownership instead."), "role")
    return wanted


def sign_up(business_name: str, name: str, email: str, password: str, phone: str) -> tuple[User, bool]:
    """Self-service sign-up: a test-mode tenant on the sandbox provider plus its first, unconfirmed user.

    Returns ``(user, created)``. The caller answers the same either way (no account enumeration) and emails
    the address: a confirmation link when ``created``, else a "you already have an account" note. An email
    held by an account that was never confirmed is taken over by this sign-up (new names and password; earlier
    links stop working): nobody could use that account, and only the mailbox's owner can confirm it.
    """
    email = normalise_email(email)
    existing = db.session.scalar(sa.select(User).where(User.email == email))
    if existing is None:
        client, _key = create_client(business_name, test_mode=True, contact=phone)
        return create_user(email, password, name=name, client_id=client.id, phone=phone, verified=False), True
    if existing.email_verified_at is not None or existing.client is None:
        hash_password(password)  # as long as a real sign-up takes: the answer's timing tells nothing either
        return existing, False
    if not (business_name or "").strip():
        raise AccountError(_l("A business name is required."), "business_name")
    existing.client.name = existing.client.company_name = business_name.strip()
    existing.client.contact = phone
    existing.name, existing.phone, existing.password = name.strip(), phone, hash_password(password)
    db.session.flush()
    return existing, True


# Keyed on the password hash: a newer sign-up replacing the pending account's password kills its older links.
CONFIRM_LINK = SignedLink("bulkapp-confirm-email", "confirm", CONFIRM_MAX_AGE)


def confirmation_token(user: User) -> str:
    """A signed token for the user's confirmation link (valid ``CONFIRM_MAX_AGE`` seconds)."""
    return CONFIRM_LINK.token(user, user.password)


def read_confirmation(token: str) -> User:
    """The user of a confirmation link (nothing changes). AccountError when the link is forged, expired or
    replaced by a newer sign-up."""
    invalid = _l("This confirmation link is not valid.")
    user, data = CONFIRM_LINK.read(
        token, expired=_l("This confirmation link has expired. Sign in to get a new one."), invalid=invalid
    )
    if not CONFIRM_LINK.matches(data, user.password):
        raise AccountError(invalid)
    return user


def confirm_email(token: str, password: str) -> tuple[User, bool]:
    """Mark the token's user as confirmed, given the password chosen at sign-up: opening the link alone (a mail
    scanner, or the owner of an address someone else signed up with) confirms nothing. Returns ``(user, newly)``
    where ``newly`` is True for the one call that confirmed it (a second one, even concurrent, gets False).
    AccountError for a bad link (see ``read_confirmation``) or, on the ``password`` field, a wrong password."""
    user = read_confirmation(token)
    if user.email_verified_at is not None:
        return user, False
    checked = user.password
    if not verify_password(checked, password or ""):
        raise AccountError(_l("This is not the password you chose when you signed up."), "password")
    newly = db.session.execute(  # and only if no newer sign-up replaced the password meanwhile
        sa.update(User)
        .where(User.id == user.id, User.email_verified_at.is_(None), User.password == checked)
        .values(email_verified_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(user)
    if not newly and user.email_verified_at is None:  # the password changed under us: this link is stale
        raise AccountError(_l("This confirmation link is not valid."))
    return user, bool(newly)


def pending_user(email: str) -> User | None:
    """The unconfirmed account of this address, if there is one (for a new confirmation link)."""
    user = db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    return user if user is not None and user.email_verified_at is None else None


def authenticate(email: str, password: str) -> User | None:
    """The user for these credentials, or None. Takes the same time whether or not the email exists.

    Raises EmailNotConfirmed for the right password of an account whose email was never confirmed.
    """
    user = db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    if not verify_password(user.password if user else None, password or ""):
        return None
    if not user.is_active or (user.client is not None and user.client.closed_at is not None):
        return None
    if user.email_verified_at is None:
        raise EmailNotConfirmed(user)
    if needs_rehash(user.password):
        user.password = hash_password(password)
    return user
