"""Forms of the profile and team settings."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import EmailField, PasswordField, SelectField, SelectMultipleField, StringField, TelField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Email, EqualTo, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from bulkapp.services.notifications import TYPE_LABELS
from bulkapp.services.phones import InvalidNumber, normalise_msisdn
from bulkapp.services.profiles import LANGUAGES


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=120)])
    phone = TelField("Phone", validators=[Optional(), Length(max=20)])
    bio = TextAreaField("About you", validators=[Optional(), Length(max=500)])
    timezone = SelectField("Timezone", choices=[])
    language = SelectField("Language", choices=[SelectChoice(value, label) for value, label in LANGUAGES])
    email_notifications = SelectMultipleField(
        "Also email me about",
        choices=[SelectChoice(value, label) for value, label in TYPE_LABELS.items()],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )

    def validate_phone(self, field):
        if field.data:
            try:
                field.data = normalise_msisdn(field.data)
            except InvalidNumber as exc:
                raise ValidationError(exc.reason) from None


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[InputRequired()])
    new_password = PasswordField(
        "New password", validators=[InputRequired(), Length(min=8, max=128, message="At least 8 characters.")]
    )
    confirm = PasswordField(
        "Repeat the new password", validators=[EqualTo("new_password", message="The two passwords differ.")]
    )


class AvatarForm(FlaskForm):
    avatar = FileField("Picture (PNG, JPEG, WebP or GIF, up to 2 MB)", validators=[FileRequired("Choose a picture.")])


class InviteForm(FlaskForm):
    name = StringField("Their name", validators=[InputRequired(), Length(max=120)])
    email = EmailField("Their email", validators=[InputRequired(), Email(), Length(max=254)])


class AcceptInviteForm(FlaskForm):
    name = StringField("Your name", validators=[InputRequired(), Length(max=120)])
    password = PasswordField(
        "Choose a password", validators=[InputRequired(), Length(min=8, max=128, message="At least 8 characters.")]
    )
