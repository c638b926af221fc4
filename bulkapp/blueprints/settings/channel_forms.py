"""Channel settings forms, built per provider from its declared fields (secrets as password inputs)."""

from __future__ import annotations

from flask import abort
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from bulkapp.models import Channel
from bulkapp.services.channels import validation as fields
from bulkapp.services.channels.validation import ChannelSettingsError, FormField

SAVED_SECRET = _l("•••••••• (saved)")


class ChannelForm(FlaskForm):
    """A channel's settings form; each provider's own fields are added by :func:`form_class`."""


class NewChannelForm(ChannelForm):
    provider = StringField(_l("Provider"))
    active = BooleanField(_l("Make this the active channel of its kind"), default=True)


def form_class(provider: str | None, base: type[ChannelForm], saved_secrets: set[str]) -> type[ChannelForm]:
    """``base`` plus the provider's fields. A secret never gets a value rendered back: a saved one only says so."""
    attrs: dict[str, Field] = {}
    for spec in fields.form_fields(provider) if provider else ():
        validators = [Length(max=fields.MAX_VALUE_LENGTH)]
        if spec.secret:
            placeholder = SAVED_SECRET if spec.name in saved_secrets else ""
            attrs[spec.name] = PasswordField(
                spec.label,
                validators=validators,
                description=spec.help,
                render_kw={"autocomplete": "new-password", "placeholder": placeholder},
            )
        elif spec.choices:
            choices = [SelectChoice(choice, choice) for choice in spec.choices]
            attrs[spec.name] = SelectField(spec.label, choices=choices, default=spec.default, description=spec.help)
        else:
            placeholder = "" if spec.default is None else str(spec.default)
            attrs[spec.name] = StringField(
                spec.label, validators=validators, description=spec.help, render_kw={"placeholder": placeholder}
            )
    return type("ProviderChannelForm", (base,), attrs)


def new_form(provider: str | None) -> NewChannelForm:
    return form_class(provider, NewChannelForm, set())()


def edit_form(channel: Channel) -> ChannelForm:
    """The form of an existing channel, filled with its non-secret settings; 404 for an unknown provider."""
    if not fields.is_known_provider(channel.provider):
        abort(404)
    specs = fields.form_fields(channel.provider)
    credentials = channel.credentials or {}
    saved = {spec.name for spec in specs if spec.secret and credentials.get(spec.name)}
    stored = {**(channel.config or {}), **credentials}
    data = {
        spec.name: str(stored[spec.name]) for spec in specs if not spec.secret and stored.get(spec.name) is not None
    }
    return form_class(channel.provider, ChannelForm, saved)(data=data)


def valid_provider(name: str | None) -> str | None:
    """``name`` when it is a provider a tenant can add, None when empty; 404 for anything else."""
    if not name:
        return None
    if name not in {info.name for info in fields.addable_providers()}:
        abort(404)
    return name


def provider_groups() -> dict[str, list[tuple[str, str]]]:
    """The addable providers by kind, for the provider select: ``{"SMS": [("onfon", "Onfon Media"), ...]}``."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for info in fields.addable_providers():
        groups.setdefault(fields.KIND_LABELS[info.channel], []).append((info.name, info.label))
    return groups


def field_groups(form: ChannelForm, provider: str | None) -> tuple[list, list]:
    """(main, advanced) fields of the provider as (form field, spec) pairs, in the provider's order."""
    main: list[tuple[Field, FormField]] = []
    advanced: list[tuple[Field, FormField]] = []
    for spec in fields.form_fields(provider) if provider else ():
        (advanced if spec.advanced else main).append((form[spec.name], spec))
    return main, advanced


def form_values(form: ChannelForm, provider: str) -> dict[str, object]:
    return {spec.name: form[spec.name].data for spec in fields.form_fields(provider)}


def apply_errors(form: ChannelForm, error: ChannelSettingsError) -> None:
    """Put the service's sentences on their fields; the rest (and a summary when needed) on the form."""
    for name, message in error.errors.items():
        if name in form:
            form[name].errors = [*form[name].errors, message]
        else:
            form.form_errors.append(message)
    if not error.errors or any(name not in form for name in error.errors):
        form.form_errors.insert(0, error.message)
