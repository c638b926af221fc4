"""Opt-outs: STOP-style keywords, the tenant's suppression list, and START to come back."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy.dialects import postgresql, sqlite

from bulkapp.columns import utcnow
from bulkapp.extensions import db
from bulkapp.i18n import DEFAULT_LANGUAGE, LANGUAGES
from bulkapp.models import Client, Contact, Suppression, User

OPT_OUT_KEYWORDS = ("STOP", "STOP ALL", "UNSUBSCRIBE", "ONDOKA", "TOKA")
OPT_IN_KEYWORDS = ("START", "ANZA")
DEFAULT_FOOTER = "STOP*456*9*5#"
SOURCES = ("keyword", "reply_form", "provider", "manual")
MAX_KEYWORD = 40  # suppressions.keyword
MAX_KEYWORDS = 20  # per list
MAX_FOOTER = 40
# Vendor codes that mean "this recipient opted out / is blacklisted", per provider (send results and delivery
# reports). Twilio 21610 and Africa's Talking 406 / UserInBlackList are documented; Meta 131050 is "user
# stopped marketing messages"; Onfon 406 and Mobitech 4006 are the stand-ins our simulators use (their real
# per-message codes are undocumented).
PROVIDER_OPT_OUT_CODES: dict[str, frozenset[str]] = {
    "twilio": frozenset({"21610"}),
    "onfon": frozenset({"406"}),
    "mobitech": frozenset({"4006"}),
    "africastalking": frozenset({"406", "USERINBLACKLIST"}),
    "whatsapp_cloud": frozenset({"131050"}),
}
ANY_PROVIDER_OPT_OUT_CODES = frozenset({"USERINBLACKLIST"})


def normalise_keyword(text: str) -> str:
    """``" stop  all! "`` -> ``"STOP ALL"``: case, spacing and trailing punctuation do not matter."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text or "")).strip().upper()


def keywords(client: Client) -> tuple[list[str], list[str]]:
    """The tenant's (opt-out, opt-in) keywords, normalised; defaults when the tenant set none."""
    settings = client.settings or {}
    out = settings.get("optout_keywords") or list(OPT_OUT_KEYWORDS)
    back = settings.get("optin_keywords") or list(OPT_IN_KEYWORDS)
    return [normalise_keyword(k) for k in out if normalise_keyword(k)], [
        normalise_keyword(k) for k in back if normalise_keyword(k)
    ]


def classify(client: Client, text: str) -> str | None:
    """``"opt_out"``, ``"opt_in"`` or None for an inbound text (the whole text must be the keyword)."""
    word = normalise_keyword(text)
    if not word:
        return None
    out, back = keywords(client)
    if word in out:
        return "opt_out"
    if word in back:
        return "opt_in"
    return None


def set_keywords(client: Client, opt_out: Iterable[str], opt_in: Iterable[str]) -> None:
    """Replace the tenant's keyword lists; ValueError (a sentence for the user, in their language when shown with
    ``str()``) for an unusable list."""
    out = sorted({normalise_keyword(k) for k in opt_out if normalise_keyword(k)})
    back = sorted({normalise_keyword(k) for k in opt_in if normalise_keyword(k)})
    if not out:
        raise ValueError(_l("Keep at least one opt-out keyword."))
    if not back:
        raise ValueError(_l("Keep at least one opt-in keyword, so people can subscribe again."))
    if set(out) & set(back):
        raise ValueError(_l("A keyword cannot both opt out and opt in."))
    if len(out) > MAX_KEYWORDS or len(back) > MAX_KEYWORDS:
        raise ValueError(_l("Use at most %(count)s keywords in each list.", count=MAX_KEYWORDS))
    if any(len(k) > MAX_KEYWORD for k in out + back):
        raise ValueError(_l("A keyword can be at most %(count)s characters.", count=MAX_KEYWORD))
    client.settings = {**(client.settings or {}), "optout_keywords": out, "optin_keywords": back}
    db.session.flush()


def opt_out(
    client_id: int, contact: str, *, source: str, keyword: str | None = None, channel: str | None = None
) -> bool:
    """Add a number to the suppression list (once) and mark the contact; True when it is new."""
    if source not in SOURCES:
        raise ValueError(f"unknown opt-out source {source!r}")
    values: dict[str, Any] = {
        "client_id": client_id, "contact": contact, "source": source, "keyword": keyword, "channel": channel,
        "created_at": utcnow(),
    }  # fmt: skip
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT that SQLAlchemy gave an implicit RETURNING.
    added = db.session.scalar(
        insert(Suppression)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["client_id", "contact"])
        .returning(Suppression.id)
    )
    db.session.execute(
        sa.update(Contact)
        .where(Contact.client_id == client_id, Contact.contact == contact, Contact.opted_out_at.is_(None))
        .values(opted_out_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return added is not None


def opt_in(client_id: int, contact: str) -> bool:
    """Take a number off the suppression list; True when it was on it."""
    removed = db.session.execute(
        sa.delete(Suppression).where(Suppression.client_id == client_id, Suppression.contact == contact)
    ).rowcount
    db.session.execute(
        sa.update(Contact)
        .where(Contact.client_id == client_id, Contact.contact == contact)
        .values(opted_out_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(removed)


def is_suppressed(client_id: int, contact: str) -> bool:
    return (
        db.session.scalar(
            sa.select(Suppression.id).where(Suppression.client_id == client_id, Suppression.contact == contact)
        )
        is not None
    )


def suppressed_among(client_id: int, contacts: Iterable[str], chunk: int = 900) -> set[str]:
    """Which of these numbers are suppressed (queried in chunks, for campaign-sized lists)."""
    found: set[str] = set()
    batch: list[str] = []
    for contact in contacts:
        batch.append(contact)
        if len(batch) == chunk:
            found |= _suppressed(client_id, batch)
            batch = []
    if batch:
        found |= _suppressed(client_id, batch)
    return found


def _suppressed(client_id: int, batch: list[str]) -> set[str]:
    return set(
        db.session.scalars(
            sa.select(Suppression.contact).where(Suppression.client_id == client_id, Suppression.contact.in_(batch))
        )
    )


def footer(client: Client) -> str:
    """The opt-out instruction appended to promotional SMS."""
    return (client.settings or {}).get("optout_footer") or DEFAULT_FOOTER


def set_footer(client: Client, text: str | None) -> None:
    """Set the promotional opt-out footer; blank restores the default. ValueError when too long."""
    text = " ".join((text or "").split())
    if len(text) > MAX_FOOTER:
        raise ValueError(
            _l(
                "Keep the footer under %(count)s characters: it is added to every promotional SMS.",
                count=MAX_FOOTER + 1,
            )
        )
    settings = {k: v for k, v in (client.settings or {}).items() if k != "optout_footer"}
    if text:
        settings["optout_footer"] = text
    client.settings = settings
    db.session.flush()


def is_provider_opt_out(provider: str | None, code: str | None) -> bool:
    """Whether a vendor's error ``code`` (send result or delivery report) means the recipient opted out."""
    if not code:
        return False
    code = str(code).strip().upper()
    return code in ANY_PROVIDER_OPT_OUT_CODES or code in PROVIDER_OPT_OUT_CODES.get(provider or "", frozenset())


def record_provider_opt_out(
    client_id: int, contact: str | None, provider: str | None, code: str | None, channel: str | None = None
) -> bool:
    """Suppress ``contact`` (source ``provider``) when the vendor's ``code`` says it opted out; True when newly
    added. The keyword column keeps ``"<provider> <code>"`` so the settings page can say who reported it."""
    if not contact or not is_provider_opt_out(provider, code):
        return False
    reported = f"{provider} {code}"[:MAX_KEYWORD]
    return opt_out(client_id, contact, source="provider", keyword=reported, channel=channel)


def business_name(client: Client) -> str:
    return client.company_name or client.name


# The confirmation answers in the language of the keyword the customer used; a keyword the tenant added (of
# unknown language) gets the language of the tenant's account owner (its first user).
KEYWORD_LANGUAGES = {
    **dict.fromkeys(("STOP", "STOP ALL", "UNSUBSCRIBE", "START"), "en"),
    **dict.fromkeys(("ONDOKA", "TOKA", "ANZA"), "sw"),
}
SUGGESTED = {"en": ("STOP", "START"), "sw": ("TOKA", "ANZA")}  # the (opt-out, opt-in) keyword to mention


def confirmation_language(client: Client, keyword: str | None = None) -> str:
    """``en`` or ``sw``: the keyword's language when it is a known word, else the account owner's language."""
    known = KEYWORD_LANGUAGES.get(normalise_keyword(keyword or ""))
    if known:
        return known
    owner = db.session.scalar(sa.select(User.language).where(User.client_id == client.id).order_by(User.id).limit(1))
    return owner if owner in LANGUAGES else DEFAULT_LANGUAGE


def confirmation_text(client: Client, kind: str, keyword: str | None = None, language: str | None = None) -> str:
    """The one message confirming an opt-out (``kind="opt_out"``) or a re-subscription (``"opt_in"``), in
    ``language`` when the caller knows what the customer reads (the reply form passes its page's language, which
    follows their browser), else in the language of the customer's ``keyword`` (see
    :func:`confirmation_language`); it names a keyword that works for this tenant to undo it, in that language
    when the tenant kept it."""
    out, back = keywords(client)
    name = business_name(client)
    language = language if language in LANGUAGES else confirmation_language(client, keyword)
    stop, start = SUGGESTED[language]
    with force_locale(language):
        if kind == "opt_out":
            start = next((word for word in (start, "START") if word in back), back[0])
            return gettext(
                "You will not receive more messages from %(name)s. Reply %(start)s to subscribe again.",
                name=name,
                start=start,
            )
        stop = next((word for word in (stop, "STOP") if word in out), out[0])
        return gettext(
            "You are subscribed again to messages from %(name)s. Reply %(stop)s to stop them.", name=name, stop=stop
        )
