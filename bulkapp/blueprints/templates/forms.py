"""The template editor form."""

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

CHANNEL_CHOICES = [SelectChoice("sms", "SMS"), SelectChoice("whatsapp", "WhatsApp"), SelectChoice("email", "Email")]


class TemplateForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired("Give the template a name."), Length(max=120)])
    channel = SelectField("Channel", choices=CHANNEL_CHOICES, default="sms")
    content = TextAreaField("Message", validators=[InputRequired("Write the message."), Length(max=100_000)])
    whatsapp_template_id = StringField("WhatsApp template name", validators=[Optional(), Length(max=120)])
