"""English and Swahili: which language a page is in, what is translated, and that the catalog is complete."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bulkapp.extensions import db
from bulkapp.models import User
from tests.blueprints.test_reply_form import link  # noqa: F401 - the fixture
from tests.blueprints.test_reply_form import token as reply_token

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "bulkapp" / "translations"
POT = TRANSLATIONS / "messages.pot"
SW_PO = TRANSLATIONS / "sw" / "LC_MESSAGES" / "messages.po"
SW_MO = TRANSLATIONS / "sw" / "LC_MESSAGES" / "messages.mo"
SW = {"Accept-Language": "sw-KE,sw;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


def html_lang(response) -> str:
    match = re.search(r'<html lang="([^"]*)"', response.get_data(as_text=True))
    assert match, "no <html lang> on the page"
    return match.group(1)


def set_language(user_id: int, language: str, tz: str | None = None) -> None:
    user = db.session.get(User, user_id)
    user.language = language
    if tz:
        user.timezone = tz
    db.session.commit()


# -- locale selection on public pages -------------------------------------------------------------------------------


def test_public_pages_default_to_english(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert html_lang(response) == "en"
    assert "Sign in to Bulkapp" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("sw", "sw"),
        ("sw-KE,sw;q=0.9,en;q=0.8", "sw"),
        ("fr-FR,fr;q=0.9,sw;q=0.5", "sw"),  # French is not offered: Swahili is the best match we have
        ("en-US,en;q=0.9,sw;q=0.5", "en"),
        ("fr, de", "en"),  # nothing we offer: English
        ("", "en"),
        (";;;q=abc,,", "en"),  # malformed header
    ],
)
def test_accept_language_picks_the_best_match(client, accept, expected):
    response = client.get("/signup", headers={"Accept-Language": accept})
    assert response.status_code == 200
    assert html_lang(response) == expected


def test_sign_in_and_sign_up_pages_in_swahili(client):
    login = client.get("/login", headers=SW).get_data(as_text=True)
    assert "Ingia kwenye Bulkapp" in login
    assert "Barua pepe" in login and "Nenosiri" in login  # WTForms labels via lazy_gettext
    assert "Fungua akaunti" in login
    signup = client.get("/signup", headers=SW).get_data(as_text=True)
    assert "Anza kuwatumia wateja wako SMS" in signup
    assert "Jina la biashara" in signup


def test_lang_override_wins_and_is_remembered_for_signed_out_visitors(client):
    first = client.get("/login?lang=sw", headers=EN)
    assert html_lang(first) == "sw"
    # remembered in the session: the next page is Swahili although the browser asks for English
    assert html_lang(client.get("/signup", headers=EN)) == "sw"
    # and switched back the same way
    assert html_lang(client.get("/login?lang=en", headers=SW)) == "en"
    assert html_lang(client.get("/signup", headers=SW)) == "en"


@pytest.mark.parametrize("bad", ["xx", "SW-ke-extra", "' onload=alert(1)", "sw" * 200, ""])
def test_unknown_lang_values_are_ignored(client, bad):
    response = client.get("/login", query_string={"lang": bad}, headers=EN)
    assert response.status_code == 200
    assert html_lang(response) == "en"
    with client.session_transaction() as session:
        assert "lang" not in session


def test_uppercase_lang_is_accepted(client):
    assert html_lang(client.get("/login?lang=SW", headers=EN)) == "sw"


def test_language_switcher_on_signed_out_pages_keeps_the_query(client):
    body = client.get("/login?next=/wallet", headers=EN).get_data(as_text=True)
    assert 'class="i18n-switcher"' in body
    assert 'href="/login?next=%2Fwallet&amp;lang=sw"' in body
    assert '<strong lang="en">English</strong>' in body


def test_validation_messages_are_translated(client):
    response = client.post("/login", data={"email": "", "password": ""}, headers=SW)
    assert response.status_code == 422
    assert "Sehemu hii inahitajika." in response.get_data(as_text=True)  # WTForms' "This field is required."
    wrong = client.post("/login", data={"email": "nobody@example.com", "password": "not-it-at-all"}, headers=SW)
    assert "Barua pepe au nenosiri si sahihi." in wrong.get_data(as_text=True)


def test_error_page_in_swahili(client):
    response = client.get("/no-such-page", headers=SW)
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Haikupatikana" in body and "Nenda ukurasa wa mwanzo" in body


def test_invitation_page_follows_the_browser(client):
    response = client.get("/invite/not-a-real-token", headers=SW)
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert html_lang(response) == "sw"
    assert "Mwaliko" in body


# -- signed-in users: the profile language ------------------------------------------------------------------------


def test_signed_in_user_sees_their_profile_language(client, login, user):
    set_language(user.id, "sw")
    login(user)
    response = client.get("/dashboard", headers=EN)  # the browser's wish does not matter once signed in
    body = response.get_data(as_text=True)
    assert html_lang(response) == "sw"
    for word in ("Dashibodi", "Ujumbe", "Wateja", "Violezo", "Pochi", "Mipangilio", "Toka", "Salio", "Jumbe za leo"):
        assert word in body, word
    assert "i18n-switcher" not in body  # signed-in users change language in their profile


def test_lang_query_does_not_override_a_signed_in_users_profile(client, login, user):
    login(user)
    response = client.get("/dashboard?lang=sw", headers=SW)
    assert html_lang(response) == "en"
    assert "Messages today" in response.get_data(as_text=True)


def test_unknown_stored_language_falls_back_to_english(client, login, user):
    set_language(user.id, "zz")
    login(user)
    assert html_lang(client.get("/dashboard")) == "en"


def test_changing_the_profile_language_switches_the_ui(client, login, user):
    login(user)
    response = client.post(
        "/settings/profile",
        data={"name": "Wanjiku", "phone": "", "bio": "", "timezone": "Africa/Nairobi", "language": "sw"},
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    body = page.get_data(as_text=True)
    assert html_lang(page) == "sw"
    assert "Wasifu wako umehifadhiwa." in body  # the flash is written in the new language
    assert "Wasifu wako" in body and "Lugha" in body


def test_profile_rejects_an_unknown_language(client, login, user):
    login(user)
    response = client.post(
        "/settings/profile",
        data={"name": "Wanjiku", "timezone": "Africa/Nairobi", "language": "fr"},
    )
    assert response.status_code == 422
    assert db.session.get(User, user.id).language == "en"


def test_signing_out_keeps_the_language(client, login, user):
    set_language(user.id, "sw")
    login(user)
    response = client.post("/logout", follow_redirects=True, headers=EN)
    body = response.get_data(as_text=True)
    assert html_lang(response) == "sw"
    assert "Umetoka." in body and "Ingia kwenye Bulkapp" in body


def test_other_pages_in_swahili(client, login, user):
    set_language(user.id, "sw")
    login(user)
    expectations = {
        "/wallet": ("Ongeza salio kwa M-Pesa", "Miamala"),
        "/messages": ("Tuma ujumbe", "Jumbe za karibuni"),
        "/contacts": ("Ongeza mteja", "Hamisha CSV"),
        "/templates": ("Kiolezo kipya",),
        "/settings": ("Mipangilio", "Wasifu wako", "Fungua"),
        "/notifications/": ("Arifa", "Weka zote kama zimesomwa"),
        "/campaigns": ("Kampeni mpya", "Tafuta kampeni"),
        "/campaigns/new": ("Hifadhi rasimu", "Makadirio"),
        "/inbox": ("Chagua mazungumzo uyasome na kujibu.", "Chaneli zote"),
        "/settings/opt-outs": ("Orodha ya waliojiondoa", "Maneno ya kujiondoa"),
        "/settings/profile": ("Wasifu wako", "Badilisha nenosiri"),
        "/settings/api": ("Ufunguo wa API",),
        "/contacts/import": ("Ingiza wateja", "Jinsi inavyofanya kazi"),
    }
    for path, words in expectations.items():
        response = client.get(path, follow_redirects=True)
        assert response.status_code == 200, path
        body = response.get_data(as_text=True)
        for word in words:
            assert word in body, (path, word)


# -- formatting ------------------------------------------------------------------------------------------------------


def test_dates_follow_the_locale_and_the_users_timezone(work_app, user):
    from flask_babel import refresh
    from flask_login import login_user

    from bulkapp.formatting import local_time

    set_language(user.id, "sw", tz="Europe/London")
    moment = datetime(2026, 3, 5, 9, 30, tzinfo=UTC)
    with work_app.test_request_context("/", headers=SW):
        refresh()  # the test shares one app context: drop the locale cached by an earlier block
        assert local_time(moment) == "05 Mac 2026, 12:30"  # Nairobi is UTC+3
        assert local_time(moment, "%d %b, %H:%M") == "05 Mac, 12:30"
        assert local_time(moment.replace(tzinfo=None)) == "05 Mac 2026, 12:30"  # naive values are UTC
        assert local_time(None) == "—"
    with work_app.test_request_context("/", headers=EN):
        refresh()
        assert local_time(moment) == "05 Mar 2026, 12:30"
        assert local_time(datetime(2026, 12, 24, 21, 0, tzinfo=UTC), "%d %b %Y") == "25 Dec 2026"
    with work_app.test_request_context("/", headers=EN):  # signed in: their language and timezone, not the browser's
        refresh()
        login_user(db.session.get(User, user.id))
        assert local_time(datetime(2026, 12, 24, 21, 0, tzinfo=UTC)) == "24 Des 2026, 21:00"


def test_dates_on_a_page_are_in_swahili(client, login, user):
    from bulkapp.services.notifications.notify import notify

    set_language(user.id, "sw")
    note = notify(user.client_id, "low_balance", "low_balance", {"balance": "99.20", "threshold": "100.00"})
    note.created_at = datetime(2026, 8, 14, 7, 5, tzinfo=UTC)
    db.session.commit()
    login(user)
    body = client.get("/notifications/").get_data(as_text=True)
    assert "14 Ago 2026, 10:05" in body


def test_ksh_amounts_look_the_same_in_both_languages(app, client, login, user):
    from bulkapp.formatting import format_ksh

    for headers in (EN, SW):
        with app.test_request_context("/", headers=headers):
            assert format_ksh(Decimal("1234.5")) == "KSh 1,234.50"
            assert format_ksh(Decimal("0")) == "KSh 0.00"
    set_language(user.id, "sw")
    login(user)
    assert "KSh 100.00" in client.get("/dashboard").get_data(as_text=True)


def test_number_filter_and_status_labels(app):
    from bulkapp.formatting import format_number
    from bulkapp.i18n import status_label

    with app.test_request_context("/", headers=SW):
        assert format_number(Decimal("1234567.891"), 2) == "1,234,567.89"
        assert format_number(1234, 0) == "1,234"
        assert format_number(None) == "—"
        assert status_label("delivered") == "imefika"
        assert status_label("something-new") == "something-new"
        assert status_label(None) == ""
    with app.test_request_context("/", headers=EN):
        assert status_label("delivered") == "delivered"


# -- the catalog -----------------------------------------------------------------------------------------------------


def _catalog(path: Path, locale: str | None = None):
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)[sd]", text))


def test_every_msgid_in_the_pot_has_a_swahili_translation():
    pot = _catalog(POT)
    po = _catalog(SW_PO, "sw")
    missing, fuzzy, bad_placeholders = [], [], []
    for message in pot:
        if not message.id:
            continue
        translated = po.get(message.id)
        strings = translated.string if translated is not None else None
        strings = list(strings) if isinstance(strings, (list, tuple)) else [strings]
        if translated is None or not all(strings):
            missing.append(message.id)
            continue
        if translated.fuzzy:
            fuzzy.append(message.id)
        ids = message.id if isinstance(message.id, (list, tuple)) else [message.id]
        wanted = set().union(*(_placeholders(i) for i in ids))
        if any(_placeholders(s) != wanted for s in strings):
            bad_placeholders.append(message.id)
    assert not missing, f"untranslated in sw (run `make translations` and fill them in): {missing}"
    assert not fuzzy, f"fuzzy (unchecked) sw translations: {fuzzy}"
    assert not bad_placeholders, f"sw translations whose %(name)s placeholders differ: {bad_placeholders}"


def test_pot_is_up_to_date_with_the_source():
    """Every string marked in the templates and code is in the .pot (else `make translations` was not run)."""
    pot_ids = {m.id if isinstance(m.id, str) else tuple(m.id) for m in _catalog(POT) if m.id}
    method_map = [
        ("bulkapp/**.py", "python"),
        ("bulkapp/templates/**.html", "jinja2"),
        ("bulkapp/templates/**.txt", "jinja2"),
    ]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "_ln": (1, 2)}
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map=method_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else tuple(message))
    stale = sorted(str(m) for m in found - pot_ids)
    assert not stale, f"marked for translation but missing from messages.pot (run `make translations`): {stale}"


def test_compiled_mo_matches_the_po(tmp_path):
    po = _catalog(SW_PO, "sw")
    fresh = tmp_path / "messages.mo"
    with fresh.open("wb") as handle:
        write_mo(handle, po)
    assert SW_MO.exists(), "bulkapp/translations/sw/LC_MESSAGES/messages.mo is missing: run `make translations`"
    assert SW_MO.read_bytes() == fresh.read_bytes(), "messages.mo is older than messages.po: run `make translations`"


def test_outside_a_request_dates_are_english_and_nairobi(work_app):
    from flask_babel import refresh

    from bulkapp.formatting import local_time

    with work_app.app_context():  # as a background job renders an email or an export
        refresh()
        assert local_time(datetime(2026, 3, 5, 9, 30, tzinfo=UTC)) == "05 Mar 2026, 12:30"


def test_public_reply_form_follows_the_browser_and_sets_no_cookie(client, link):  # noqa: F811
    page = client.get(f"/x/{link.code}", headers=SW)
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and html_lang(page) == "sw"
    assert "Ujumbe wako" in body and "Tuma" in body
    assert "Set-Cookie" not in page.headers  # the reply form keeps no session, even with ?lang=
    override = client.get(f"/x/{link.code}?lang=sw", headers=EN)
    assert html_lang(override) == "sw" and "Set-Cookie" not in override.headers
    assert f'action="/x/{link.code}?lang=sw"' in override.get_data(as_text=True)  # the answer stays Swahili
    assert html_lang(client.get(f"/x/{link.code}", headers=EN)) == "en"  # not remembered
    refused = client.post(
        f"/x/{link.code}?lang=sw",
        data={"message": "   ", "t": reply_token(link.code), "website": ""},
        headers=EN,
        csrf=False,
    )
    assert refused.status_code == 422
    assert "Andika ujumbe kwanza." in refused.get_data(as_text=True)


def test_the_reply_form_follows_the_browser_even_for_a_signed_in_swahili_user(client, login, user, link):  # noqa: F811
    set_language(user.id, "sw")
    signed_in = login(user)
    assert html_lang(signed_in.get("/dashboard")) == "sw"
    assert html_lang(signed_in.get(f"/x/{link.code}", headers=EN)) == "en"  # it is the customer's page


def test_api_docs_in_swahili_keep_their_code_samples(client, login, user):
    body = client.get("/api/v1/docs", headers=SW).get_data(as_text=True)  # public: follows the browser
    assert "<title>Maelezo ya API" in body
    for text in ("Uthibitishaji", "Kurudia ombi bila hatari", "Vigezo", "Majibu", "Mipangilio › Ufunguo wa API"):
        assert text in body, text
    assert "<code>Authorization: Bearer &lt;key&gt;</code>" in body  # code stays as it is
    assert "curl -X POST" in body and '-H "Authorization: Bearer $BULKAPP_API_KEY"' in body
    assert "Authentication" not in body and "Every request carries" not in body
    english = client.get("/api/v1/docs", headers=EN).get_data(as_text=True)
    assert "Every request carries your API key from <strong>Settings › API key</strong>" in english
    set_language(user.id, "sw")
    login(user)
    assert "Uthibitishaji" in client.get("/api/v1/docs", headers=EN).get_data(as_text=True)  # the profile wins


def test_confirmations_after_an_action_are_in_the_users_language(client, login, user):
    set_language(user.id, "sw")
    login(user)
    data = {"name": "Oda tayari", "channel": "sms", "content": "Habari {{name}}, oda yako iko tayari."}
    client.post("/templates/", data=data, headers={"HX-Request": "true"})
    assert "Kiolezo “Oda tayari” kimehifadhiwa." in client.get("/templates/").get_data(as_text=True)
    client.post("/contacts/", data={"new-contact": "0712345678", "new-name": "Wanjiru"})
    assert "Wanjiru ameongezwa." in client.get("/contacts/").get_data(as_text=True)
    nothing = client.post("/contacts/bulk-delete", data={}, headers={"HX-Request": "true"})
    assert "Chagua wateja kwanza." in nothing.get_data(as_text=True)


def test_opt_out_keyword_errors_are_in_the_users_language(client, login, user):
    set_language(user.id, "sw")
    login(user)
    data = {"optout_keywords": "STOP", "optin_keywords": "stop"}
    response = client.post("/settings/opt-outs/keywords", data=data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "Neno moja haliwezi kumwondoa mtu na pia kumrudisha." in response.get_data(as_text=True)
