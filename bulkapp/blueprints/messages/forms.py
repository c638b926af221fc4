"""The send-a-message form."""

import uuid

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from bulkapp.blueprints.fields import optional_id
from bulkapp.services.channels.routing import KIND_LABELS


class SendMessageForm(FlaskForm):
    to = StringField(
        _l("To"),
        validators=[
            InputRequired(message=_l("Enter a phone number (or an email address for email).")),
            Length(max=254),
        ],
        render_kw={"placeholder": "0712 345 678", "autocomplete": "off"},
    )
    channel = SelectField(_l("Channel"), choices=[])
    # Any id is accepted here: the service answers 404 for a template that is not the tenant's.
    template_id = SelectField(_l("Template"), coerce=optional_id, validate_choice=False, choices=[])
    subject = StringField(_l("Subject"), validators=[Optional(), Length(max=255)])
    body = TextAreaField(
        _l("Message"), validators=[Length(max=100_000)], render_kw={"rows": 5, "placeholder": _l("Type your message")}
    )
    append_reply_link = BooleanField(_l("Add a reply link"), default=True)
    idempotency_key = HiddenField(default=lambda: uuid.uuid4().hex, validators=[Length(max=64)])

    def set_choices(self, kinds: list[str], templates: list[tuple[int, str]]) -> None:
        self.channel.choices = [SelectChoice(kind, KIND_LABELS[kind]) for kind in kinds]
        self.template_id.choices = [SelectChoice("", _l("No template"))] + [
            SelectChoice(str(tid), name) for tid, name in templates
        ]
