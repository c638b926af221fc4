"""Message templates: {{variable}} detection, rendering with contact or sample values, and saving per channel."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from bulkapp.extensions import db
from bulkapp.models import CHANNELS, Contact, Template
from bulkapp.services.billing import pricing

# {{name}}, {{order.id}} or {{ name | fallback }}; WhatsApp Cloud templates number theirs: {{1}}.
VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*(?:\|([^{}]*))?\}\}")
_ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
CONTENT_LIMITS = {"sms": 1600, "whatsapp": 4096, "email": 100_000}
NAME_LIMIT = 120
WHATSAPP_ID = re.compile(r"[A-Za-z0-9_.:-]{1,120}")
# Meta's template language codes: a language (en, sw, fil), optionally with a region (en_US, pt_BR, zh_HK).
WHATSAPP_LANGUAGE = re.compile(r"([a-z]{2,3})(?:_([A-Z]{2}))?")
DEFAULT_WHATSAPP_LANGUAGE = "en"
# Offered on the template form (any other valid code can be typed).
COMMON_WHATSAPP_LANGUAGES = ("en", "en_US", "en_GB", "sw", "fr", "ar", "pt_BR", "es", "hi", "zh_CN", "am", "so")
# Values every contact has; a contact's own fields add to them.
CONTACT_VARIABLES = ("name", "first_name", "phone", "contact", "department")
SAMPLE_VALUES = {
    "name": "Wanjiru Kamau",
    "first_name": "Wanjiru",
    "phone": "+254712345678",
    "contact": "+254712345678",
    "department": "Customers",
}
_HOLE = "\ue000"  # private-use character marking a blank variable while the text is tidied


class TemplateError(ValueError):
    """Invalid template input; ``field`` names the form field the ``message`` belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class MissingVariables(ValueError):
    """Raised by ``render_template_text(..., strict=True)``; ``missing`` lists the variables with no value."""

    def __init__(self, missing: tuple[str, ...]) -> None:
        super().__init__("no value for " + ", ".join("{{" + name + "}}" for name in missing))
        self.missing = missing


@dataclass(frozen=True)
class Rendered:
    text: str
    missing: tuple[str, ...]  # variables that had neither a value nor a fallback


def detect_variables(content: str) -> list[str]:
    """The variable names in ``content``, lower-cased, in order of first appearance, without repeats."""
    seen: dict[str, None] = {}
    for match in VARIABLE.finditer(content or ""):
        seen.setdefault(match.group(1).lower())
    return list(seen)


def placeholder_problems(content: str) -> list[str]:
    """Sentences about ``{{...}}`` that are not valid variables (spaces, missing braces), in the reader's language
    when shown."""
    problems = []
    for match in _ANY_PLACEHOLDER.finditer(content or ""):
        if not VARIABLE.fullmatch(match.group(0)):
            problems.append(
                _l(
                    "“%(placeholder)s” is not a valid variable: use letters, digits, underscores, dots or dashes, "
                    "e.g. {{first_name}}.",
                    placeholder=match.group(0),
                )
            )
    stripped = _ANY_PLACEHOLDER.sub("", content or "")
    if "{{" in stripped:
        problems.append(_l("A “{{” has no closing “}}”."))
    return problems


def _lookup(variables: Mapping[str, Any]) -> dict[str, str]:
    values = {}
    for key, value in (variables or {}).items():
        text = "" if value is None else str(value).strip()
        if text:
            values[str(key).lower()] = text
    return values


def render(content: str, variables: Mapping[str, Any]) -> Rendered:
    """Fill ``{{name}}`` placeholders from ``variables`` (keys matched case-insensitively).

    A variable without a value uses its fallback (``{{name|customer}}``); with no fallback it is left
    out, the space or punctuation around it tidied (``"Hello {{name}}, hi"`` -> ``"Hello, hi"``), and
    it is listed in ``missing``.
    """
    values = _lookup(variables)
    missing: dict[str, None] = {}

    def fill(match: re.Match) -> str:
        key = match.group(1).lower()
        if key in values:
            return values[key]
        fallback = (match.group(2) or "").strip()
        if fallback:
            return fallback
        missing.setdefault(key)
        return _HOLE

    text = VARIABLE.sub(fill, content or "")
    if missing:
        text = _tidy(text)
    return Rendered(text=text, missing=tuple(missing))


def _tidy(text: str) -> str:
    text = re.sub(rf"[ \t]*{_HOLE}(?=[ \t]*[,.!?;:])", "", text)  # "Hello {{name}}, ..." -> "Hello, ..."
    text = re.sub(rf"[ \t]+{_HOLE}(?=[ \t])", "", text)  # "Order {{id}} is" -> "Order is"
    text = re.sub(rf"(?m)^{_HOLE}[ \t]*", "", text)  # at the start of a line
    text = re.sub(rf"[ \t]*{_HOLE}", "", text)  # at the end, or touching other text
    return text


def render_template_text(content: str, variables: Mapping[str, Any], *, strict: bool = False) -> str:
    """The text of ``content`` for one recipient (see :func:`render`). For the send pipeline and campaigns.

    Missing variables use their ``{{var|fallback}}`` or are left out with the text tidied; with
    ``strict=True`` they raise :class:`MissingVariables` instead (its ``missing`` names them), so a
    caller can skip or flag that recipient.
    """
    result = render(content, variables)
    if strict and result.missing:
        raise MissingVariables(result.missing)
    return result.text


def contact_variables(contact: Contact) -> dict[str, str]:
    """The values a template can use for ``contact``: name, first_name, phone (also ``contact``), department
    and its own fields."""
    values = {str(k).lower(): "" if v is None else str(v) for k, v in (contact.fields or {}).items()}
    name = (contact.name or "").strip()
    values.update(
        name=name,
        first_name=name.split()[0] if name else "",
        phone=contact.contact,
        contact=contact.contact,
        department=contact.department or "",
    )
    return values


def sample_values(variables: list[str], given: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Sample values for a preview: what the user typed, else a realistic default, else ``[variable]``."""
    given = _lookup(given or {})
    return {var: given.get(var) or SAMPLE_VALUES.get(var) or f"[{var}]" for var in variables}


@dataclass(frozen=True)
class Preview:
    text: str
    channel: str
    variables: list[str]
    missing: tuple[str, ...]
    characters: int
    limit: int
    quote: pricing.Quote | None  # None when the text is empty
    problems: list[str] = field(default_factory=list)

    @property
    def too_long(self) -> bool:
        return self.characters > self.limit


def preview_template(client: Any, channel: str, content: str, samples: Mapping[str, Any]) -> Preview:
    """Render ``content`` with ``samples`` and price it for one recipient as the send path would."""
    if channel not in CHANNELS:
        channel = "sms"
    result = render(content, samples)
    quote = None
    if result.text.strip():
        quote = pricing.quote_message(client, channel, result.text, 1)
    return Preview(
        text=result.text,
        channel=channel,
        variables=detect_variables(content),
        missing=result.missing,
        characters=len(result.text),
        limit=CONTENT_LIMITS[channel],
        quote=quote,
        problems=placeholder_problems(content),
    )


def _clean_name(name: str) -> str:
    return " ".join((name or "").split())


def save_template(
    client_id: int,
    *,
    name: str,
    content: str,
    channel: str,
    whatsapp_template_id: str | None = None,
    whatsapp_language: str | None = None,
    template_id: int | None = None,
) -> Template:
    """Create (or update ``template_id``) a template; its variables are detected from the content.

    Raises :class:`TemplateError` for a blank or duplicate name (per channel), an unknown channel,
    empty or over-long content, a malformed ``{{...}}``, or a malformed WhatsApp template id. The
    WhatsApp template id is kept only for WhatsApp templates, with its ``whatsapp_language`` (Meta's code:
    ``en``, ``en_US``, ``sw``; ``en-us`` is read as ``en_US``; blank means ``en``), which goes out on the wire.
    """
    name = _clean_name(name)
    content = (content or "").replace("\r\n", "\n")
    if channel not in CHANNELS:
        raise TemplateError("channel", _l("Choose SMS, WhatsApp or email."))
    if not name:
        raise TemplateError("name", _l("Give the template a name."))
    if len(name) > NAME_LIMIT:
        raise TemplateError("name", _l("Keep the name under %(limit)s characters.", limit=NAME_LIMIT))
    if not content.strip():
        raise TemplateError("content", _l("Write the message."))
    if len(content) > CONTENT_LIMITS[channel]:
        limit = f"{CONTENT_LIMITS[channel]:,}"
        raise TemplateError(
            "content", _l("A %(channel)s template holds at most %(limit)s characters.", channel=channel, limit=limit)
        )
    problems = placeholder_problems(content)
    if problems:
        raise TemplateError("content", problems[0])
    wa_id = (whatsapp_template_id or "").strip() or None
    if channel != "whatsapp":
        wa_id = None
    elif wa_id and not WHATSAPP_ID.fullmatch(wa_id):
        raise TemplateError(
            "whatsapp_template_id", _l("Use the template name exactly as approved by WhatsApp (no spaces).")
        )
    language = normalise_whatsapp_language(whatsapp_language)
    if language is None:
        raise TemplateError(
            "whatsapp_language", _l("Use the language code of the approved template, such as en, en_US or sw.")
        )
    duplicate = sa.select(Template.id).where(
        Template.client_id == client_id, Template.channel == channel, sa.func.lower(Template.name) == name.lower()
    )
    if template_id is not None:
        duplicate = duplicate.where(Template.id != template_id)
    if db.session.scalar(duplicate.limit(1)) is not None:
        raise TemplateError(
            "name",
            _l(
                "You already have a template called “%(name)s” for %(channel)s.",
                name=name,
                channel=channel_label(channel),
            ),
        )

    if template_id is None:
        template = Template(client_id=client_id)
        db.session.add(template)
    else:
        template = get_template(client_id, template_id)
        if template is None:
            raise LookupError(template_id)
    template.name = name
    template.content = content
    template.channel = channel
    template.variables = detect_variables(content)
    template.whatsapp_template_id = wa_id
    template.whatsapp_language = language if channel == "whatsapp" else DEFAULT_WHATSAPP_LANGUAGE
    db.session.flush()
    return template


def normalise_whatsapp_language(code: str | None) -> str | None:
    """Meta's form of a template language code (``en-us`` -> ``en_US``); blank -> ``en``; None when invalid."""
    text = (code or "").strip().replace("-", "_")
    if not text:
        return DEFAULT_WHATSAPP_LANGUAGE
    language, _sep, region = text.partition("_")
    candidate = language.lower() + (f"_{region.upper()}" if region else "")
    return candidate if WHATSAPP_LANGUAGE.fullmatch(candidate) else None


def get_template(client_id: int, template_id: int) -> Template | None:
    return db.session.scalar(sa.select(Template).where(Template.client_id == client_id, Template.id == template_id))


def list_templates(client_id: int, channel: str | None = None) -> list[Template]:
    query = sa.select(Template).where(Template.client_id == client_id)
    if channel in CHANNELS:
        query = query.where(Template.channel == channel)
    return list(db.session.scalars(query.order_by(sa.func.lower(Template.name), Template.id)))


def delete_template(client_id: int, template_id: int) -> bool:
    """Delete one template; campaigns and messages that used it keep their text. False if not found."""
    result = db.session.execute(sa.delete(Template).where(Template.client_id == client_id, Template.id == template_id))
    return result.rowcount > 0


def channel_label(channel: str) -> str:
    return {"sms": "SMS", "whatsapp": "WhatsApp", "email": "email"}.get(channel, channel)
