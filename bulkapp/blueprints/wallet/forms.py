"""Wallet forms: M-Pesa top-up, low-balance alert level and history filters."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField, TelField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from bulkapp.blueprints.fields import YearsWithin
from bulkapp.models import WALLET_STATUSES, WALLET_TYPES
from bulkapp.services.billing.ledger_views import STATUS_LABELS, TYPE_LABELS, exact_amount

QUICK_AMOUNTS = (100, 500, 1000, 2500, 5000)


def national_phone(msisdn: str | None) -> str:
    """``+254712345678`` -> ``0712 345 678`` (how people type it); anything else unchanged."""
    match = re.fullmatch(r"\+254(\d{3})(\d{3})(\d{3})", msisdn or "")
    return f"0{match[1]} {match[2]} {match[3]}" if match else (msisdn or "")


class MoneyField(StringField):
    """A KSh amount typed by a person (``1,250.50``): a Decimal, never a float, at most ``places`` decimals.

    The typed text is kept for re-rendering when it is not a valid amount.
    """

    def __init__(self, label=None, validators=None, places: int = 2, **kwargs) -> None:
        render_kw = {"inputmode": "decimal", "autocomplete": "off", **(kwargs.pop("render_kw", None) or {})}
        super().__init__(label, validators, render_kw=render_kw, **kwargs)
        self.places = places

    def process_formdata(self, valuelist):
        if not valuelist or not (valuelist[0] or "").strip():
            self.data = None
            return
        text = valuelist[0].strip().replace(",", "").replace(" ", "")
        try:
            value = Decimal(text)
        except (InvalidOperation, ValueError):
            value = None
        if value is None or not value.is_finite() or "e" in text.lower() or value.adjusted() > 20:
            self.data = None
            raise ValueError(_l("Enter an amount in shillings, for example 1500 or 99.50."))
        if value != value.quantize(Decimal(1).scaleb(-self.places)):
            self.data = None
            raise ValueError(_l("Use at most %(places)s decimal places.", places=self.places))
        self.data = value

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else exact_amount(self.data)


class TopupForm(FlaskForm):
    phone = TelField(
        _l("M-Pesa phone number"),
        validators=[Length(max=40, message=_l("That is too long for a phone number."))],
        render_kw={"autocomplete": "tel", "placeholder": "0712 345 678"},
    )
    amount = StringField(
        _l("Amount (KSh)"),
        validators=[Length(max=20, message=_l("Enter the amount in whole shillings, for example 500."))],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "placeholder": "500"},
    )


class ThresholdForm(FlaskForm):
    threshold = StringField(
        _l("Alert me when my balance falls below (KSh)"),
        validators=[Length(max=20, message=_l("Enter the amount in shillings, for example 250."))],
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )


class HistoryFilterForm(FlaskForm):
    """Read from the query string; a GET filter needs no CSRF token."""

    class Meta:
        csrf = False

    type = SelectField(
        _l("Type"),
        choices=[SelectChoice("", _l("All types"))] + [SelectChoice(t, TYPE_LABELS[t]) for t in WALLET_TYPES],
        default="",
    )
    status = SelectField(
        _l("Status"),
        choices=[SelectChoice("", _l("Any status"))] + [SelectChoice(s, STATUS_LABELS[s]) for s in WALLET_STATUSES],
        default="",
    )
    date_from = DateField(
        _l("From"),
        validators=[Optional(), YearsWithin()],
        invalid_value_message=_l("Use a date like 2026-03-31."),
    )
    date_to = DateField(
        _l("To"),
        validators=[Optional(), YearsWithin()],
        invalid_value_message=_l("Use a date like 2026-03-31."),
    )

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date is before the start date."))
