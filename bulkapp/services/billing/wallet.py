"""The wallet ledger: the only code that changes a tenant's balance."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from bulkapp.columns import to_decimal
from bulkapp.extensions import db
from bulkapp.i18n import N_, stored_sentences
from bulkapp.models import Client, WalletTransaction
from bulkapp.services.notifications.events import record_event
from bulkapp.services.notifications.notify import notify

REFERENCE_MAX = 120  # wallet_transactions.reference
RELEASE_SUFFIX = ":release"
DEFAULT_LOW_BALANCE_THRESHOLD = Decimal("100.00")

# What a ledger row says: stored in English (``description``), shown in the reader's language by the wallet
# history and the admin ledger (i18n.stored_text). Each is the exact English its writer stores.
(
    MPESA_TOPUP,  # services/billing/topups.py
    PAYBILL_PAYMENT,  # services/billing/paybill.py
    UNUSED_PART_OF_HOLD,  # settle_hold
    REFUND_NOT_DELIVERED,  # services/messaging/delivery.py
    REFUND_NOT_SENT,  # services/messaging/dispatch.py
    CAMPAIGN_HOLD_ONE,  # services/campaigns/launch.py
    CAMPAIGN_HOLD,  # services/campaigns/launch.py
    CAMPAIGN_UNUSED_PART,  # services/campaigns/launch.py
) = stored_sentences(
    N_("M-Pesa top-up"),
    N_("M-Pesa paybill payment %(receipt)s"),
    N_("Unused part of hold %(reference)s"),
    N_("Refund: message to %(recipient)s was not delivered"),
    N_("Refund: message to %(recipient)s was not sent"),
    N_("Campaign “%(name)s”: 1 recipient"),
    N_("Campaign “%(name)s”: %(count)s recipients"),
    N_("Campaign “%(name)s”: unused part"),
)
# A single message's charge (services/messaging/compose.py), by channel kind: one unit, several units.
MESSAGE_CHARGES = {
    "sms": (N_("SMS to %(recipient)s (1 unit)"), N_("SMS to %(recipient)s (%(units)s units)")),
    "whatsapp": (N_("WhatsApp to %(recipient)s (1 unit)"), N_("WhatsApp to %(recipient)s (%(units)s units)")),
    "email": (N_("email to %(recipient)s (1 unit)"), N_("email to %(recipient)s (%(units)s units)")),
}
stored_sentences(*(sentence for pair in MESSAGE_CHARGES.values() for sentence in pair))


class WalletError(Exception):
    """Base class of wallet domain errors."""


class InsufficientBalance(WalletError):
    def __init__(self, client_id: int, amount: Decimal) -> None:
        super().__init__(f"insufficient balance: {amount} KSH needed")
        self.client_id = client_id
        self.amount = amount


class ReferenceConflict(WalletError):
    """The reference already names a different change (another tenant, amount or type): not a replay."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"reference {reference!r} was already used for a different wallet change")
        self.reference = reference


class UnknownHold(WalletError):
    """No hold with this reference exists for this tenant."""

    def __init__(self, client_id: int, reference: str) -> None:
        super().__init__(f"no hold {reference!r} for client {client_id}")
        self.client_id = client_id
        self.reference = reference


class HoldExceeded(WalletError):
    """A settlement claimed more than the hold reserved."""

    def __init__(self, reference: str, held: Decimal, spent: Decimal) -> None:
        super().__init__(f"hold {reference!r} reserved {held} KSH; {spent} KSH cannot be settled against it")
        self.reference = reference
        self.held = held
        self.spent = spent


def find_transaction(reference: str) -> WalletTransaction | None:
    return db.session.scalar(sa.select(WalletTransaction).where(WalletTransaction.reference == reference))


def _insert_ignoring_duplicates(values: dict[str, Any]) -> WalletTransaction | None:
    """INSERT the ledger row unless its reference exists (ON CONFLICT DO NOTHING on both backends)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(WalletTransaction)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["reference"])
        .returning(WalletTransaction)
    )
    return db.session.scalars(statement).one_or_none()


def apply_change(
    client_id: int,
    delta,
    *,
    type: str,
    reference: str,
    description: str = "",
    mpesa_reference: str | None = None,
    meta: dict[str, Any] | None = None,
) -> WalletTransaction:
    """Move ``delta`` KSH (signed) into the balance and write its ledger row, exactly once per reference.

    One conditional UPDATE (``balance + delta >= 0``) and one ``wallet_transactions`` row in the caller's
    transaction. A reference seen before returns the existing row and leaves the balance as it was; the
    same reference for a different change (tenant, amount, type) raises :class:`ReferenceConflict`. A
    debit larger than the balance raises :class:`InsufficientBalance` and writes nothing. A change that
    takes the balance below the tenant's low-balance threshold notifies the tenant once (see
    :func:`low_balance_threshold`).
    """
    delta = to_decimal(delta)
    changed = db.session.execute(
        sa.update(Client)
        .where(Client.id == client_id, Client.balance + delta >= Decimal(0))
        .values(balance=Client.balance + delta)
        .returning(Client.balance, Client.settings)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if changed is None:
        existing = find_transaction(reference)
        if existing is not None:
            return _same_change(existing, client_id, delta, type)
        raise InsufficientBalance(client_id, -delta)
    after, settings = changed
    row = _insert_ignoring_duplicates(
        {
            "client_id": client_id,
            "type": type,
            "amount": delta,
            "balance_before": after - delta,
            "balance_after": after,
            "reference": reference,
            "mpesa_reference": mpesa_reference,
            "description": description,
            "status": "completed",
            "meta": meta or {},
        }
    )
    if row is None:
        # The reference was recorded before (or by a concurrent writer, whose commit we waited for):
        # undo our change inside this same transaction, so the one effect is theirs.
        after = db.session.execute(
            sa.update(Client)
            .where(Client.id == client_id)
            .values(balance=Client.balance - delta)
            .returning(Client.balance)
            .execution_options(synchronize_session=False)
        ).scalar_one()
        _sync_cached_balance(client_id, after)
        return _same_change(find_transaction(reference), client_id, delta, type)
    _sync_cached_balance(client_id, after)
    _alert_on_low_balance(client_id, after - delta, after, settings, reference)
    return row


def _same_change(existing: WalletTransaction, client_id: int, delta: Decimal, type: str) -> WalletTransaction:
    """A replay returns the recorded row; the same reference for a different change is a caller's bug
    (so is reusing the reference of a pending row: its money was never applied)."""
    recorded = (existing.client_id, existing.amount, existing.type, existing.status)
    if recorded != (client_id, delta, type, "completed"):
        raise ReferenceConflict(existing.reference)
    return existing


def low_balance_threshold(settings: dict[str, Any] | None) -> Decimal:
    """The tenant's alert level, ``settings["low_balance_threshold"]`` (default 100.00 KSH; 0 turns it off).

    An unreadable value falls back to the default: a bad setting must never stop a charge.
    """
    raw = (settings or {}).get("low_balance_threshold")
    if raw is None or isinstance(raw, bool):
        return DEFAULT_LOW_BALANCE_THRESHOLD
    try:
        threshold = to_decimal(str(raw))
    except (InvalidOperation, ValueError):
        return DEFAULT_LOW_BALANCE_THRESHOLD
    return threshold if threshold.is_finite() else DEFAULT_LOW_BALANCE_THRESHOLD


def _alert_on_low_balance(
    client_id: int, before: Decimal, after: Decimal, settings: dict[str, Any] | None, reference: str
) -> None:
    """Notify once per downward crossing of the threshold; a later rise back to it re-arms the alert.

    ``before`` and ``after`` come from the row-locked UPDATE, so concurrent debits see distinct,
    consecutive balances and exactly one of them crosses.
    """
    threshold = low_balance_threshold(settings)
    if not (before >= threshold > after):
        return
    balance, level = _ksh(after), _ksh(threshold)
    notify(
        client_id,
        "low_balance",
        "low_balance",
        {"balance": balance, "threshold": level},
        data={"balance": balance, "threshold": level, "reference": reference},
    )
    record_event(
        client_id,
        "wallet.low_balance",
        {"balance": balance, "threshold": level, "currency": "KES", "reference": reference},
    )


def _ksh(amount: Decimal) -> str:
    """Two-decimal KSH for people; rounded down so a balance is never overstated."""
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def _sync_cached_balance(client_id: int, balance: Decimal) -> None:
    """Keep a loaded Client's balance attribute in step without another query."""
    client = db.session.identity_map.get(identity_key(Client, client_id))
    if client is not None:
        set_committed_value(client, "balance", balance)


def credit(client_id: int, amount, *, reference: str, description: str = "", type: str = "topup", **kw):
    """Add a positive amount (top-up, refund, release, credit adjustment)."""
    amount = to_decimal(amount)
    if amount <= 0:
        raise ValueError("credit amount must be positive")
    return apply_change(client_id, amount, type=type, reference=reference, description=description, **kw)


def debit(client_id: int, amount, *, reference: str, description: str = "", type: str = "deduction", **kw):
    """Take a positive amount off the balance, or raise InsufficientBalance."""
    amount = to_decimal(amount)
    if amount <= 0:
        raise ValueError("debit amount must be positive")
    return apply_change(client_id, -amount, type=type, reference=reference, description=description, **kw)


def refund(
    client_id: int, amount, *, reference: str, description: str = "", meta: dict[str, Any] | None = None
) -> WalletTransaction:
    """Give back a positive amount charged for something that was not delivered (type ``refund``).

    Idempotent per ``reference``: use one reference per refunded thing, e.g. ``refund:message:<id>``.
    """
    return credit(client_id, amount, reference=reference, description=description, type="refund", meta=meta)


def adjust(
    client_id: int, amount, *, reason: str, actor_id: int, reference: str, meta: dict[str, Any] | None = None
) -> WalletTransaction:
    """An admin's signed correction of the balance (type ``adjustment``), with its reason and author.

    ``amount`` is non-zero: positive adds, negative removes (and raises :class:`InsufficientBalance`
    rather than go below zero). ``reason`` is required and becomes the description; ``actor_id`` (the
    admin's user id) and the reason are kept in ``meta``. ``reference`` makes a double submit harmless:
    generate one per form, e.g. ``adjust:<uuid4>``.
    """
    amount = to_decimal(amount)
    if amount == 0:
        raise ValueError("an adjustment must change the balance")
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("an adjustment needs a reason")
    details = {**(meta or {}), "reason": reason, "actor_id": actor_id}
    return apply_change(client_id, amount, type="adjustment", reference=reference, description=reason, meta=details)


def hold(
    client_id: int, amount, reference: str, description: str = "", *, meta: dict[str, Any] | None = None
) -> WalletTransaction:
    """Reserve ``amount`` for work about to happen (a campaign's quote): a completed, negative ``hold`` row.

    The reserved money leaves the balance at once, so the balance is always what is still spendable.
    Raises :class:`InsufficientBalance` (writing nothing) when the balance is short. Idempotent per
    ``reference``. Every hold is later closed by :func:`settle_hold`.
    """
    amount = to_decimal(amount)
    if amount <= 0:
        raise ValueError("hold amount must be positive")
    if len(reference) + len(RELEASE_SUFFIX) > REFERENCE_MAX:
        raise ValueError(f"hold references are at most {REFERENCE_MAX - len(RELEASE_SUFFIX)} characters")
    return apply_change(client_id, -amount, type="hold", reference=reference, description=description, meta=meta)


def settlement_reference(hold_reference: str) -> str:
    """The reference of the ``release`` row that settles a hold (at most one per hold)."""
    return hold_reference + RELEASE_SUFFIX


def settle_hold(client_id: int, hold_reference: str, spent, *, description: str = "") -> WalletTransaction:
    """Close a hold: keep ``spent`` (0 <= spent <= held) and give back the rest as a ``release`` row.

    Settlement is final and happens once: the release row (reference ``<hold_reference>:release``,
    amount ``held - spent``, possibly 0, with ``held`` and ``spent`` in ``meta``) marks the hold closed.
    Settling again returns that first row and changes nothing, whatever ``spent`` it is given; what was
    spent is recorded by the caller elsewhere (messages), not posted to the ledger per batch. Raises
    :class:`UnknownHold` for a reference that is not this tenant's hold and :class:`HoldExceeded` when
    ``spent`` is more than was held (nothing is written then).
    """
    spent = to_decimal(spent)
    if spent < 0:
        raise ValueError("spent cannot be negative")
    held_row = find_transaction(hold_reference)
    if held_row is None or held_row.client_id != client_id or held_row.type != "hold":
        raise UnknownHold(client_id, hold_reference)
    reference = settlement_reference(hold_reference)
    settled = find_transaction(reference)
    if settled is not None:
        return settled
    held = -held_row.amount
    if spent > held:
        raise HoldExceeded(hold_reference, held, spent)
    try:
        return apply_change(
            client_id,
            held - spent,
            type="release",
            reference=reference,
            description=description or UNUSED_PART_OF_HOLD % {"reference": hold_reference},
            meta={"hold_reference": hold_reference, "held": str(held), "spent": str(spent)},
        )
    except ReferenceConflict:
        # A concurrent settlement with another ``spent`` committed first: the first settlement stands.
        settled = find_transaction(reference)
        if settled is None or settled.client_id != client_id or settled.type != "release":
            raise
        return settled


def complete_pending(
    transaction_id: int, *, mpesa_reference: str | None = None, meta: dict[str, Any] | None = None
) -> WalletTransaction | None:
    """Apply a ``pending`` credit row (an STK top-up waiting for its callback) to the balance, once.

    The ``pending -> completed`` UPDATE is conditional, so of two concurrent callers only one moves the
    balance; it also stores ``mpesa_reference``, merges ``meta`` and fills in before/after. Returns the
    completed row, or ``None`` (nothing changed) when the row is not pending or not a positive amount.
    """
    client_id = db.session.scalar(sa.select(WalletTransaction.client_id).where(WalletTransaction.id == transaction_id))
    if client_id is None:
        return None
    # Tenant row first, then the ledger row: the lock order of every wallet path, so none can deadlock.
    db.session.execute(sa.select(Client.id).where(Client.id == client_id).with_for_update())
    row = db.session.scalars(
        sa.select(WalletTransaction)
        .where(WalletTransaction.id == transaction_id)
        .execution_options(populate_existing=True)
    ).one()
    claimed = db.session.execute(
        sa.update(WalletTransaction)
        .where(
            WalletTransaction.id == transaction_id, WalletTransaction.status == "pending", WalletTransaction.amount > 0
        )
        .values(status="completed", mpesa_reference=mpesa_reference, meta={**(row.meta or {}), **(meta or {})})
        .returning(WalletTransaction.client_id, WalletTransaction.amount)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if claimed is None:
        return None
    client_id, amount = claimed
    after = db.session.execute(
        sa.update(Client)
        .where(Client.id == client_id)
        .values(balance=Client.balance + amount)
        .returning(Client.balance)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    db.session.execute(
        sa.update(WalletTransaction)
        .where(WalletTransaction.id == transaction_id)
        .values(balance_before=after - amount, balance_after=after)
        .execution_options(synchronize_session=False)
    )
    _sync_cached_balance(client_id, after)
    db.session.refresh(row)
    return row


def ledger_sum(client_id: int) -> Decimal:
    """Sum of the completed ledger rows; always equals the balance."""
    rows = db.session.scalars(
        sa.select(WalletTransaction.amount).where(
            WalletTransaction.client_id == client_id, WalletTransaction.status == "completed"
        )
    )
    return sum(rows, Decimal("0.0000"))
