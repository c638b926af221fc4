"""Admin forms: create a client, edit its account, adjust its balance by hand, assign a kept payment."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Email, InputRequired, Length, Optional, ValidationError

from bulkapp.blueprints.wallet.forms import MoneyField
from bulkapp.models import TIERS


class ClientCreateForm(FlaskForm):
    name = StringField(_l("Business name"), validators=[InputRequired(), Length(max=120)])
    sender_id = StringField(_l("Sender id"), validators=[Length(max=11)], render_kw={"placeholder": "e.g. PRADY_TECH"})
    price_per_unit = MoneyField(
        _l("Price per SMS unit (KSh)"), validators=[InputRequired(_l("Enter the price per unit."))], places=4
    )
    opening_balance = MoneyField(_l("Opening balance (KSh)"), places=2, render_kw={"placeholder": "0"})
    test_mode = BooleanField(_l("Test mode (sandbox provider)"), default=True)
    owner_name = StringField(_l("Owner's name"), validators=[Length(max=120)])
    owner_email = EmailField(_l("Owner's email (optional)"), validators=[Optional(), Email(), Length(max=254)])
    owner_password = PasswordField(_l("Owner's first password"), validators=[Length(max=128)])

    def validate_owner_password(self, field):
        if (self.owner_email.data or "").strip() and len(field.data or "") < 8:
            raise ValidationError(_l("Give the owner a first password of at least 8 characters."))


class ClientEditForm(FlaskForm):
    name = StringField(_l("Business name"), validators=[InputRequired(), Length(max=120)])
    sender_id = StringField(_l("Sender id"), validators=[Length(max=11)])
    price_per_unit = MoneyField(
        _l("Price per SMS unit (KSh)"), validators=[InputRequired(_l("Enter the price per unit."))], places=4
    )
    tier = SelectField(_l("Tier"), choices=[SelectChoice(tier, tier.title()) for tier in TIERS])
    status = SelectField(
        _l("Status"), choices=[SelectChoice("active", _l("Active")), SelectChoice("suspended", _l("Suspended"))]
    )
    is_test_mode = BooleanField(_l("Test mode (sandbox provider)"))
    auto_sync_balance = BooleanField(_l("Sync the Onfon balance automatically"))


class AdjustmentForm(FlaskForm):
    direction = RadioField(
        _l("Direction"),
        choices=[
            SelectChoice("credit", _l("Credit (add to the balance)")),
            SelectChoice("debit", _l("Debit (take off)")),
        ],
        default="credit",
    )
    amount = MoneyField(_l("Amount (KSh)"), validators=[InputRequired(_l("Enter the amount."))], places=2)
    reason = TextAreaField(
        _l("Reason (the client sees it in their history)"),
        validators=[InputRequired(_l("Say why: the client sees this reason.")), Length(max=500)],
        render_kw={"rows": 2},
    )
    reference = HiddenField()


class AssignPaymentForm(FlaskForm):
    """Credit a kept paybill payment to a tenant (once), with the reason the admin is sure of it."""

    account_number = StringField(
        _l("Tenant account number"),
        validators=[InputRequired(_l("Enter the account number of the tenant who paid.")), Length(max=64)],
        render_kw={"placeholder": "e.g. BK7XK2QM", "autocomplete": "off"},
    )
    reason = TextAreaField(
        _l("Why this tenant (kept with the payment)"),
        validators=[InputRequired(_l("Say why this payment belongs to this tenant.")), Length(max=500)],
        render_kw={"rows": 2},
    )
