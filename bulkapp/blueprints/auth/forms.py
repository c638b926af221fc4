"""Sign-up and sign-in forms."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, TelField
from wtforms.validators import Email, InputRequired, Length, ValidationError

from bulkapp.i18n import stored_text
from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.services.accounts.users import normalise_email


class SignupForm(FlaskForm):
    business_name = StringField(_l("Business name"), validators=[InputRequired(), Length(max=120)])
    name = StringField(_l("Your name"), validators=[InputRequired(), Length(max=120)])
    email = EmailField(_l("Email"), validators=[InputRequired(), Email(), Length(max=254)], filters=[normalise_email])
    phone = TelField(_l("Phone (M-Pesa)"), validators=[InputRequired(), Length(max=20)])
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(), Length(min=8, max=128, message=_l("The password needs at least 8 characters."))],
    )

    def validate_phone(self, field):
        try:
            field.data = normalise_msisdn(field.data)
        except InvalidNumber as exc:
            raise ValidationError(stored_text(exc.reason)) from None


class ResendForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[InputRequired(), Length(max=254)])


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[InputRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=128)])


class ConfirmEmailForm(FlaskForm):
    """The confirmation link's page: the password chosen at sign-up proves the confirmer is the one who signed up."""

    password = PasswordField(
        _l("The password you chose when you signed up"),
        validators=[InputRequired(), Length(max=128)],
        render_kw={"autocomplete": "current-password"},
    )
