"""The public reply form. No session and no JavaScript: it must work on a cheap phone.

CSRF: the form is exempt from the session CSRF check because it has no session to protect (no cookie is
set or read, nobody is signed in, and a forged post can only do what anyone may do: leave a reply). It is
guarded instead by the code itself (long enough that a guess hits a live link less than once in 10,000 tries,
with a global budget on unknown codes: guard.py), a signed form token bound to that code (issued when the page
is shown, so a post must follow a view and come at least REPLY_FORM_MIN_SECONDS later), a honeypot field,
length limits and rate limits per IP, per code and in total. It records an inbound message only: nothing
here sends an SMS.
"""

from __future__ import annotations

import logging
import secrets

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address

from bulkapp.blueprints.shortlinks import guard
from bulkapp.blueprints.shortlinks.blueprint import bp
from bulkapp.extensions import csrf, db, limiter
from bulkapp.i18n import current_language
from bulkapp.services.inbox.inbound import MAX_WEB_REPLY, InvalidReply, record_web_reply
from bulkapp.services.messaging import link_clicks, reply_form

log = logging.getLogger(__name__)

HONEYPOT = "website"
MAX_BODY_BYTES = 16 * 1024
# Where each view of a cached form puts its token: random, so no business name can contain it.
TOKEN_SLOT = f"token-slot-{secrets.token_hex(8)}"


def _ip_key() -> str:
    return f"ip:{get_remote_address()}"


def _code_key() -> str:
    return f"code:{(request.view_args or {}).get('code', '')}"


def _all_key() -> str:
    return "all"


def _config(name: str):
    return lambda: current_app.config[name]


def _missing():
    guard.count_miss()
    return render_template("shortlinks/missing.html"), 404


def _expired():
    return render_template("shortlinks/expired.html"), 410


def _busy():
    """Refused by the global budget on unknown codes (guard.py), before any lookup."""
    return render_template("shortlinks/busy.html"), 429


def _render_form(business: str, code: str, token: str, *, text: str = "", error: str | None = None) -> str:
    return render_template(
        "shortlinks/form.html",
        code=code,
        business=business,
        token=token,
        text=text,
        error=error,
        max_length=MAX_WEB_REPLY,
        honeypot=HONEYPOT,
    )


def _token(code: str) -> str:
    return reply_form.issue_token(current_app.config["SECRET_KEY"], code)


def _form(business: str, code: str, *, text: str, error: str, status: int):
    return _render_form(business, code, _token(code), text=text, error=error), status


def _blank_form(business: str, code: str) -> str:
    """The empty form as shown on a view. Rendering was most of a view's cost, and the page differs per view
    only by its form token: it is rendered once per URL, language and business name (kept in a
    reply_form.TimedCache, like the link) with a slot where each view puts a fresh token."""
    cache = reply_form.TimedCache.of("link_forms")
    key = (request.full_path, current_language(), business)
    page = cache.get(key)
    if page is None:
        page = _render_form(business, code, TOKEN_SLOT)
        cache.put(key, page)
    return page.replace(TOKEN_SLOT, _token(code))


@bp.get("/<code>")
@limiter.limit(_config("SHORTLINK_RATE_LIMIT"), key_func=_ip_key)
@limiter.limit(_config("SHORTLINK_CODE_RATE_LIMIT"), key_func=_code_key)
def show(code: str):
    """The reply form: the business's name and a text box. Each view counts a click (buffered, written by the
    periodic ``flush_link_clicks``)."""
    if guard.refused():
        return _busy()
    page = reply_form.open_link(code)
    if page is None:
        return _missing()
    if not page.live:
        return _expired()
    if link_clicks.record_click(page.id):
        db.session.commit()  # the click buffer was unreachable, so the click went to the database
    return _blank_form(page.business, code)


@bp.post("/<code>")
@csrf.exempt
@limiter.limit(_config("REPLY_RATE_LIMIT"), key_func=_ip_key)
@limiter.limit(_config("REPLY_CODE_RATE_LIMIT"), key_func=_code_key)
@limiter.limit(_config("REPLY_GLOBAL_RATE_LIMIT"), key_func=_all_key)
def submit(code: str):
    """Record the reply in the recipient's conversation, then show the confirmation (post/redirect/get)."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        abort(413)
    if guard.refused():
        return _busy()
    link = reply_form.find_link(code)
    if link is None:
        return _missing()
    if not reply_form.accepts_replies(link):
        return _expired()
    text = request.form.get("message", "")
    if request.form.get(HONEYPOT):
        log.info("reply form %s: honeypot filled, nothing recorded", code)
        return redirect(url_for("shortlinks.sent", code=code), 303)
    problem = reply_form.token_problem(
        current_app.config["SECRET_KEY"], code, request.form.get("t"), current_app.config["REPLY_FORM_MIN_SECONDS"]
    )
    if problem is not None:
        return _form(
            reply_form.business_name(link),
            code,
            text=text[:MAX_WEB_REPLY],
            error=_("Please press Send again."),
            status=422,
        )
    try:
        record_web_reply(link, text, language=current_language())  # the page's language: the customer's browser
    except InvalidReply as exc:
        db.session.rollback()
        # The service says it in English; the known sentences are in i18n.SERVICE_MESSAGES and the catalog.
        return _form(reply_form.business_name(link), code, text=text[:MAX_WEB_REPLY], error=_(str(exc)), status=422)
    db.session.commit()
    return redirect(url_for("shortlinks.sent", code=code), 303)


@bp.get("/<code>/sent")
@limiter.limit(_config("SHORTLINK_RATE_LIMIT"), key_func=_ip_key)
def sent(code: str):
    if guard.refused():
        return _busy()
    link = reply_form.find_link(code)
    if link is None:
        return _missing()
    return render_template("shortlinks/sent.html", code=code, business=reply_form.business_name(link))
