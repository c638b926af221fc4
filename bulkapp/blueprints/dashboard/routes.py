"""Dashboard views."""

from flask import redirect, url_for
from flask_login import current_user

from bulkapp import htmx
from bulkapp.blueprints.dashboard import bp
from bulkapp.services.dashboard import dashboard_stats
from bulkapp.tenancy import current_client_id, tenant_required


@bp.get("/")
def home():
    if current_user.is_authenticated:
        return redirect(url_for("admin.index" if current_user.client_id is None else "dashboard.index"))
    return redirect(url_for("auth.login"))


@bp.get("/dashboard")
@tenant_required
def index():
    stats = dashboard_stats(current_client_id(), current_user.timezone)
    return htmx.render("dashboard/page.html", "dashboard/partials/stats.html", stats=stats)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}
