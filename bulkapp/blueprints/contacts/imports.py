"""Contact import views: upload a CSV, map its columns, watch the progress, download the per-row report."""

from __future__ import annotations

from flask import Response, current_app, flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from bulkapp import htmx
from bulkapp.blueprints.contacts.blueprint import bp
from bulkapp.blueprints.contacts.forms import UploadForm, make_mapping_form
from bulkapp.blueprints.contacts.routes import csv_download
from bulkapp.extensions import db, rq
from bulkapp.jobs.contacts import import_contacts
from bulkapp.models import ContactImport
from bulkapp.services.contacts import csv_files as contact_csv
from bulkapp.services.contacts import importing as contact_import
from bulkapp.tenancy import current_client_id, get_owned_or_404, tenant_required

UPLOAD_PAGE = "contacts/import.html"
UPLOAD_FORM = "contacts/partials/upload_form.html"
IMPORT_PAGE = "contacts/import_detail.html"
MAPPING = "contacts/partials/mapping.html"
PROGRESS = "contacts/partials/progress.html"


def _upload_limit() -> int:
    config = current_app.config
    return int(config.get("CONTACT_IMPORT_MAX_BYTES") or config.get("MAX_CONTENT_LENGTH") or 10_000_000)


def _human_size(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f}".removesuffix(".0") + " MB"
    return f"{max(round(size / 1024), 1)} KB"


def _upload_context(form: UploadForm) -> dict:
    context = {"form": form, "limit": _human_size(_upload_limit())}
    if not htmx.is_htmx():
        context["imports"] = contact_import.recent_imports(current_client_id())
    return context


@bp.get("/import")
@tenant_required
def import_start():
    return htmx.render(UPLOAD_PAGE, UPLOAD_FORM, **_upload_context(UploadForm()))


def _too_large() -> Response:
    form = UploadForm(formdata=None)
    size, limit = request.content_length, _human_size(_upload_limit())
    form.file.errors = [
        _(
            "The file is about %(size)s; the limit is %(limit)s. Split it into smaller files, or delete columns "
            "you do not need, and upload each part.",
            size=_human_size(size),
            limit=limit,
        )
        if size
        else _(
            "The file is too large; the limit is %(limit)s. Split it into smaller files, or delete columns "
            "you do not need, and upload each part.",
            limit=limit,
        )
    ]
    return htmx.render(UPLOAD_PAGE, UPLOAD_FORM, status=413, **_upload_context(form))


@bp.post("/import")
@tenant_required
def upload():
    limit = _upload_limit()
    request.max_content_length = limit
    try:
        form = UploadForm()
        valid = form.validate_on_submit()
    except RequestEntityTooLarge:
        return _too_large()
    if valid:
        upload = form.file.data
        try:
            imp = contact_import.start_import(
                current_client_id(), current_user.id, upload.filename, upload.stream, max_bytes=limit
            )
        except contact_csv.ImportTooLarge:
            return _too_large()
        except contact_csv.ImportFileError as exc:
            form.file.errors.append(exc.message)
        else:
            db.session.commit()
            return htmx.redirect(url_for(".import_detail", import_id=imp.id))
    return htmx.render_form_errors(UPLOAD_PAGE, UPLOAD_FORM, **_upload_context(form))


def _mapping_context(imp: ContactImport, form=None, errors: list[str] | None = None) -> dict:
    roles = contact_csv.roles_from_mapping(imp.mapping, len(imp.columns))
    return {
        "imp": imp,
        "form": form or make_mapping_form(imp.columns, roles),
        "rows": contact_import.preview_rows(imp),
        "field_keys": _field_keys(imp),
        "errors": errors or [],
        "inline_rows": contact_import.INLINE_ROWS,
        # A file without any phone or email column is refused here, before Import, not row by row after it.
        "no_contact_column": contact_import.NO_CONTACT_COLUMN if not contact_import.contact_columns(imp) else None,
    }


def _field_keys(imp: ContactImport) -> dict[int, str]:
    """The variable name each column gets as a template variable: exact for the columns mapped so, the
    likely one for the others (shown when the user switches a column to "Template variable")."""
    likely = contact_csv.mapping_from_roles(imp.columns, ["field"] * len(imp.columns))["fields"]
    keys = {index: key for key, index in likely.items()}
    keys.update({index: key for key, index in (imp.mapping.get("fields") or {}).items()})
    return keys


def _progress_context(imp: ContactImport) -> dict:
    finished = imp.status in ("done", "failed")
    problems = list(contact_import.report_rows(imp.client_id, imp.id, limit=20)) if finished else []
    return {
        "imp": imp,
        "problems": problems,
        "summary": contact_import.summary(imp),
        "listed": contact_import.report_count(imp) if finished else 0,
        "unnamed": contact_import.report_count(imp, "added") if finished else 0,
    }


@bp.get("/import/<int:import_id>")
@tenant_required
def import_detail(import_id: int):
    imp = get_owned_or_404(ContactImport, import_id)
    if imp.status == "mapping":
        return htmx.render(IMPORT_PAGE, MAPPING, **_mapping_context(imp))
    return htmx.render(IMPORT_PAGE, PROGRESS, **_progress_context(imp))


@bp.post("/import/<int:import_id>")
@tenant_required
def import_map(import_id: int):
    imp = get_owned_or_404(ContactImport, import_id)
    if imp.status != "mapping":  # a double submit: the first one started it
        return htmx.redirect(url_for(".import_detail", import_id=imp.id))
    form = make_mapping_form(imp.columns, contact_csv.roles_from_mapping(imp.mapping, len(imp.columns)))
    errors: list[str] = []
    if form.validate():
        roles = [form[f"role_{index}"].data for index in range(len(imp.columns))]
        try:
            imp, started = contact_import.apply_mapping(current_client_id(), imp.id, roles)
        except contact_import.MappingError as exc:
            errors = exc.messages
        else:
            db.session.commit()
            if started:
                _run(imp)
            return htmx.redirect(url_for(".import_detail", import_id=imp.id))
    return htmx.render_form_errors(IMPORT_PAGE, MAPPING, **_mapping_context(imp, form, errors))


def _run(imp: ContactImport) -> None:
    """Small files import while the user waits; big ones in the background with a progress bar."""
    if imp.total_rows <= contact_import.INLINE_ROWS:
        import_contacts(imp.id)
    else:
        rq.enqueue(import_contacts, imp.id, queue="default")


@bp.get("/import/<int:import_id>/progress")
@tenant_required
def import_progress(import_id: int):
    imp = get_owned_or_404(ContactImport, import_id)
    if not htmx.is_htmx():  # the polled fragment alone is no page: open the import
        return htmx.redirect(url_for(".import_detail", import_id=imp.id))
    return htmx.render(IMPORT_PAGE, PROGRESS, **_progress_context(imp))


@bp.get("/import/<int:import_id>/report.csv")
@tenant_required
def import_report(import_id: int):
    imp = get_owned_or_404(ContactImport, import_id)
    rows = contact_import.report_csv_rows(imp.client_id, imp.id)
    return csv_download(rows, imp.filename.rsplit(".", 1)[0] + "-report.csv")


@bp.delete("/import/<int:import_id>")
@tenant_required
def import_discard(import_id: int):
    imp = get_owned_or_404(ContactImport, import_id)
    filename = imp.filename
    if contact_import.discard_import(current_client_id(), imp.id):
        db.session.commit()
        flash(_("%(filename)s discarded.", filename=filename), "info")
    return htmx.redirect(url_for(".import_start"))
