"""English and Swahili: Flask-Babel wiring, the locale and timezone selectors, and small helpers.

Who sees which language:
- a signed-in user: their profile ``language`` (en/sw);
- a signed-out visitor (sign-in, sign-up, invitation, the public reply form): ``?lang=sw`` or ``?lang=en``
  when given (remembered in the session), else the best match of the browser's Accept-Language;
- English when nothing matches;
- the REST API (``/api/...``) always answers in English, whoever calls it; only its docs page is for people and
  follows the rules above.

Errors that services raise carry lazy texts (``_l``): they become words when shown, in the viewer's language.

Sentences stored in the database or written to a file (a contacts import's row reasons and failure, a failed
top-up's reason) are kept in English, so a stored row means the same to everyone, and the downloadable import
report stays English like its column names and outcome codes. A page shows them in the reader's language
through the ``tstored`` filter: each such sentence is registered with :func:`stored_sentences` and looked up
again, parameters included.

Background work has no request: a job that writes for a person (a notification email, an opt-out
confirmation SMS) wraps it in ``flask_babel.force_locale`` with that person's language. Notifications keep
their text's name and parameters, so each reader sees them in their own language (services/notifications/notify.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from babel.lists import format_list
from flask import Flask, has_request_context, request, session
from flask_babel import LazyString, get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext as _ln
from flask_login import current_user
from markupsafe import Markup

LANGUAGES = ("en", "sw")
LANGUAGE_NAMES = {"en": "English", "sw": "Kiswahili"}
DEFAULT_LANGUAGE = "en"
DEFAULT_TIMEZONE = "Africa/Nairobi"
SESSION_KEY = "lang"
SESSIONLESS_BLUEPRINTS = ("shortlinks", "webhooks", "api")
API_PREFIX = "/api/"
PEOPLE_API_ENDPOINTS = ("api.docs",)  # the API's one page for people: it follows the reader's language


def init_i18n(app: Flask) -> None:
    from bulkapp.extensions import babel

    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", DEFAULT_TIMEZONE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(Path(__file__).parent / "translations"))
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.before_request(_remember_lang_override)
    app.context_processor(_i18n_context)
    app.add_template_filter(status_label, "tstatus")
    app.add_template_filter(local_date, "localdate")
    app.add_template_filter(stored_text, "tstored")
    _install_form_translations()


def _user():
    if request.blueprint == "shortlinks":  # the customer's reply page follows the browser, whoever is signed in
        return None
    user = current_user
    if user is not None and getattr(user, "is_authenticated", False):
        return user
    return None


def _clean(code: str | None) -> str | None:
    code = (code or "").strip().lower()[:8]
    return code if code in LANGUAGES else None


def _remember_lang_override() -> None:
    """``?lang=sw`` on any page: remember it for a signed-out visitor (signed-in users use their profile)."""
    lang = _clean(request.args.get("lang"))
    # The public reply form (/x/<code>) sets no cookie at all: there ?lang= holds for that page only.
    if lang and request.blueprint not in SESSIONLESS_BLUEPRINTS and _user() is None:
        session[SESSION_KEY] = lang


def select_locale() -> str:
    if not has_request_context():  # a background job (emails, exports): English unless told otherwise
        return DEFAULT_LANGUAGE
    if request.path.startswith(API_PREFIX) and request.endpoint not in PEOPLE_API_ENDPOINTS:
        return DEFAULT_LANGUAGE  # the API's messages are part of its contract, even for a signed-in browser
    user = _user()
    if user is not None:
        return _clean(user.language) or DEFAULT_LANGUAGE
    override = _clean(request.args.get("lang")) or _clean(session.get(SESSION_KEY))
    if override:
        return override
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def select_timezone() -> str:
    if not has_request_context():
        return DEFAULT_TIMEZONE
    user = _user()
    return (getattr(user, "timezone", None) or DEFAULT_TIMEZONE) if user is not None else DEFAULT_TIMEZONE


def current_language() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return locale.language if locale is not None else DEFAULT_LANGUAGE


def _i18n_context() -> dict:
    return {
        "current_language": current_language,
        "language_names": LANGUAGE_NAMES,
        "lang_url": _lang_url,
        "Markup": Markup,  # for translated sentences that wrap a link or a <strong> around a value
    }


def _lang_url(code: str) -> str:
    """The current page's URL with ``lang`` set to ``code`` (other query arguments kept)."""
    from urllib.parse import urlencode

    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    args.append(("lang", code))
    return f"{request.path}?{urlencode(args)}"


# Status words shown in badges and legends. The stored value stays English; only its label is translated.
STATUS_LABELS = {
    "pending": _l("pending"),
    "queued": _l("queued"),
    "sending": _l("sending"),
    "sent": _l("sent"),
    "delivered": _l("delivered"),
    "failed": _l("failed"),
    "unknown": _l("unknown"),
    "rejected": _l("rejected"),
    "expired": _l("expired"),
    "draft": _l("draft"),
    "scheduled": _l("scheduled"),
    "running": _l("running"),
    "paused": _l("paused"),
    "completed": _l("completed"),
    "cancelled": _l("cancelled"),
    "open": _l("open"),
    "closed": _l("closed"),
    "archived": _l("archived"),
    "active": _l("active"),
    "disabled": _l("disabled"),
    "mapping": _l("mapping"),
    "importing": _l("importing"),
    "done": _l("done"),
    "succeeded": _l("succeeded"),
    "received": _l("received"),
    "merged": _l("merged"),
    "added": _l("added"),
    "updated": _l("updated"),
}


def status_label(value) -> str:
    """A stored status word in the page's language (unknown words are shown as stored)."""
    if value is None:
        return ""
    label = STATUS_LABELS.get(str(value))
    return str(label) if label is not None else str(value)


# WTForms' own validator messages (WTForms ships no Swahili): listed here so pybabel extracts them into our
# catalog, and looked up there first by the translations object Flask-WTF hands to every form.
WTFORMS_MESSAGES = (
    _l("This field is required."),
    _l("Invalid email address."),
    _l("Not a valid choice."),
    _l("Not a valid date value."),
    _l("Not a valid integer value."),
    _l("Not a valid decimal value."),
    _l("Invalid input."),
    _l("Field must be between %(min)d and %(max)d characters long."),
    _ln("Field must be at least %(min)d character long.", "Field must be at least %(min)d characters long.", 1),
    _ln("Field cannot be longer than %(max)d character.", "Field cannot be longer than %(max)d characters.", 1),
    _l("Field must be equal to %(other_name)s."),
    _l("The CSRF token is missing."),
    _l("The CSRF token is invalid."),
    _l("The CSRF token has expired."),
    _l("The CSRF session token is missing."),
)


class _FormTranslations:
    """Our catalog first, then WTForms' bundled translations (via Flask-WTF), then the English text."""

    def gettext(self, string):
        from flask_babel import get_translations
        from flask_wtf.i18n import translations as wtforms_translations

        result = get_translations().ugettext(string)
        return result if result != string else wtforms_translations.gettext(string)

    def ngettext(self, singular, plural, n):
        from flask_babel import get_translations
        from flask_wtf.i18n import translations as wtforms_translations

        result = get_translations().ungettext(singular, plural, n)
        if result not in (singular, plural):
            return result
        return wtforms_translations.ngettext(singular, plural, n)


def _install_form_translations() -> None:
    # FlaskForm.Meta.get_translations returns this module-level object while WTF_I18N_ENABLED is on.
    import flask_wtf.form

    if not isinstance(flask_wtf.form.translations, _FormTranslations):
        flask_wtf.form.translations = _FormTranslations()


def local_date(value, pattern: str = "dd MMM yyyy") -> str:
    """A calendar date (no time, no timezone shift) with month and day names in the page's language."""
    from flask_babel import format_date

    if value is None:
        return "—"
    return format_date(value, pattern)


# Messages that services raise in English and a view shows with ``_(str(exc))``: listed so they are extracted.
SERVICE_MESSAGES = (
    _l("Write a message first."),
    _l("This link no longer accepts replies."),
)


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention, which pybabel extracts
    """Marks an English sentence for extraction without translating it: it is stored as written."""
    return msgid


_STORED: dict[str, re.Pattern[str]] = {}
_PLACEHOLDER = re.compile(r"%\\\((\w+)\\\)s")  # %(name)s once re.escape()d


def stored_sentences(*msgids: str) -> tuple[str, ...]:
    """Registers English sentences that are stored (``msgid % params``) and translated when shown, by
    :func:`stored_text`. Returns them unchanged, for the module that writes them."""
    for msgid in msgids:
        _STORED[msgid] = re.compile(_PLACEHOLDER.sub(r"(?P<\1>.+?)", re.escape(msgid)), re.DOTALL)
    return msgids


def stored_text(text) -> str:
    """A stored English sentence in the page's language; text that is no registered sentence shows as stored."""
    if not text:
        return ""
    text = str(text)
    for msgid, pattern in _STORED.items():
        match = pattern.fullmatch(text)
        if match:
            return gettext(msgid, **match.groupdict())
    return text


def lazy_stored(text: str) -> LazyString:
    """A stored English sentence carried by an error to a page: becomes words in the reader's language when shown
    (``str()`` in the API, which is always English, keeps it English)."""
    return LazyString(stored_text, text)


def lazy_list(items: list[str]) -> LazyString:
    """Names joined as a sentence says them, when shown: ``Name and Phone`` / ``Name na Phone``."""
    return LazyString(lambda: format_list(items, locale=get_locale() or DEFAULT_LANGUAGE))
