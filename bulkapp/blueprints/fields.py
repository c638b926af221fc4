"""Form-field helpers shared by the blueprints: ids and dates are read through :mod:`bulkapp.parsing`."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms.validators import ValidationError

from bulkapp.parsing import MAX_YEAR, MIN_YEAR, parse_date, parse_id


def any_id(value) -> int | None:
    """``coerce`` of a select of ids that takes any value: a bad or impossible id counts as none."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return parse_id(value)


def optional_id(value) -> int | None:
    """``coerce`` of a select of ids where "none" is a choice: empty is none, a bad or impossible id makes
    the field invalid (WTForms turns the ValueError into a field error)."""
    if value in (None, "", "None"):
        return None
    return required_id(value)


def required_id(value) -> int:
    """``coerce`` of a multi-select of ids: a bad or impossible id makes the field invalid."""
    parsed = any_id(value)
    if parsed is None:
        raise ValueError(f"{value!r} is not an id")
    return parsed


class YearsWithin:
    """A date (or date-time) field whose year lies in ``MIN_YEAR..MAX_YEAR``; anything else is refused
    before it reaches a time-zone conversion or a query."""

    def __init__(self, message=None) -> None:
        self.message = message or _l(
            "Choose a date between the years %(low)s and %(high)s.", low=MIN_YEAR, high=MAX_YEAR
        )

    def __call__(self, form, field) -> None:
        if field.data is not None and parse_date(field.data) is None:
            raise ValidationError(self.message)
