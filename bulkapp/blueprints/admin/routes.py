"""Admin views: the clients list and the create form, one client's account, edit form, manual
adjustment and read-only ledger."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, current_app, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from bulkapp import htmx
from bulkapp.blueprints.admin.blueprint import bp
from bulkapp.blueprints.admin.forms import AdjustmentForm, ClientCreateForm, ClientEditForm
from bulkapp.blueprints.audit_trail import audit
from bulkapp.columns import to_decimal
from bulkapp.extensions import db
from bulkapp.i18n import local_date, status_label
from bulkapp.models import Client, User
from bulkapp.services.accounts.client_admin import (
    ClientAdminError,
    adjust_balance,
    create_client_account,
    new_adjustment_reference,
    update_client,
)
from bulkapp.services.billing import ledger_views
from bulkapp.services.insights import charts
from bulkapp.services.insights import platform as platform_stats
from bulkapp.tenancy import admin_required

CLIENT_PAGE = "admin/client.html"
CLIENT_PARTIAL = "admin/partials/client.html"

bp.add_app_template_filter(ledger_views.ksh_exact, "ksh_exact")


def _index_context(create_form: ClientCreateForm | None = None) -> dict:
    q = (request.args.get("q") or "").strip()
    query = sa.select(Client).order_by(Client.name)
    if q:
        like = f"%{q}%"
        query = query.where(sa.or_(Client.name.ilike(like), Client.account_number.ilike(like)))
    clients = db.session.scalars(query.limit(200)).all()
    totals = db.session.execute(sa.select(sa.func.count(Client.id), sa.func.sum(Client.balance))).one()
    if create_form is None:
        create_form = ClientCreateForm(
            formdata=None, price_per_unit=to_decimal(current_app.config["DEFAULT_PRICE_PER_UNIT"])
        )
    # The platform figures are on the full page only, not on each search keystroke's fragment.
    platform = None if htmx.is_htmx() else _platform_context()
    return {"clients": clients, "q": q, "totals": totals, "create_form": create_form, "platform": platform}


STATUS_ORDER = ("delivered", "sent", "failed", "pending", "sending", "unknown")


def _tick(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:,.1f}"


def _short_day(day) -> str:
    return local_date(day, "dd MMM")  # "06 Dec", "06 Des": the month in the page's language


def _platform_context() -> dict:
    totals = platform_stats.platform_totals(tz_name=current_user.timezone)
    dates = [d.day for d in totals.days]
    return {
        "totals": totals,
        "messages_chart": charts.stacked_bars(
            dates,
            [d.by_status for d in totals.days],
            STATUS_ORDER,
            width=480,
            height=200,
            label=_tick,
            day_label=_short_day,
            series_label=status_label,
        ),
        "revenue_chart": charts.stacked_bars(
            dates,
            [{"spend": float(d.revenue)} for d in totals.days],
            ("spend",),
            width=480,
            height=200,
            label=_tick,
            day_label=_short_day,
            series_label=lambda _: "KSh",
        ),
    }


@bp.get("/")
@admin_required
def index():
    return htmx.render("admin/page.html", "admin/partials/clients.html", **_index_context())


@bp.post("/clients")
@admin_required
def create_client():
    form = ClientCreateForm()
    if form.validate_on_submit():
        try:
            client = create_client_account(
                form.name.data,
                sender_id=form.sender_id.data,
                price_per_unit=form.price_per_unit.data,
                opening_balance=form.opening_balance.data or 0,
                test_mode=form.test_mode.data,
                owner_name=form.owner_name.data,
                owner_email=form.owner_email.data,
                owner_password=form.owner_password.data,
            )
        except ClientAdminError as exc:
            _attach(form, exc)
        else:
            db.session.commit()
            created = _(
                "Client %(name)s created with paybill account %(account)s.",
                name=client.name,
                account=client.account_number,
            )
            if form.owner_email.data:
                created += " " + _("Its owner can sign in as %(email)s.", email=form.owner_email.data.strip().lower())
            flash(created, "success")
            return htmx.redirect(url_for("admin.client", client_id=client.id))
    return htmx.render_form_errors("admin/page.html", "admin/partials/create_client.html", **_index_context(form))


def _attach(form, exc: ClientAdminError) -> None:
    """Put a service error on its field, or on the form as a whole."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)


def _client_or_404(client_id: int) -> Client:
    client = db.session.get(Client, client_id) if client_id < 2**31 else None  # ids are INTEGER
    if client is None:
        abort(404)
    return client


def _edit_form(client: Client) -> ClientEditForm:
    return ClientEditForm(
        formdata=None,
        name=client.name,
        sender_id=client.sender_id or "",
        price_per_unit=client.price_per_unit,
        tier=client.tier,
        status="active" if client.status else "suspended",
        is_test_mode=client.is_test_mode,
        auto_sync_balance=client.auto_sync_balance,
    )


def _client_context(client: Client, **overrides) -> dict:
    filters = ledger_views.HistoryFilters(timezone=current_user.timezone)
    context = {
        "client": client,
        "users": db.session.scalars(sa.select(User).where(User.client_id == client.id).order_by(User.id)).all(),
        "ledger": ledger_views.history_page(client.id, filters, ledger_views.parse_cursor(request.args.get("cursor"))),
        "channels": platform_stats.client_channels(client.id),
        "campaigns": platform_stats.client_campaigns(client.id),
        "edit_form": _edit_form(client),
        "adjust_form": AdjustmentForm(formdata=None, reference=new_adjustment_reference()),
        "notice": None,
    }
    context.update(overrides)
    return context


@bp.get("/clients/<int:client_id>")
@admin_required
def client(client_id: int):
    return htmx.render(CLIENT_PAGE, CLIENT_PARTIAL, **_client_context(_client_or_404(client_id)))


@bp.post("/clients/<int:client_id>/edit")
@admin_required
def edit_client(client_id: int):
    client = _client_or_404(client_id)
    form = ClientEditForm()
    if form.validate_on_submit():
        try:
            changed = update_client(
                client.id,
                name=form.name.data,
                sender_id=form.sender_id.data,
                price_per_unit=form.price_per_unit.data,
                tier=form.tier.data,
                active=form.status.data == "active",
                test_mode=form.is_test_mode.data,
                auto_sync_balance=form.auto_sync_balance.data,
            )
        except ClientAdminError as exc:
            db.session.rollback()
            _attach(form, exc)
        else:
            if changed:  # going live (test mode off) and back, suspension, price, tier...
                audit("client.updated", client_id=client.id, target=client, details=changed)
            db.session.commit()
            return _client_saved(client, ("success", _("Saved the account settings of %(name)s.", name=client.name)))
    client = _client_or_404(client_id)
    return htmx.render_form_errors(CLIENT_PAGE, CLIENT_PARTIAL, **_client_context(client, edit_form=form))


@bp.post("/clients/<int:client_id>/adjust")
@admin_required
def adjust_client(client_id: int):
    client = _client_or_404(client_id)
    form = AdjustmentForm()
    if form.validate_on_submit():
        try:
            done = adjust_balance(
                client.id,
                direction=form.direction.data,
                amount=form.amount.data,
                reason=form.reason.data,
                actor=current_user,
                reference=form.reference.data or "",
            )
        except ClientAdminError as exc:
            db.session.rollback()
            _attach(form, exc)
        else:
            if not done.replayed:
                tx = done.transaction
                details = {"amount": str(tx.amount), "balance_after": str(tx.balance_after), "reason": form.reason.data}
                audit("wallet.adjusted", client_id=client.id, target=tx, details=details)
            db.session.commit()
            return _client_saved(client, _adjustment_notice(done))
    client = _client_or_404(client_id)
    return htmx.render_form_errors(CLIENT_PAGE, CLIENT_PARTIAL, **_client_context(client, adjust_form=form))


def _adjustment_notice(done) -> tuple[str, str]:
    tx = done.transaction
    if done.replayed:
        return "info", _("This adjustment was already applied (the form was sent twice); nothing changed.")
    amount, after = ledger_views.ksh_exact(abs(tx.amount)), ledger_views.ksh_exact(tx.balance_after)
    if tx.amount > 0:
        return "success", _("Added %(amount)s. The balance is now %(balance)s.", amount=amount, balance=after)
    return "success", _("Took off %(amount)s. The balance is now %(balance)s.", amount=amount, balance=after)


def _client_saved(client: Client, notice: tuple[str, str]):
    """After a change: the plain form post goes back to the page; HTMX gets the refreshed section."""
    if not htmx.is_htmx():
        flash(notice[1], notice[0])
        return htmx.redirect(url_for("admin.client", client_id=client.id))
    db.session.refresh(client)
    return htmx.render(CLIENT_PAGE, CLIENT_PARTIAL, **_client_context(client, notice=notice))
