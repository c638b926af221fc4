"""Wallet views: the page, M-Pesa top-ups with their live row, the alert level, history and CSV export."""

from __future__ import annotations

from flask import Response, abort, current_app, flash, render_template, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_login import current_user

from bulkapp import htmx
from bulkapp.blueprints.audit_trail import audit
from bulkapp.blueprints.wallet.blueprint import bp
from bulkapp.blueprints.wallet.forms import (
    QUICK_AMOUNTS,
    HistoryFilterForm,
    ThresholdForm,
    TopupForm,
    national_phone,
)
from bulkapp.columns import utcnow
from bulkapp.extensions import db, limiter
from bulkapp.i18n import current_language
from bulkapp.models import Client, WalletTransaction
from bulkapp.services.billing import ledger_views, topups
from bulkapp.services.billing.wallet_settings import WalletSettingError, current_threshold, set_low_balance_threshold
from bulkapp.tenancy import current_client_id, get_owned_or_404, tenant_required

PAGE = "wallet/page.html"
TOPUP_RATE_LIMIT = "10 per minute"

bp.add_app_template_filter(ledger_views.ksh_exact, "ksh_exact")


def _client() -> Client:
    return db.session.get(Client, current_client_id())


def _read_filters(form: HistoryFilterForm) -> ledger_views.HistoryFilters | None:
    """The history filters from the query string, or None when one of them is not valid."""
    if not form.validate():
        return None
    return ledger_views.HistoryFilters(
        type=form.type.data or None,
        status=form.status.data or None,
        date_from=form.date_from.data,
        date_to=form.date_to.data,
        timezone=current_user.timezone,
    )


def _history_context() -> dict:
    form = HistoryFilterForm(formdata=request.args)
    filters = _read_filters(form)
    history = (
        ledger_views.history_page(current_client_id(), filters, ledger_views.parse_cursor(request.args.get("cursor")))
        if filters
        else None
    )
    return {"filter_form": form, "filters": filters, "history": history}


def _page_context(**overrides) -> dict:
    client = _client()
    low, high = topups.topup_limits()
    context = {
        "client": client,
        "paybill": current_app.config.get("MPESA_PAYBILL"),
        "limits": (low, high),
        "quick_amounts": [amount for amount in QUICK_AMOUNTS if low <= amount <= high],
        "threshold": current_threshold(client),
        "topup_mode": topups.topup_mode(),
    }
    if "topup_form" not in overrides:
        context["topup_form"] = TopupForm(formdata=None, phone=national_phone(current_user.phone))
    if "threshold_form" not in overrides:
        context["threshold_form"] = ThresholdForm(formdata=None, threshold=f"{current_threshold(client):.2f}")
    if "filter_form" not in overrides and not htmx.is_htmx():  # fragments never show the history
        context.update(_history_context())
    context.update(overrides)
    return context


@bp.get("/")
@tenant_required
def index():
    """The wallet page; for HTMX (filters, Older/Newest) only the history card."""
    history = _history_context()
    if history["filters"] is None:
        return htmx.render_form_errors(PAGE, "wallet/partials/history.html", **_page_context(**history))
    return htmx.render(PAGE, "wallet/partials/history.html", **_page_context(**history))


@bp.get("/topup")
@tenant_required
def topup_form():
    """The top-up form again with a quick-pick amount filled in (the phone typed so far is kept)."""
    if not htmx.is_htmx():
        return htmx.redirect(url_for("wallet.index"))
    form = TopupForm(formdata=request.args)
    return render_template("wallet/partials/topup_form.html", **_page_context(topup_form=form))


def _limit_key() -> str:
    return f"topup:{getattr(current_user, 'client_id', None)}"


@bp.post("/topup")
@tenant_required
@limiter.limit(TOPUP_RATE_LIMIT, key_func=_limit_key)
def topup():
    """Send the M-Pesa prompt; the new row appears at the top of the history and follows the payment."""
    form = TopupForm()
    form_error = None
    if form.validate_on_submit():
        try:
            tx = topups.start_stk_topup(
                current_client_id(), form.phone.data or "", form.amount.data or "", user_id=current_user.id
            )
        except topups.TopupError as exc:
            field = getattr(form, exc.field, None) if exc.field else None
            if field is not None:
                field.errors.append(exc.message)
            else:
                form_error = exc.message
        else:
            db.session.commit()
            return _topup_started(tx, form)
    return htmx.render_form_errors(
        PAGE, "wallet/partials/topup_form.html", **_page_context(topup_form=form, form_error=form_error)
    )


def _topup_started(tx: WalletTransaction, form: TopupForm) -> Response:
    state, sentence = topups.describe_topup(tx)
    if not htmx.is_htmx():
        flash(sentence, "error" if state == "failed" else ("success" if state == "completed" else "info"))
        return htmx.redirect(url_for("wallet.index"))
    fresh = TopupForm(formdata=None, phone=form.phone.data)
    response = htmx.render(
        PAGE,
        "wallet/partials/topup_started.html",
        **_page_context(topup_form=fresh, started=ledger_views.present(tx), state=state, sentence=sentence),
    )
    if state == "completed":
        htmx.trigger(response, "notifications-changed")
    return response


@bp.get("/topups/<int:transaction_id>")
@tenant_required
def topup_status(transaction_id: int):
    """One top-up's history row: polls every 2s while M-Pesa is pending. When it settles, the outcome
    also replaces the form's status line; a completed one updates the balance (badge and card) out of
    band and tells the bell to refresh."""
    tx = get_owned_or_404(WalletTransaction, transaction_id)
    if tx.type != "topup":
        abort(404)
    if not htmx.is_htmx():
        return htmx.redirect(url_for("wallet.index"))
    state, sentence = topups.describe_topup(tx)
    response = htmx.render(
        PAGE,
        "wallet/partials/topup_row.html",
        **_page_context(row=ledger_views.present(tx), state=state, sentence=sentence),
    )
    if state == "completed":
        htmx.trigger(response, "notifications-changed")
    return response


@bp.post("/threshold")
@tenant_required
def threshold():
    """Save the low-balance alert level (0 turns the alert off)."""
    form = ThresholdForm()
    saved = None
    if form.validate_on_submit():
        try:
            saved = set_low_balance_threshold(current_client_id(), form.threshold.data or "")
        except WalletSettingError as exc:
            form.threshold.errors.append(str(exc))
        else:
            db.session.commit()
            if not htmx.is_htmx():
                flash(_("Low-balance alert saved."), "success")
                return htmx.redirect(url_for("wallet.index"))
            form = ThresholdForm(formdata=None, threshold=f"{saved:.2f}")
            return htmx.render(
                PAGE, "wallet/partials/threshold.html", **_page_context(threshold_form=form, threshold_saved=True)
            )
    return htmx.render_form_errors(PAGE, "wallet/partials/threshold.html", **_page_context(threshold_form=form))


@bp.get("/history.csv")
@tenant_required
def export():
    """The filtered history as a CSV download, streamed in chunks (exact amounts, local dates)."""
    form = HistoryFilterForm(formdata=request.args)
    filters = _read_filters(form)
    if filters is None:
        problems = "; ".join(f"{form[name].label.text}: {errors[0]}" for name, errors in form.errors.items())
        return render_template("error.html", status=400, title="Check the filters", detail=problems), 400
    client = _client()
    stamp = utcnow().astimezone(ledger_views.zone(current_user.timezone)).strftime("%Y-%m-%d")
    filename = f"wallet-{client.account_number or client.id}-{stamp}.csv"
    # Everything the stream needs is read now: it runs after this request's session is gone, so it must not
    # look at current_user (the language) or any object loaded here.
    rows = ledger_views.history_csv(client.id, filters, language=current_language())
    shown = {k: v[:100] for k, v in form.data.items() if isinstance(v, str) and v and k != "csrf_token"}
    audit("ledger.exported", details={"filters": shown})
    db.session.commit()  # end the request's read: the stream reads in its own short transactions
    return Response(
        stream_with_context(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
