"""The reply composer of a conversation."""

import uuid

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from bulkapp.blueprints.fields import any_id


class ReplyForm(FlaskForm):
    body = TextAreaField(
        _l("Reply"), validators=[Length(max=100_000)], render_kw={"rows": 3, "placeholder": _l("Write a reply (r)")}
    )
    # Any id is accepted here: the service only uses the tenant's own templates.
    template_id = SelectField(_l("Template"), coerce=any_id, validate_choice=False, choices=[])
    idempotency_key = HiddenField(default=lambda: uuid.uuid4().hex, validators=[Length(max=64)])

    def set_templates(self, templates) -> None:
        self.template_id.choices = [SelectChoice("", _l("No template"))] + [
            SelectChoice(str(t.id), t.name) for t in templates
        ]
