"""Contact forms: add/edit a contact, its template fields, and the CSV upload."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional


class ContactForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Optional(), Length(max=120)])
    contact = StringField(
        _l("Phone or email"),
        validators=[InputRequired(_l("Enter a phone number or an email address.")), Length(max=254)],
    )
    department = StringField(_l("Department"), validators=[Optional(), Length(max=80)])


class ContactDetailsForm(ContactForm):
    fields = TextAreaField(_l("Template fields"), validators=[Optional(), Length(max=20_000)])


class UploadForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file to upload."))])


ROLE_CHOICES = [
    SelectChoice("phone", "Phone number (or email)"),
    SelectChoice("name", "Name"),
    SelectChoice("department", "Department"),
    SelectChoice("field", "Template variable"),
    SelectChoice("ignore", "Don't import"),
]


def make_mapping_form(columns: list[str], roles: list[str]) -> FlaskForm:
    """One ``role_<n>`` select per CSV column, preset to ``roles``."""

    class MappingForm(FlaskForm):
        pass

    for index, column in enumerate(columns):
        setattr(MappingForm, f"role_{index}", SelectField(column, choices=ROLE_CHOICES, default=roles[index]))
    return MappingForm()
