"""A tenant's own wallet settings: the low-balance alert level."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from bulkapp.extensions import db
from bulkapp.models import Client
from bulkapp.services.billing.wallet import low_balance_threshold

MAX_THRESHOLD = Decimal("1000000")


class WalletSettingError(ValueError):
    """A setting that cannot be saved; the message is a sentence for the user (lazy: in their language)."""


def current_threshold(client: Client) -> Decimal:
    """The level below which the tenant is alerted (what the wallet service applies)."""
    return low_balance_threshold(client.settings)


def set_low_balance_threshold(client_id: int, threshold: Decimal | str | int) -> Decimal:
    """Store ``clients.settings["low_balance_threshold"]`` as a two-decimal string; 0 turns alerts off.

    Raises :class:`WalletSettingError` for a negative, non-numeric, over-precise or huge value. The
    tenant row is locked while its settings are rewritten, so a concurrent change to another setting
    is not lost. Flushes; the caller commits.
    """
    if isinstance(threshold, (bool, float)):
        raise WalletSettingError(_l("Enter the amount in shillings, for example 250 or 99.50."))
    text = str(threshold).strip().replace(",", "")
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        raise WalletSettingError(_l("Enter the amount in shillings, for example 250 or 99.50.")) from None
    if not value.is_finite() or "e" in text.lower():
        raise WalletSettingError(_l("Enter the amount in shillings, for example 250 or 99.50."))
    if value < 0:
        raise WalletSettingError(_l("The alert level cannot be negative. Use 0 to turn alerts off."))
    if value > MAX_THRESHOLD:
        raise WalletSettingError(_l("The alert level can be at most KSh %(max)s.", max=f"{MAX_THRESHOLD:,}"))
    if value != value.quantize(Decimal("0.01")):
        raise WalletSettingError(_l("Use at most two decimal places (cents)."))
    client = db.session.scalars(
        sa.select(Client).where(Client.id == client_id).with_for_update().execution_options(populate_existing=True)
    ).one()
    client.settings = {**(client.settings or {}), "low_balance_threshold": f"{value:.2f}"}
    db.session.flush()
    return value.quantize(Decimal("0.01"))
