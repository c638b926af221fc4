"""Forms of the profile settings (the team's: team_forms.py)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import PasswordField, SelectField, SelectMultipleField, StringField, TelField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import EqualTo, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from bulkapp.i18n import stored_text
from bulkapp.phones import InvalidNumber, normalise_msisdn
from bulkapp.services.accounts.profiles import LANGUAGES
from bulkapp.services.notifications.notify import TYPE_LABELS


class ProfileForm(FlaskForm):
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=120)])
    phone = TelField(_l("Phone"), validators=[Optional(), Length(max=20)])
    bio = TextAreaField(_l("About you"), validators=[Optional(), Length(max=500)])
    timezone = SelectField(_l("Timezone"), choices=[])
    language = SelectField(_l("Language"), choices=[SelectChoice(value, label) for value, label in LANGUAGES])
    email_notifications = SelectMultipleField(
        _l("Also email me about"),
        choices=[SelectChoice(value, label) for value, label in TYPE_LABELS.items()],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )

    def validate_phone(self, field):
        if field.data:
            try:
                field.data = normalise_msisdn(field.data)
            except InvalidNumber as exc:
                raise ValidationError(stored_text(exc.reason)) from None


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[InputRequired()])
    new_password = PasswordField(
        _l("New password"), validators=[InputRequired(), Length(min=8, max=128, message=_l("At least 8 characters."))]
    )
    confirm = PasswordField(
        _l("Repeat the new password"), validators=[EqualTo("new_password", message=_l("The two passwords differ."))]
    )


class AvatarForm(FlaskForm):
    avatar = FileField(
        _l("Picture (PNG, JPEG, WebP or GIF, up to 2 MB)"), validators=[FileRequired(_l("Choose a picture."))]
    )
