"""Dashboard views: KPIs, charts over 7/30/90 days, recent campaigns and conversations."""

from decimal import Decimal

from flask import redirect, request, url_for
from flask_login import current_user

from bulkapp import htmx
from bulkapp.blueprints.dashboard.blueprint import bp
from bulkapp.i18n import local_date, status_label
from bulkapp.parsing import parse_int
from bulkapp.services.insights import charts, dashboard
from bulkapp.tenancy import current_client_id, tenant_required

STATUS_ORDER = ("delivered", "sent", "failed", "pending", "sending", "unknown")


@bp.get("/")
def home():
    if current_user.is_authenticated:
        return redirect(url_for("admin.index" if current_user.client_id is None else "dashboard.index"))
    return redirect(url_for("auth.login"))


def _range() -> int:
    days = parse_int(request.args.get("range"), 1, 366)
    return days if days in dashboard.RANGES else 30


def _ksh_tick(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:,.2f}"


def _short_day(day) -> str:
    """A chart's day label, month name in the page's language ("06 Dec", "06 Des")."""
    return local_date(day, "dd MMM")


def _charts_context(client_id: int, days: int) -> dict:
    tz = current_user.timezone
    series = dashboard.daily_series(client_id, days, tz)
    dates = [point.day for point in series]
    return {
        "days": days,
        "ranges": dashboard.RANGES,
        "messages_chart": charts.stacked_bars(
            dates, [p.by_status for p in series], STATUS_ORDER, day_label=_short_day, series_label=status_label
        ),
        "spend_chart": charts.stacked_bars(
            dates,
            [{"spend": float(p.spend)} for p in series],
            ("spend",),
            width=300,
            height=120,
            label=_ksh_tick,
            day_label=_short_day,
            series_label=lambda _: "KSh",
        ),
        "channel_rates": dashboard.delivery_by_channel(client_id, days, tz),
        "period_total": sum(p.total for p in series),
        "period_spend": sum((p.spend for p in series), start=Decimal(0)),
    }


def _page_context(client_id: int) -> dict:
    return {
        "stats": dashboard.dashboard_stats(client_id, current_user.timezone),
        "campaigns": dashboard.recent_campaigns(client_id),
        "conversations": dashboard.recent_conversations(client_id),
        **_charts_context(client_id, _range()),
    }


@bp.get("/dashboard")
@tenant_required
def index():
    client_id = current_client_id()
    if htmx.is_htmx():
        stats = dashboard.dashboard_stats(client_id, current_user.timezone)
        return htmx.render("dashboard/page.html", "dashboard/partials/stats.html", stats=stats)
    return htmx.render("dashboard/page.html", "dashboard/partials/stats.html", **_page_context(client_id))


@bp.get("/dashboard/charts")
@tenant_required
def chart_panel():
    client_id = current_client_id()
    if htmx.is_htmx():
        return htmx.render(
            "dashboard/page.html", "dashboard/partials/charts.html", **_charts_context(client_id, _range())
        )
    return htmx.render("dashboard/page.html", "dashboard/partials/charts.html", **_page_context(client_id))


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}
