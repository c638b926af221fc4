"""Platform admin work on tenants: create, edit, and correct a balance by hand."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from bulkapp.columns import to_decimal
from bulkapp.extensions import db
from bulkapp.models import TIERS, Client, User, WalletTransaction
from bulkapp.services.accounts.users import AccountError, create_client, create_user, tenant_owner
from bulkapp.services.billing import wallet

SENDER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{1,10}")
ADJUSTMENT_REFERENCE = re.compile(r"adjust:[0-9a-f]{32}")
MAX_PRICE_PER_UNIT = Decimal("1000")
MAX_ADJUSTMENT = Decimal("10000000")


class ClientAdminError(ValueError):
    """A change an admin asked for that cannot be made; ``field`` names the form input when there is one.
    ``message`` is lazy: it reads in the admin's language where it is shown."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Adjustment:
    transaction: WalletTransaction
    replayed: bool  # the same form was submitted before: nothing changed this time


def new_adjustment_reference() -> str:
    """The reference an adjustment form carries from the moment it is shown, so a double submit is one."""
    return f"adjust:{uuid.uuid4().hex}"


def clean_sender_id(sender_id: str | None) -> str | None:
    """3 to 11 letters, digits, spaces or ``_ . -`` (an alphanumeric sender id), or None when blank."""
    text = (sender_id or "").strip()
    if not text:
        return None
    if not SENDER_ID_PATTERN.fullmatch(text):
        raise ClientAdminError(
            _l("A sender id is 3 to 11 letters or digits (spaces, _ . - allowed), e.g. PRADY_TECH."), "sender_id"
        )
    return text


def _price(price_per_unit) -> Decimal:
    price = to_decimal(price_per_unit)
    if price <= 0 or price > MAX_PRICE_PER_UNIT:
        raise ClientAdminError(
            _l("The price per unit must be above 0 and at most KSh %(max)s.", max=f"{MAX_PRICE_PER_UNIT:,}"),
            "price_per_unit",
        )
    return price


def create_client_account(
    name: str,
    *,
    sender_id: str | None,
    price_per_unit,
    opening_balance=0,
    test_mode: bool = True,
    owner_name: str | None = None,
    owner_email: str | None = None,
    owner_password: str | None = None,
) -> Client:
    """A new tenant (API key, paybill account number, sandbox SMS channel, opening balance through the
    ledger) and, when an email is given, its first user. Raises :class:`ClientAdminError`. Flushes."""
    sender = clean_sender_id(sender_id)
    price = _price(price_per_unit)
    opening = to_decimal(opening_balance or 0)
    if opening < 0 or opening > MAX_ADJUSTMENT:
        raise ClientAdminError(
            _l("The opening balance must be between 0 and KSh %(max)s.", max=f"{MAX_ADJUSTMENT:,}"), "opening_balance"
        )
    try:
        client, _api_key = create_client(
            name, sender_id=sender, balance=opening, price_per_unit=price, test_mode=test_mode
        )
        if owner_email and owner_email.strip():
            create_user(owner_email, owner_password or "", name=owner_name or None, client_id=client.id)
    except AccountError as exc:
        field = {"business_name": "name", "email": "owner_email", "password": "owner_password"}.get(exc.field or "")
        raise ClientAdminError(exc.args[0], field) from None  # the lazy text, shown in the admin's language
    return client


def update_client(
    client_id: int,
    *,
    name: str,
    sender_id: str | None,
    price_per_unit,
    tier: str,
    active: bool,
    test_mode: bool,
    auto_sync_balance: bool,
) -> dict[str, dict]:
    """Change a tenant's account settings (never its balance: see :func:`adjust_balance`). Flushes. Returns what
    changed, ``{setting: {"before": ..., "after": ...}}`` (empty when nothing did), for the audit log."""
    client = db.session.get(Client, client_id)
    if client is None:
        raise ClientAdminError(_l("This client does not exist."))
    before = _settings(client)
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ClientAdminError(_l("A name of 1 to 120 characters is required."), "name")
    if tier not in TIERS:
        raise ClientAdminError(_l("The tier is one of %(tiers)s.", tiers=", ".join(TIERS)), "tier")
    if client.is_test_mode and not test_mode and not _owner_verified(client.id):
        raise ClientAdminError(_l("The account cannot go live until its owner has confirmed their email address."))
    client.name = name
    client.sender_id = clean_sender_id(sender_id)
    client.price_per_unit = _price(price_per_unit)
    client.tier = tier
    client.status = bool(active)
    client.is_test_mode = bool(test_mode)
    client.auto_sync_balance = bool(auto_sync_balance)
    db.session.flush()
    after = _settings(client)
    return {key: {"before": before[key], "after": value} for key, value in after.items() if value != before[key]}


def _settings(client: Client) -> dict:
    """The settings :func:`update_client` changes, as the audit log keeps them."""
    return {
        "name": client.name,
        "sender_id": client.sender_id,
        "price_per_unit": str(client.price_per_unit),
        "tier": client.tier,
        "active": bool(client.status),
        "test_mode": bool(client.is_test_mode),
        "auto_sync_balance": bool(client.auto_sync_balance),
    }


def _owner_verified(client_id: int) -> bool:
    """Whether the tenant's owner has confirmed their email address (going live requires it)."""
    owner = tenant_owner(client_id)
    return owner is not None and owner.is_active_user and owner.email_verified_at is not None


def adjust_balance(client_id: int, *, direction: str, amount, reason: str, actor: User, reference: str) -> Adjustment:
    """Credit or debit a tenant by hand with a required reason, exactly once per form ``reference``.

    Goes through :func:`bulkapp.services.billing.wallet.adjust` (an ``adjustment`` row the tenant sees with its
    reason). A repeat of the same form returns the first row with ``replayed=True``. Raises
    :class:`ClientAdminError` for a bad amount, a missing reason, a debit larger than the balance, or a
    reference reused for different values. Flushes; the caller commits.
    """
    if direction not in ("credit", "debit"):
        raise ClientAdminError(_l("Choose credit or debit."), "direction")
    if not ADJUSTMENT_REFERENCE.fullmatch(reference or ""):
        raise ClientAdminError(_l("This form is out of date. Reload the page and try again."))
    amount = to_decimal(amount)
    if amount <= 0 or amount > MAX_ADJUSTMENT:
        raise ClientAdminError(
            _l("Enter an amount above 0 and at most KSh %(max)s.", max=f"{MAX_ADJUSTMENT:,}"), "amount"
        )
    reason = (reason or "").strip()
    if not reason:
        raise ClientAdminError(_l("Say why: the client sees this reason in their history."), "reason")
    client = db.session.get(Client, client_id)
    if client is None:
        raise ClientAdminError(_l("This client does not exist."))
    signed = amount if direction == "credit" else -amount
    replayed = wallet.find_transaction(reference) is not None
    try:
        row = wallet.adjust(client_id, signed, reason=reason, actor_id=actor.id, reference=reference,
                            meta={"actor_email": actor.email})  # fmt: skip
    except wallet.InsufficientBalance:
        balance = client.balance
        raise ClientAdminError(
            _l(
                "The balance is only KSh %(balance)s, so KSh %(amount)s cannot be taken off: "
                "a balance never goes below zero.",
                balance=f"{balance:,.2f}",
                amount=f"{amount:,.2f}",
            ),
            "amount",
        ) from None
    except wallet.ReferenceConflict:
        raise ClientAdminError(
            _l("This form was already submitted with different values. Reload the page to make another adjustment.")
        ) from None
    return Adjustment(transaction=row, replayed=replayed)
