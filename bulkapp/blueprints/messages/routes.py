"""Messages views: the composer with its live quote, sending, and the recent-messages list."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from bulkapp import htmx
from bulkapp.blueprints.messages.blueprint import bp
from bulkapp.blueprints.messages.forms import SendMessageForm
from bulkapp.extensions import db
from bulkapp.formatting import format_ksh
from bulkapp.i18n import stored_text
from bulkapp.models import Template
from bulkapp.services.channels import routing as channels
from bulkapp.services.messaging import compose as messaging
from bulkapp.services.messaging import message_list
from bulkapp.services.messaging.cursors import InvalidCursor
from bulkapp.tenancy import current_client_id, tenant_required

PAGE = "messages/page.html"
LIST = "messages/partials/list.html"
COMPOSER = "messages/partials/composer.html"
QUOTE = "messages/partials/quote.html"
PAGE_SIZE = 25


def _form(**kwargs) -> SendMessageForm:
    form = SendMessageForm(**kwargs)
    client_id = current_client_id()
    templates = db.session.execute(
        sa.select(Template.id, Template.name).where(Template.client_id == client_id).order_by(Template.name)
    ).all()
    form.set_choices(channels.usable_kinds(client_id), [(tid, name) for tid, name in templates])
    return form


def _list_context() -> dict:
    cursor = request.args.get("before") or None
    try:
        listing = message_list.list_messages(current_client_id(), cursor=cursor, limit=PAGE_SIZE, direction="outbound")
    except InvalidCursor:
        cursor = None
        listing = message_list.list_messages(current_client_id(), limit=PAGE_SIZE, direction="outbound")
    return {
        "listing": listing,
        "cursor": cursor,
        "polling": any(message_list.is_awaiting(m) for m in listing.messages),
        "is_awaiting": message_list.is_awaiting,
    }


def _preview(form: SendMessageForm) -> messaging.Preview:
    channel = form.channel.data if form.channel.data in channels.KIND_LABELS else "sms"
    template_id = form.template_id.data if isinstance(form.template_id.data, int) else None
    return messaging.preview_message(
        current_client_id(),
        to=form.to.data or "",
        body=form.body.data or "",
        channel=channel,
        template_id=template_id,
        append_reply_link=bool(form.append_reply_link.data) if channel == "sms" else None,
    )


@bp.get("/")
@tenant_required
def index():
    """The page; an HTMX request (polling, paging) gets the list only."""
    context = _list_context()
    if htmx.is_htmx():
        return htmx.render(PAGE, LIST, oob_balance=True, **context)
    form = _form()
    return htmx.render(PAGE, LIST, form=form, preview=_preview(form), **context)


@bp.post("/quote")
@tenant_required
def quote():
    """The live quote while typing (the composer posts its fields here, debounced). A number that is now valid
    also clears the To field's error from a failed send (an out-of-band swap of that error only, so what is
    being typed is never replaced)."""
    form = _form()
    return render_template(QUOTE, preview=_preview(form), channel=_channel(form), to_fixed=_to_is_valid(form))


def _channel(form: SendMessageForm) -> str:
    return form.channel.data if form.channel.data in channels.KIND_LABELS else "sms"


def _to_is_valid(form: SendMessageForm) -> bool:
    if not (form.to.data or "").strip():
        return False
    try:
        messaging.normalise_recipient(_channel(form), form.to.data)
    except messaging.SendError:
        return False
    return True


@bp.post("/")
@tenant_required
def send():
    form = _form()
    if form.validate_on_submit():
        try:
            message = messaging.send_message(
                current_client_id(),
                to=form.to.data,
                body=form.body.data,
                channel=form.channel.data,
                subject=form.subject.data,
                template_id=form.template_id.data,
                append_reply_link=bool(form.append_reply_link.data) if form.channel.data == "sms" else None,
                user_id=current_user.id,
                idempotency_key=form.idempotency_key.data or None,
            )
        except messaging.SendError as exc:
            db.session.rollback()
            if exc.code == "not_found":
                abort(404)
            _attach_error(form, exc)
        else:
            db.session.commit()
            return _sent(message)
    return htmx.render_form_errors(PAGE, COMPOSER, form=form, preview=_preview(form), **_list_context())


def _attach_error(form: SendMessageForm, error: messaging.SendError) -> None:
    field = getattr(form, error.field, None) if error.field else None
    if field is not None and field.name != "idempotency_key":
        field.errors = [*field.errors, stored_text(error.message)]
    else:
        form.form_errors.append(stored_text(error.message))


def _sent(message):
    if message.channel == "sms":
        note = ngettext(
            "Message to %(recipient)s queued: %(segments)s segment, %(cost)s.",
            "Message to %(recipient)s queued: %(segments)s segments, %(cost)s.",
            message.segments,
            recipient=message.recipient,
            segments=message.segments,
            cost=format_ksh(message.cost),
        )
    else:  # segments mean nothing for an email or a WhatsApp message
        cost = format_ksh(message.cost)
        note = _("Message to %(recipient)s queued: %(cost)s.", recipient=message.recipient, cost=cost)
    if not htmx.is_htmx():
        flash(note, "success")
        return htmx.redirect(url_for("messages.index"))
    form = _form(formdata=None)
    form.channel.data = message.channel
    return htmx.render(
        PAGE,
        COMPOSER,
        form=form,
        preview=_preview(form),
        sent_note=note,
        oob_list=True,
        oob_balance=True,
        **_list_context(),
    )
