"""Template views: the list per channel, the editor with its live preview, and delete."""

from __future__ import annotations

from flask import flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from bulkapp import htmx
from bulkapp.blueprints.templates.blueprint import bp
from bulkapp.blueprints.templates.forms import TemplateForm
from bulkapp.extensions import db
from bulkapp.models import CHANNELS, Template
from bulkapp.services.messaging import templates
from bulkapp.tenancy import current_client_id, get_owned_or_404, tenant_required

LIST_PAGE = "templates/page.html"
LIST = "templates/partials/list.html"
EDIT_PAGE = "templates/edit.html"
FORM = "templates/partials/form.html"
PREVIEW = "templates/partials/preview.html"


def _channel_filter() -> str | None:
    channel = request.args.get("channel")
    return channel if channel in CHANNELS else None


@bp.get("/")
@tenant_required
def index():
    channel = _channel_filter()
    return htmx.render(
        LIST_PAGE, LIST, templates=templates.list_templates(current_client_id(), channel), channel=channel
    )


def _samples(variables: list[str]) -> dict[str, str]:
    """Sample values posted from the preview panel; a cleared box stays empty (to preview a missing value)."""
    posted = {key[len("sample_") :]: value for key, value in request.form.items() if key.startswith("sample_")}
    defaults = templates.sample_values(variables)
    return {var: posted[var] if var in posted else defaults[var] for var in variables}


def _editor_context(form: TemplateForm, template: Template | None, samples: dict[str, str] | None = None) -> dict:
    content = form.content.data or ""
    variables = templates.detect_variables(content)
    samples = samples if samples is not None else templates.sample_values(variables)
    return {
        "form": form,
        "template": template,
        "samples": samples,
        "preview": templates.preview_template(current_user.client, form.channel.data, content, samples),
        "whatsapp_languages": templates.COMMON_WHATSAPP_LANGUAGES,
    }


@bp.get("/new")
@tenant_required
def new():
    form = TemplateForm(channel=_channel_filter() or "sms")
    return htmx.render(EDIT_PAGE, FORM, **_editor_context(form, None))


@bp.get("/<int:template_id>")
@tenant_required
def edit(template_id: int):
    template = get_owned_or_404(Template, template_id)
    return htmx.render(EDIT_PAGE, FORM, **_editor_context(TemplateForm(obj=template), template))


def _save(form: TemplateForm, template: Template | None):
    if form.validate():
        try:
            saved = templates.save_template(
                current_client_id(),
                name=form.name.data,
                content=form.content.data,
                channel=form.channel.data,
                whatsapp_template_id=form.whatsapp_template_id.data,
                whatsapp_language=form.whatsapp_language.data,
                template_id=template.id if template else None,
            )
        except templates.TemplateError as exc:
            db.session.rollback()
            form[exc.field].errors.append(exc.message)
        else:
            db.session.commit()
            flash(_("Template “%(name)s” saved.", name=saved.name), "success")
            return htmx.redirect(url_for(".index"))
    return htmx.render_form_errors(EDIT_PAGE, FORM, **_editor_context(form, template))


@bp.post("/")
@tenant_required
def create():
    return _save(TemplateForm(), None)


@bp.post("/<int:template_id>")
@tenant_required
def update(template_id: int):
    return _save(TemplateForm(), get_owned_or_404(Template, template_id))


@bp.delete("/<int:template_id>")
@tenant_required
def delete(template_id: int):
    template = get_owned_or_404(Template, template_id)
    name = template.name
    templates.delete_template(current_client_id(), template.id)
    db.session.commit()
    if htmx.target() == f"template-row-{template_id}":
        return ""  # the row swaps itself out
    flash(_("Template “%(name)s” deleted.", name=name), "success")
    return htmx.redirect(url_for(".index"))


@bp.post("/preview")
@tenant_required
def preview():
    """The live preview: the rendered text, encoding, segments and price; the sample boxes are swapped too
    (out of band) when the set of variables changed."""
    form = TemplateForm()
    content = form.content.data or ""
    variables = templates.detect_variables(content)
    samples = _samples(variables)
    known = [v for v in (request.form.get("known_variables") or "").split(",") if v]
    return htmx.render(
        EDIT_PAGE,
        PREVIEW,
        preview=templates.preview_template(current_user.client, form.channel.data, content, samples),
        samples=samples,
        samples_changed=known != variables,
        form=form,
        template=None,
    )
