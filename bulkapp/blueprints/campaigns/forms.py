"""The campaign composer form."""

import uuid

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields import DateTimeLocalField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from bulkapp.blueprints.fields import YearsWithin, optional_id, required_id
from bulkapp.services.channels.routing import KIND_LABELS


class CampaignForm(FlaskForm):
    name = StringField(
        _l("Campaign name"), validators=[InputRequired(message=_l("Give the campaign a name.")), Length(max=200)]
    )
    channel = SelectField(_l("Channel"), choices=[])
    kind = SelectField(
        _l("Type"),
        choices=[
            SelectChoice("promotional", _l("Promotional (offers, news)")),
            SelectChoice("transactional", _l("Transactional (alerts, receipts)")),
        ],
        default="promotional",
    )
    sender_id = StringField(
        _l("Sender id"), validators=[Optional(), Length(max=11)], render_kw={"placeholder": _l("Default")}
    )
    # Choosing a template copies its text into the message box (static/js/app.js), where it can be edited.
    template_id = SelectField(
        _l("Template"),
        coerce=optional_id,
        validate_choice=False,
        choices=[],
        render_kw={
            "data-template-texts": "template-texts",
            "data-fills": "message",
            "data-confirm-replace": _l("Replace the message you wrote with this template's text?"),
        },
    )
    message = TextAreaField(
        _l("Message"),
        validators=[Length(max=100_000)],
        render_kw={"rows": 6, "placeholder": "Hi {{name}}, ..."},
    )
    all_contacts = BooleanField(_l("All contacts"))
    departments = SelectMultipleField(_l("Departments"), choices=[], validate_choice=False)
    contact_ids = SelectMultipleField(_l("Selected contacts"), choices=[], coerce=required_id, validate_choice=False)
    numbers = TextAreaField(
        _l("Paste numbers"),
        validators=[Length(max=200_000)],
        render_kw={"rows": 3, "placeholder": _l("0712 345 678, one per line or comma-separated")},
    )
    csv_token = HiddenField(validators=[Optional(), Length(max=32)])
    csv_filename = HiddenField(validators=[Optional(), Length(max=120)])
    csv_rows = HiddenField(validators=[Optional(), Length(max=12)])
    form_key = HiddenField(default=lambda: uuid.uuid4().hex, validators=[Length(max=64)])
    scheduled_at = DateTimeLocalField(_l("Send at"), format="%Y-%m-%dT%H:%M", validators=[Optional(), YearsWithin()])

    def set_choices(self, kinds, templates, departments, contacts) -> None:
        self.channel.choices = [SelectChoice(kind, KIND_LABELS[kind]) for kind in kinds]
        self.template_id.choices = [SelectChoice("", _l("No template"))] + [
            SelectChoice(str(tid), name) for tid, name in templates
        ]
        self.departments.choices = [SelectChoice(d, d) for d in departments]
        self.contact_ids.choices = [SelectChoice(cid, label) for cid, label in contacts]
