"""Contact views: the searchable list, inline add/edit/delete, bulk delete, the contact page and CSV export."""

from __future__ import annotations

import io
import re
from datetime import date

from flask import Response, current_app, flash, render_template, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from bulkapp import htmx, spreadsheet
from bulkapp.blueprints.audit_trail import audit
from bulkapp.blueprints.contacts.blueprint import bp
from bulkapp.blueprints.contacts.forms import ContactDetailsForm, ContactForm
from bulkapp.extensions import db
from bulkapp.i18n import stored_text
from bulkapp.models import Contact
from bulkapp.parsing import parse_id, parse_ids
from bulkapp.services.contacts import book as contacts
from bulkapp.tenancy import current_client_id, get_owned_or_404, tenant_required

LIST_PAGE = "contacts/page.html"
LIST = "contacts/partials/list.html"
NEW_FORM = "contacts/partials/new_form.html"
ROW = "contacts/partials/row.html"
EDIT_ROW = "contacts/partials/edit_row.html"
DETAILS = "contacts/partials/details.html"
CONTACT_PAGE = "contacts/contact.html"
COUNT = "contacts/partials/count.html"


def _filters() -> dict[str, str]:
    return {
        "q": (request.values.get("q") or "").strip()[:100],
        "department": (request.values.get("department") or "").strip()[:80],
    }


def _cursor(name: str) -> int | None:
    return parse_id(request.args.get(name))


def _list_context(notice: str | None = None) -> dict:
    client_id = current_client_id()
    filters = _filters()
    return {
        "listing": contacts.page_of_contacts(client_id, **filters, after=_cursor("after"), before=_cursor("before")),
        "total": contacts.count_contacts(client_id, **filters),
        "departments": contacts.departments(client_id),
        "filters": filters,
        "query_args": {key: value for key, value in filters.items() if value},
        "no_department": contacts.NO_DEPARTMENT,
        "notice": notice,
    }


def _page_context(form: ContactForm | None = None) -> dict:
    return {**_list_context(), "form": form or ContactForm(prefix="new")}


@bp.get("/")
@tenant_required
def index():
    context = _list_context() if htmx.is_htmx() else _page_context()
    return htmx.render(LIST_PAGE, LIST, **context)


@bp.post("/")
@tenant_required
def create():
    form = ContactForm(prefix="new")
    if form.validate():
        try:
            contact = contacts.create_contact(
                current_client_id(), contact=form.contact.data, name=form.name.data, department=form.department.data
            )
        except contacts.ContactError as exc:
            form[exc.field].errors.append(stored_text(exc.message))
        else:
            db.session.commit()
            label = contact.name or contact.contact
            if not htmx.is_htmx():
                flash(_("%(name)s added.", name=label), "success")
                return htmx.redirect(url_for(".index"))
            response = htmx.render(LIST_PAGE, NEW_FORM, form=ContactForm(prefix="new", formdata=None), added=label)
            return htmx.trigger(response, "contacts-changed")
    context = {"form": form} if htmx.is_htmx() else _page_context(form)
    return htmx.render_form_errors(LIST_PAGE, NEW_FORM, **context)


@bp.get("/<int:contact_id>/row")
@tenant_required
def row(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    if not htmx.is_htmx():  # a row alone is no page: open the contact's own page
        return htmx.redirect(url_for(".show", contact_id=contact.id))
    return htmx.render(LIST_PAGE, ROW, contact=contact)


@bp.get("/<int:contact_id>/edit")
@tenant_required
def edit(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    if not htmx.is_htmx():  # the inline editor is a row of the list: without HTMX, edit on the contact's page
        return htmx.redirect(url_for(".edit_details", contact_id=contact.id))
    form = ContactForm(prefix=f"edit-{contact.id}", obj=contact, formdata=None)
    return htmx.render(LIST_PAGE, EDIT_ROW, contact=contact, form=form)


def _save(contact: Contact, form: ContactForm, fields: dict | None = None) -> bool:
    try:
        contacts.update_contact(
            current_client_id(),
            contact.id,
            contact=form.contact.data,
            name=form.name.data,
            department=form.department.data,
            fields=fields,
        )
    except contacts.ContactError as exc:
        db.session.rollback()
        form[exc.field].errors.append(stored_text(exc.message))
        return False
    db.session.commit()
    return True


@bp.post("/<int:contact_id>")
@tenant_required
def update(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    form = ContactForm(prefix=f"edit-{contact.id}")
    if form.validate() and _save(contact, form):
        if not htmx.is_htmx():
            return htmx.redirect(url_for(".index"))
        return htmx.render(LIST_PAGE, ROW, contact=contact)
    contact = get_owned_or_404(Contact, contact_id)
    if not htmx.is_htmx():
        for errors in form.errors.values():
            flash(" ".join(str(e) for e in errors), "error")
        return htmx.redirect(url_for(".show", contact_id=contact.id))
    return htmx.render_form_errors(LIST_PAGE, EDIT_ROW, contact=contact, form=form)


@bp.delete("/<int:contact_id>")
@tenant_required
def delete(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    label = contact.name or contact.contact
    contacts.delete_contacts(current_client_id(), [contact.id])
    db.session.commit()
    if htmx.target() == f"contact-row-{contact_id}":
        # The row swaps itself out (empty body); the count above the list follows out of band.
        filters = _filters()
        return render_template(
            COUNT,
            oob=True,
            total=contacts.count_contacts(current_client_id(), **filters),
            query_args={key: value for key, value in filters.items() if value},
        )
    flash(_("%(name)s deleted.", name=label), "success")
    return htmx.redirect(url_for(".index"))


@bp.post("/bulk-delete")
@tenant_required
def bulk_delete():
    ids = parse_ids(request.form.getlist("ids"))
    try:
        deleted = contacts.delete_contacts(current_client_id(), ids)
    except contacts.ContactError as exc:
        notice = stored_text(exc.message)
    else:
        db.session.commit()
        notice = (
            ngettext("Deleted %(count)s contact.", "Deleted %(count)s contacts.", deleted, count=f"{deleted:,}")
            if deleted
            else _("Select contacts first.")
        )
    if not htmx.is_htmx():
        flash(notice, "success")
        return htmx.redirect(url_for(".index", **_filters()))
    return htmx.render(LIST_PAGE, LIST, **_list_context(notice=notice))


@bp.get("/<int:contact_id>")
@tenant_required
def show(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    return htmx.render(CONTACT_PAGE, DETAILS, **_contact_context(contact))


def _contact_context(contact: Contact, form: ContactDetailsForm | None = None, editing: bool = False) -> dict:
    if form is None:
        form = ContactDetailsForm(obj=contact, formdata=None)
        form.fields.data = contacts.fields_text(contact.fields)
    return {
        "contact": contact,
        "form": form,
        "editing": editing,
        "activity": contacts.contact_activity(current_client_id(), contact),
        "inbox_endpoint": _endpoint("inbox.conversation"),
        "campaign_endpoint": _endpoint("campaigns.show"),
    }


def _endpoint(name: str) -> str | None:
    return name if name in current_app.view_functions else None


@bp.get("/<int:contact_id>/details/edit")
@tenant_required
def edit_details(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    return htmx.render(CONTACT_PAGE, DETAILS, **_contact_context(contact, editing=True))


@bp.post("/<int:contact_id>/details")
@tenant_required
def update_details(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    form = ContactDetailsForm()
    if form.validate():
        try:
            fields = contacts.parse_fields_text(form.fields.data)
        except contacts.ContactError as exc:
            form.fields.errors.append(stored_text(exc.message))
        else:
            if _save(contact, form, fields=fields):
                if not htmx.is_htmx():
                    return htmx.redirect(url_for(".show", contact_id=contact_id))
                return htmx.render(CONTACT_PAGE, DETAILS, **_contact_context(contact), saved=True)
    contact = get_owned_or_404(Contact, contact_id)
    return htmx.render_form_errors(CONTACT_PAGE, DETAILS, **_contact_context(contact, form=form, editing=True))


@bp.get("/export.csv")
@tenant_required
def export():
    filters = _filters()
    rows = contacts.export_rows(current_client_id(), **filters)
    audit("contacts.exported", details={"filters": {k: v for k, v in filters.items() if v}})
    db.session.commit()
    return csv_download(rows, f"contacts-{date.today().isoformat()}.csv")


def csv_download(rows, filename: str) -> Response:
    """Stream CSV rows as a download (with a BOM, so Excel reads the text as UTF-8)."""
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "-", filename).strip("-") or "download.csv"

    def generate():
        buffer = io.StringIO()
        writer = spreadsheet.writer(buffer)  # every cell guarded against formulas
        yield "\ufeff"
        for number, row in enumerate(rows):
            writer.writerow(row)
            if number % 500 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{safe_name}"', "Cache-Control": "no-store"},
    )
