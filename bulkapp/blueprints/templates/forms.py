"""The template editor form."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

CHANNEL_CHOICES = [SelectChoice("sms", "SMS"), SelectChoice("whatsapp", "WhatsApp"), SelectChoice("email", "Email")]


class TemplateForm(FlaskForm):
    name = StringField(_l("Name"), validators=[InputRequired(_l("Give the template a name.")), Length(max=120)])
    channel = SelectField(_l("Channel"), choices=CHANNEL_CHOICES, default="sms")
    content = TextAreaField(_l("Message"), validators=[InputRequired(_l("Write the message.")), Length(max=100_000)])
    whatsapp_template_id = StringField(_l("WhatsApp template name"), validators=[Optional(), Length(max=120)])
    whatsapp_language = StringField(_l("WhatsApp template language"), default="en", validators=[Length(max=16)])
