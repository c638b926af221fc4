"""Admin views of paybill payments that were not credited automatically: the list and the assign form."""

from __future__ import annotations

from flask import abort, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from bulkapp import htmx
from bulkapp.blueprints.admin.blueprint import bp
from bulkapp.blueprints.admin.forms import AssignPaymentForm
from bulkapp.blueprints.audit_trail import audit
from bulkapp.extensions import db
from bulkapp.services.billing import ledger_views, paybill
from bulkapp.tenancy import admin_required

PAGE = "admin/unmatched.html"
LIST_PARTIAL = "admin/partials/unmatched_list.html"
PAYMENT_PARTIAL = "admin/partials/unmatched_payment.html"
LARGEST_ID = 2**31 - 1


def _cursor() -> int | None:
    cursor = ledger_views.parse_cursor(request.args.get("before"))
    return cursor if cursor is not None and cursor <= LARGEST_ID else None


def _list_context() -> dict:
    assigned = request.args.get("show") == "assigned"
    before = _cursor()
    rows, next_cursor = paybill.unmatched_page(assigned=assigned, before=before)
    return {
        "payments": rows,
        "assigned_view": assigned,
        "next_cursor": next_cursor,
        "before": before,
        "open_count": paybill.unmatched_count(),
        "reasons": paybill.REASONS,
        "forms": {},
        "assign_form": _blank_form,
    }


def _form(payment_id: int, **kwargs) -> AssignPaymentForm:
    """One form per payment on the page: the prefix keeps their field ids apart."""
    return AssignPaymentForm(prefix=f"payment-{payment_id}", **kwargs)


def _blank_form(payment_id: int) -> AssignPaymentForm:
    return _form(payment_id, formdata=None)


@bp.get("/payments/unmatched")
@admin_required
def unmatched_payments():
    """Paybill payments kept for review, newest first: open ones (default) or ``?show=assigned``."""
    return htmx.render(PAGE, LIST_PARTIAL, **_list_context())


@bp.post("/payments/unmatched/<int:payment_id>/assign")
@admin_required
def assign_unmatched_payment(payment_id: int):
    """Credit one kept payment to a tenant, once. A second submit (or another admin first) changes nothing
    and says so."""
    if payment_id > LARGEST_ID or paybill.unmatched_row(payment_id) is None:
        abort(404)
    form = _form(payment_id)
    notice = None
    if form.validate_on_submit():
        try:
            tx = paybill.assign_unmatched(
                payment_id, form.account_number.data or "", actor_id=current_user.id, reason=form.reason.data or ""
            )
        except paybill.AssignError as exc:
            db.session.rollback()
            field = getattr(form, exc.field, None) if exc.field else None
            (field.errors if field is not None else form.form_errors).append(exc.message)
        else:
            account = (form.account_number.data or "").strip().upper()
            details = {"amount": str(tx.amount), "account": account[:40]}
            target = ("unmatched_payments", payment_id)
            audit("payment.assigned", client_id=tx.client_id, target=target, details=details)
            db.session.commit()
            notice = _(
                "Credited %(amount)s to %(account)s. Their balance is now %(balance)s.",
                amount=ledger_views.ksh_exact(tx.amount),
                account=account,
                balance=ledger_views.ksh_exact(tx.balance_after),
            )
            if not htmx.is_htmx():
                flash(notice, "success")
                return htmx.redirect(url_for("admin.unmatched_payments"))
    if notice is None and not htmx.is_htmx():
        return htmx.render_form_errors(PAGE, LIST_PARTIAL, **{**_list_context(), "forms": {payment_id: form}})
    context = {
        "row": paybill.unmatched_row(payment_id),
        "form": form,
        "notice": notice,
        "reasons": paybill.REASONS,
        "assign_form": _blank_form,
    }
    if notice is None:
        return htmx.render_form_errors(PAGE, PAYMENT_PARTIAL, **context)
    # The tab's count of waiting payments follows (out of band).
    return htmx.render(PAGE, PAYMENT_PARTIAL, **context, open_count=paybill.unmatched_count(), assigned_view=False)
