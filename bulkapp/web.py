"""Web-wide wiring: user loading, error pages (HTMX-aware), security headers and template helpers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import Flask, make_response, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from bulkapp import htmx
from bulkapp.extensions import db, login_manager
from bulkapp.models import User

# Settings sections, shown on /settings when their endpoint exists: (endpoint, title, description).
SETTINGS_SECTIONS = (
    ("settings.channels", "Channels", "Your SMS, WhatsApp and email provider accounts, and their webhook URLs."),
    ("settings.api", "API key", "Create, rotate or revoke the key your systems use with the REST API."),
    ("settings.webhooks", "Webhooks", "Where we POST events such as message.delivered, and the delivery log."),
    ("settings.profile", "Your profile", "Name, phone, photo, timezone, language and password."),
    ("settings.team", "Team", "Invite teammates to your account."),
    ("settings.suppression", "Opt-outs", "Numbers that replied STOP, and the keywords that opt people out."),
)

NAV = (
    ("dashboard.index", "Dashboard"),
    ("messages.index", "Messages"),
    ("inbox.index", "Inbox"),
    ("campaigns.index", "Campaigns"),
    ("contacts.index", "Contacts"),
    ("templates.index", "Templates"),
    ("wallet.index", "Wallet"),
    ("settings.index", "Settings"),
)


def init_web(app: Flask) -> None:
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(_unauthorized)
    _register_errors(app)
    app.after_request(_security_headers)
    app.context_processor(_layout_context)
    app.add_template_filter(format_ksh, "ksh")
    app.add_template_filter(local_time, "localtime")


def _load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def _unauthorized():
    from flask import flash, redirect

    login_url = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
    if htmx.is_htmx():
        return htmx.unauthorized_response(url_for("auth.login"))
    flash("Please sign in to continue.", "info")
    return redirect(login_url)


def _error_page(status: int, title: str, detail: str):
    if htmx.is_htmx():
        response = make_response(render_template("partials/alert.html", kind="error", message=detail), status)
        return htmx.retarget(response, "#flash")
    return render_template("error.html", status=status, title=title, detail=detail), status


def _register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _error_page(400, "Form expired", "Your form expired or was sent twice. Reload the page and try again.")

    @app.errorhandler(404)
    def not_found(error):
        return _error_page(404, "Not found", "That page does not exist, or it is not yours to see.")

    @app.errorhandler(405)
    def not_allowed(error):
        return _error_page(405, "Not allowed", "That action is not available here.")

    @app.errorhandler(413)
    def too_large(error):
        return _error_page(413, "Too large", "That upload is too large.")

    @app.errorhandler(429)
    def too_many(error):
        return _error_page(429, "Slow down", "Too many attempts. Wait a minute and try again.")

    @app.errorhandler(500)
    def server_error(error):
        db.session.rollback()
        return _error_page(
            500, "Something went wrong", "Something went wrong on our side. Nothing was lost; try again."
        )


def _security_headers(response):
    from flask import current_app

    if current_app.config["SESSION_COOKIE_SECURE"]:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
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
    if current_user.client_id is None:
        nav = []
    if current_user.is_admin:
        nav.append(("admin.index", "Admin"))
    return {
        "nav": nav,
        "unread_notification_count": _unread_notification_count,
        "settings_sections": _settings_sections,
        "nav_endpoints": _endpoints,
    }


def _endpoints():
    from flask import current_app

    return current_app.view_functions


def _settings_sections() -> list[tuple[str, str, str]]:
    from flask import current_app

    return [section for section in SETTINGS_SECTIONS if section[0] in current_app.view_functions]


def _unread_notification_count() -> int:
    from bulkapp.services.notifications import unread_count

    return unread_count(current_user.client_id, current_user.id)


def format_ksh(value) -> str:
    if value is None:
        return "—"
    return f"KSh {Decimal(value):,.2f}"


def local_time(value: datetime | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    if value is None:
        return "—"
    tz = getattr(current_user, "timezone", None) or "Africa/Nairobi"
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)
