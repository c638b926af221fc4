"""Forms of the password reset and email change pages."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import InputRequired, Length

from bulkapp.services.accounts.users import normalise_email


class ForgotForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[InputRequired(), Length(max=254)], filters=[normalise_email])


class ResetForm(FlaskForm):
    password = PasswordField(
        _l("New password"), validators=[InputRequired()], render_kw={"autocomplete": "new-password"}
    )
    confirm = PasswordField(
        _l("New password again"), validators=[InputRequired()], render_kw={"autocomplete": "new-password"}
    )


class EmailChangeForm(FlaskForm):
    email = EmailField(_l("New email address"), validators=[InputRequired(), Length(max=254)])
    password = PasswordField(
        _l("Your current password"),
        validators=[InputRequired(), Length(max=128)],
        render_kw={"autocomplete": "current-password"},
    )


class ConfirmChangeForm(FlaskForm):
    """A button: opening the emailed link alone (a mail scanner) changes nothing."""
