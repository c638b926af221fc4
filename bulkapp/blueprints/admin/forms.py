"""Admin forms: create a client, edit its account, adjust its balance by hand."""

from __future__ import annotations

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
    name = StringField("Business name", validators=[InputRequired(), Length(max=120)])
    sender_id = StringField("Sender id", validators=[Length(max=11)], render_kw={"placeholder": "e.g. PRADY_TECH"})
    price_per_unit = MoneyField(
        "Price per SMS unit (KSh)", validators=[InputRequired("Enter the price per unit.")], places=4
    )
    opening_balance = MoneyField("Opening balance (KSh)", places=2, render_kw={"placeholder": "0"})
    test_mode = BooleanField("Test mode (sandbox provider)", default=True)
    owner_name = StringField("Owner's name", validators=[Length(max=120)])
    owner_email = EmailField("Owner's email (optional)", validators=[Optional(), Email(), Length(max=254)])
    owner_password = PasswordField("Owner's first password", validators=[Length(max=128)])

    def validate_owner_password(self, field):
        if (self.owner_email.data or "").strip() and len(field.data or "") < 8:
            raise ValidationError("Give the owner a first password of at least 8 characters.")


class ClientEditForm(FlaskForm):
    name = StringField("Business name", validators=[InputRequired(), Length(max=120)])
    sender_id = StringField("Sender id", validators=[Length(max=11)])
    price_per_unit = MoneyField(
        "Price per SMS unit (KSh)", validators=[InputRequired("Enter the price per unit.")], places=4
    )
    tier = SelectField("Tier", choices=[SelectChoice(tier, tier.title()) for tier in TIERS])
    status = SelectField("Status", choices=[SelectChoice("active", "Active"), SelectChoice("suspended", "Suspended")])
    is_test_mode = BooleanField("Test mode (sandbox provider)")
    auto_sync_balance = BooleanField("Sync the Onfon balance automatically")


class AdjustmentForm(FlaskForm):
    direction = RadioField(
        "Direction",
        choices=[SelectChoice("credit", "Credit (add to the balance)"), SelectChoice("debit", "Debit (take off)")],
        default="credit",
    )
    amount = MoneyField("Amount (KSh)", validators=[InputRequired("Enter the amount.")], places=2)
    reason = TextAreaField(
        "Reason (the client sees it in their history)",
        validators=[InputRequired("Say why: the client sees this reason."), Length(max=500)],
        render_kw={"rows": 2},
    )
    reference = HiddenField()
