"""Settings > Opt-outs: the suppression list (search, add, remove, CSV export), keywords and the footer."""

from __future__ import annotations

from datetime import date

from flask import Response, abort, request, stream_with_context
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import Length

from bulkapp import htmx
from bulkapp.blueprints.audit_trail import audit
from bulkapp.blueprints.settings.blueprint import bp
from bulkapp.extensions import db
from bulkapp.models import Client
from bulkapp.parsing import parse_id
from bulkapp.services.compliance import optouts
from bulkapp.services.compliance import suppression as suppression_list
from bulkapp.tenancy import current_client_id, tenant_required

PAGE = "settings/suppression.html"
LIST = "settings/partials/suppression_list.html"
ADD = "settings/partials/suppression_add.html"
KEYWORDS = "settings/partials/suppression_keywords.html"
CHANGED = "optouts-changed"


class AddForm(FlaskForm):
    contact = StringField(
        _l("Phone number or email"),
        validators=[Length(max=254, message=_l("That is too long for a phone number or an email address."))],
        render_kw={"placeholder": "0712 345 678", "autocomplete": "off"},
    )


class KeywordsForm(FlaskForm):
    optout_keywords = TextAreaField(
        _l("Opt-out keywords"), render_kw={"rows": 6}, description=_l("One per line (or separated by commas).")
    )
    optin_keywords = TextAreaField(
        _l("Opt-in keywords"), render_kw={"rows": 3}, description=_l("START subscribes again.")
    )
    optout_footer = StringField(
        _l("Promotional footer"),
        render_kw={"placeholder": optouts.DEFAULT_FOOTER},
        description=_l("Added to every promotional SMS. Leave blank for the default."),
    )


def _split(text: str | None) -> list[str]:
    return [part for line in (text or "").splitlines() for part in line.split(",") if part.strip()]


def _saved_keywords(client: Client) -> KeywordsForm:
    out, back = optouts.keywords(client)
    data = {
        "optout_keywords": "\n".join(out),
        "optin_keywords": "\n".join(back),
        "optout_footer": (client.settings or {}).get("optout_footer") or "",
    }
    return KeywordsForm(formdata=None, data=data)


def _context(**extra) -> dict:
    client = db.session.get(Client, current_client_id())
    query = (request.values.get("q") or "").strip()[: suppression_list.MAX_QUERY]
    before = parse_id(request.args.get("before"))
    context = {
        "client": client,
        "listing": suppression_list.list_page(client.id, query=query, before=before),
        "q": query,
        "before": before,
        "source_labels": suppression_list.SOURCE_LABELS,
        "add_form": AddForm(formdata=None),
        "keywords_form": _saved_keywords(client),
        "footer": optouts.footer(client),
    }
    context.update(extra)
    return context


@bp.get("/opt-outs")
@tenant_required
def suppression():
    return htmx.render(PAGE, LIST, **_context())


@bp.post("/opt-outs")
@tenant_required
def suppression_add():
    form = AddForm()
    if form.validate_on_submit():
        try:
            contact, added = suppression_list.add(current_client_id(), form.contact.data)
        except suppression_list.InvalidContact as exc:
            form.contact.errors.append(str(exc))
        else:
            db.session.commit()
            response = htmx.render(PAGE, ADD, **_context(added=contact, was_new=added))
            return htmx.trigger(response, CHANGED)
    return htmx.render_form_errors(PAGE, ADD, **_context(add_form=form))


@bp.post("/opt-outs/<int:suppression_id>/remove")
@tenant_required
def suppression_remove(suppression_id: int):
    contact = suppression_list.remove(current_client_id(), suppression_id)
    if contact is None:
        abort(404)
    db.session.commit()
    return htmx.render(PAGE, LIST, **_context(removed=contact))


@bp.get("/opt-outs/export.csv")
@tenant_required
def suppression_export():
    client_id = current_client_id()
    response = Response(stream_with_context(suppression_list.export_csv(client_id)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="opt-outs-{date.today().isoformat()}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _keyword_settings(client: Client) -> dict:
    out, back = optouts.keywords(client)
    return {"optout_keywords": out, "optin_keywords": back, "footer": optouts.footer(client)}


@bp.post("/opt-outs/keywords")
@tenant_required
def suppression_keywords():
    form = KeywordsForm()
    client = db.session.get(Client, current_client_id())
    if form.validate_on_submit():
        failed = False
        before = _keyword_settings(client)
        try:
            optouts.set_keywords(client, _split(form.optout_keywords.data), _split(form.optin_keywords.data))
        except ValueError as exc:
            form.optout_keywords.errors.append(str(exc))
            failed = True
        try:
            optouts.set_footer(client, form.optout_footer.data)
        except ValueError as exc:
            form.optout_footer.errors.append(str(exc))
            failed = True
        if not failed:
            details = {"before": before, "after": _keyword_settings(client)}
            audit("optout_keywords.updated", target=client, details=details)
            db.session.commit()
            return htmx.render(PAGE, KEYWORDS, **_context(keywords_saved=True))
        db.session.rollback()
    return htmx.render_form_errors(PAGE, KEYWORDS, **_context(keywords_form=form))
