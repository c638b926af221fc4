"""Web-wide wiring: user loading, error pages (HTMX-aware), security headers and template helpers."""

from __future__ import annotations

from flask import Flask, make_response, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.routing import IntegerConverter

from bulkapp import htmx
from bulkapp.extensions import db, login_manager
from bulkapp.formatting import format_ksh, format_number, local_time
from bulkapp.models import User

MAX_ID = 2**31 - 1  # ids are INTEGER columns: no row can have a larger one
# Blueprints that answer machines and check their own input (the API's JSON errors, vendors' webhooks).
OWN_INPUT_CHECKS = ("api", "webhooks")
# ... and, with the reply links' pages, the blueprints that serve outsiders: no signed-in user is read for them.
OUTSIDER_BLUEPRINTS = (*OWN_INPUT_CHECKS, "shortlinks")

# Settings sections, shown on /settings when their endpoint exists: (endpoint, title, description).
SETTINGS_SECTIONS = (
    (
        "settings.channels",
        _l("Channels"),
        _l("Your SMS, WhatsApp and email provider accounts, and their webhook URLs."),
    ),
    ("settings.api", _l("API key"), _l("Create, rotate or revoke the key your systems use with the REST API.")),
    (
        "settings.webhooks",
        _l("Webhooks"),
        _l("Where we POST events such as message.delivered, and the delivery log."),
    ),
    ("settings.profile", _l("Your profile"), _l("Name, phone, photo, timezone, language and password.")),
    ("settings.team", _l("Team"), _l("Invite teammates to your account.")),
    ("settings.suppression", _l("Opt-outs"), _l("Numbers that replied STOP, and the keywords that opt people out.")),
    ("settings.audit", _l("Audit log"), _l("Who did what in your account: sign-ins, keys, channels, exports.")),
)

NAV = (
    ("dashboard.index", _l("Dashboard")),
    ("messages.index", _l("Messages")),
    ("inbox.index", _l("Inbox")),
    ("campaigns.index", _l("Campaigns")),
    ("contacts.index", _l("Contacts")),
    ("templates.index", _l("Templates")),
    ("wallet.index", _l("Wallet")),
    ("settings.index", _l("Settings")),
)


class IdConverter(IntegerConverter):
    """``<int:...>`` in every route: a number beyond an INTEGER column matches no route (a 404) instead of
    reaching PostgreSQL, which would refuse it with an error."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def init_web(app: Flask) -> None:
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(_unauthorized)
    _register_errors(app)
    app.before_request(_refuse_nul_characters)
    app.before_request(_check_tenant_role)
    app.before_request(_check_session)
    app.after_request(_security_headers)
    app.context_processor(_layout_context)
    app.add_template_filter(format_ksh, "ksh")
    app.add_template_filter(local_time, "localtime")
    app.add_template_filter(format_number, "number")


def _load_user(user_id: str) -> User | None:
    """Signed in only while the server-side record behind the cookie's token lives (services/accounts/sessions.py):
    a cookie copied before a logout, a password change or an expiry opens nothing."""
    from flask import g, session

    from bulkapp.services.accounts import sessions

    found = sessions.check(int(user_id), session.get(sessions.TOKEN_KEY))
    if found is None:
        return None
    g.user_session, user = found
    return user


def _check_session():
    """Load the user before the view runs, so that the once-a-minute ``last_seen_at`` mark is committed on its own
    (the view may roll back or never commit)."""
    from flask import g, session

    from bulkapp.services.accounts import sessions

    if for_outsiders() or "_user_id" not in session:
        return
    if not current_user.is_authenticated:
        session.pop("_user_id", None)  # ended or expired: the cookie is forgotten too
        session.pop(sessions.TOKEN_KEY, None)
    elif sessions.needs_commit(g.get("user_session")):
        db.session.commit()


def for_outsiders() -> bool:
    """A static file, or a page for outsiders (API, vendors, reply links): the request reads no signed-in user
    (no session check, no two-factor gate, no no-store header for a user)."""
    return request.endpoint == "static" or (request.blueprint or "").split(".")[0] in OUTSIDER_BLUEPRINTS


def _unauthorized():
    from flask import flash, redirect

    login_url = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    if htmx.is_htmx():
        return htmx.unauthorized_response(url_for("auth.login"))
    flash(_l("Please sign in to continue."), "info")
    return redirect(login_url)


def _error_page(status: int, title: str, detail: str):
    if request.path.startswith("/api/"):  # the REST API answers JSON, never a page
        from bulkapp.blueprints.api.errors import status_error_response

        return status_error_response(status)
    if request.path.startswith("/webhooks/"):  # vendors get JSON or plain text as they expect, never a page
        from bulkapp.blueprints.webhooks.common import status_response

        return status_response(status)
    if htmx.is_htmx():
        response = make_response(render_template("partials/alert.html", kind="error", message=detail), status)
        return htmx.retarget(response, "#flash")
    return render_template("error.html", status=status, title=title, detail=detail), status


def _refuse_nul_characters():
    """No text column holds a NUL character (PostgreSQL refuses it outright), and no person types one: say so
    before a form or a search gets anywhere near the database."""
    if (request.blueprint or "").split(".")[0] in OWN_INPUT_CHECKS:
        return None
    fields = [request.args, request.form] if request.method == "POST" else [request.args]
    if any("\x00" in value for multidict in fields for _, values in multidict.lists() for value in values):
        return _error_page(
            400, _l("Not accepted"), _l("Text cannot contain NUL characters. Remove them and try again.")
        )
    return None


def _check_tenant_role():
    """The one permission check (services/accounts/roles.py): a tenant user whose role may not open this page
    gets 403 before the view runs; a user of a closed account is signed out."""
    from flask import abort, flash, redirect
    from flask_login import logout_user

    from bulkapp.services.accounts.roles import has_role, required_role

    role = required_role(request.endpoint)
    if role is None:  # not a tenant page: nothing to read (on SQLite a read here would hold the write lock)
        return None
    if not getattr(current_user, "is_authenticated", False) or current_user.client_id is None:
        return None
    if current_user.client is not None and current_user.client.closed_at is not None:
        logout_user()
        flash(_l("This account is closed. Ask Bulkapp support if you need its data."), "info")
        return redirect(url_for("auth.login"))
    if not has_role(current_user, role):
        abort(403)
    return None


def _register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _error_page(
            400, _l("Form expired"), _l("Your form expired or was sent twice. Reload the page and try again.")
        )

    @app.errorhandler(403)
    def forbidden(error):
        return _error_page(403, _l("Not allowed"), _l("Your role in this team cannot open that page."))

    @app.errorhandler(404)
    def not_found(error):
        return _error_page(404, _l("Not found"), _l("That page does not exist, or it is not yours to see."))

    @app.errorhandler(405)
    def not_allowed(error):
        return _error_page(405, _l("Not allowed"), _l("That action is not available here."))

    @app.errorhandler(413)
    def too_large(error):
        return _error_page(413, _l("Too large"), _l("That upload is too large."))

    @app.errorhandler(429)
    def too_many(error):
        return _error_page(429, _l("Slow down"), _l("Too many attempts. Wait a minute and try again."))

    @app.errorhandler(500)
    def server_error(error):
        db.session.rollback()
        return _error_page(
            500, _l("Something went wrong"), _l("Something went wrong on our side. Nothing was lost; try again.")
        )


def _security_headers(response):
    from flask import current_app

    production_https = request.is_secure and current_app.config.get("ENV_NAME") == "production"
    if current_app.config["SESSION_COOKIE_SECURE"] or production_https:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if not for_outsiders() and getattr(current_user, "is_authenticated", False):
        # A signed-in page (or download) is never kept by the browser or a proxy: after sign-out, Back on a
        # shared computer shows nothing.
        response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'",
    )
    return response


def _layout_context() -> dict:
    from flask import current_app

    if not getattr(current_user, "is_authenticated", False):
        return {"nav": []}
    nav = [(endpoint, label) for endpoint, label in NAV if endpoint in current_app.view_functions]
    nav = [(endpoint, label) for endpoint, label in nav if _may_open(endpoint)]
    if current_user.client_id is None:
        nav = []
    if current_user.is_admin:
        nav.append(("admin.index", _l("Admin")))
    return {
        "nav": nav,
        "unread_notification_count": _unread_notification_count,
        "settings_sections": _settings_sections,
        "nav_endpoints": _endpoints,
        "may_open": _may_open,
        "role_labels": _role_labels(),
    }


def _role_labels() -> dict:
    from bulkapp.services.accounts.roles import ROLE_LABELS

    return ROLE_LABELS


def _may_open(endpoint: str) -> bool:
    """Whether the signed-in user's tenant role opens ``endpoint`` (links they cannot follow are hidden)."""
    from bulkapp.services.accounts.roles import may_open

    return current_user.client_id is None or may_open(current_user, endpoint)


def _endpoints():
    from flask import current_app

    return current_app.view_functions


def _settings_sections() -> list[tuple[str, str, str]]:
    from flask import current_app

    return [s for s in SETTINGS_SECTIONS if s[0] in current_app.view_functions and _may_open(s[0])]


def _unread_notification_count() -> int:
    from bulkapp.services.notifications.notify import unread_count

    return unread_count(current_user.client_id, current_user.id)
