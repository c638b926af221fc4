"""Forms of Settings > Team: invitations (sending and accepting), roles, ownership and closing the account."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Email, InputRequired, Length

from bulkapp.services.accounts.roles import AGENT, MANAGER, ROLE_LABELS


def _role_choices():
    return [SelectChoice(role, ROLE_LABELS[role]) for role in (AGENT, MANAGER)]


class InviteForm(FlaskForm):
    name = StringField(_l("Their name"), validators=[InputRequired(), Length(max=120)])
    email = EmailField(_l("Their email"), validators=[InputRequired(), Email(), Length(max=254)])
    role = SelectField(_l("Role"), choices=_role_choices, default=AGENT)


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=_role_choices)


class TransferForm(FlaskForm):
    new_owner = SelectField(_l("New owner"), coerce=int, choices=[])
    password = PasswordField(_l("Your password"), validators=[InputRequired()])


class CloseAccountForm(FlaskForm):
    password = PasswordField(_l("Your password"), validators=[InputRequired()])
    confirm = StringField(_l("Type CLOSE to confirm"), validators=[InputRequired()])


class AcceptInviteForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[InputRequired(), Length(max=120)])
    password = PasswordField(
        _l("Choose a password"),
        validators=[InputRequired(), Length(min=8, max=128, message=_l("At least 8 characters."))],
    )
