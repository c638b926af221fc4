"""Inbox views: the conversation list, a conversation's thread, replies, read state and status changes."""

from __future__ import annotations

from flask import abort, current_app, flash, make_response, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from bulkapp import htmx
from bulkapp.blueprints.inbox.blueprint import bp
from bulkapp.blueprints.inbox.forms import ReplyForm
from bulkapp.extensions import db
from bulkapp.formatting import format_ksh
from bulkapp.i18n import stored_text
from bulkapp.models import CONVERSATION_STATUSES
from bulkapp.parsing import parse_id
from bulkapp.services.inbox import conversations as inbox
from bulkapp.services.messaging import compose as messaging
from bulkapp.services.messaging import message_list
from bulkapp.services.messaging.cursors import InvalidCursor
from bulkapp.tenancy import current_client_id, tenant_required

PAGE = "inbox/page.html"
LIST = "inbox/partials/list.html"
THREAD = "inbox/partials/thread.html"
MESSAGES = "inbox/partials/messages.html"
COMPOSER = "inbox/partials/composer.html"
QUOTE = "inbox/partials/quote.html"
STATUS_LABELS = {"open": _l("Open"), "closed": _l("Closed"), "archived": _l("Archived")}
CHANNEL_LABELS = {"sms": "SMS", "whatsapp": "WhatsApp", "email": _l("Email")}
STATUS_CHANGED = {
    "open": _l("Conversation open."),
    "closed": _l("Conversation closed."),
    "archived": _l("Conversation archived."),
}


@bp.app_context_processor
def _nav_badge() -> dict:
    def inbox_unread_count() -> int:
        client_id = getattr(current_user, "client_id", None)
        return inbox.unread_conversations(client_id) if client_id else 0

    return {"inbox_unread_count": inbox_unread_count}


def _poll_seconds() -> int:
    return int(current_app.config.get("INBOX_POLL_SECONDS", 5))


def _stamp(value) -> str:
    return "" if value is None else str(int(value.timestamp() * 1_000_000))


def _list_context(filters: inbox.Filters, active_id: int | None = None) -> dict:
    cursor = request.args.get("cursor") or None
    client_id = current_client_id()
    try:
        listing = inbox.list_conversations(client_id, filters, cursor=cursor)
    except InvalidCursor:
        cursor = None
        listing = inbox.list_conversations(client_id, filters)
    return {
        "filters": filters,
        "listing": listing,
        "cursor": cursor,
        "active_id": active_id,
        "since": _stamp(inbox.latest_activity(client_id)),
        "poll_seconds": _poll_seconds(),
        "status_labels": STATUS_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "filter_args": filters.as_args(),
    }


def _owned(conversation_id: int):
    conversation = inbox.get_conversation(current_client_id(), conversation_id)
    if conversation is None:
        abort(404)
    return conversation


def _reply_form(conversation, rules: inbox.ReplyRules, **kwargs) -> ReplyForm:
    form = ReplyForm(**kwargs)
    form.set_templates(inbox.reply_templates(current_client_id(), conversation.channel, rules))
    return form


def _preview(conversation, form: ReplyForm):
    template_id = form.template_id.data if isinstance(form.template_id.data, int) else None
    return inbox.preview_reply(current_client_id(), conversation, form.body.data or "", template_id)


def _thread_context(conversation, form: ReplyForm | None = None) -> dict:
    before = parse_id(request.args.get("before"))
    thread = inbox.get_thread(current_client_id(), conversation, before=before)
    form = form or _reply_form(conversation, thread.rules)
    return {
        "thread": thread,
        "conversation": conversation,
        "form": form,
        "preview": _preview(conversation, form),
        "polling": before is None,
        "awaiting": any(m.direction == "outbound" and message_list.is_awaiting(m) for m in thread.messages),
        "poll_seconds": _poll_seconds(),
        "status_labels": STATUS_LABELS,
        "channel_labels": CHANNEL_LABELS,
    }


@bp.get("/")
@tenant_required
def index():
    """The inbox; an HTMX request (filters, search, pages, polling) gets the list only. Polling sends the
    ``since`` stamp it shows and gets 204 (no swap) while nothing new happened."""
    filters = inbox.Filters.parse(request.args)
    active_id = parse_id(request.args.get("active"))
    since = request.args.get("since")
    if htmx.is_htmx() and since is not None and since == _stamp(inbox.latest_activity(current_client_id())):
        return _unchanged()
    return htmx.render(PAGE, LIST, badge_with_list=htmx.is_htmx(), **_list_context(filters, active_id))


def _unchanged():
    response = make_response("", 204)
    response.vary.add("HX-Request")
    return response


@bp.get("/<int:conversation_id>")
@tenant_required
def show(conversation_id: int):
    """A conversation's thread with the reply composer; opening it marks it read (the nav badge follows
    out-of-band on HTMX requests; a full page renders it fresh)."""
    conversation = _owned(conversation_id)
    # Most opens are of read conversations: no UPDATE (a write transaction) for them.
    if conversation.unread_count and inbox.mark_read(current_client_id(), conversation.id):
        db.session.commit()
        db.session.refresh(conversation)
    filters = inbox.Filters.parse(request.args)
    context = _thread_context(conversation)
    if htmx.is_htmx():
        return htmx.render(
            PAGE, THREAD, oob_badge=True, oob_item=True, filters=filters, active_id=conversation.id, **context
        )
    return htmx.render(PAGE, THREAD, **{**_list_context(filters, conversation.id), **context})


@bp.get("/<int:conversation_id>/messages")
@tenant_required
def messages(conversation_id: int):
    """Polling of an open thread: 204 while nothing changed, else the messages (read at once, as seen)."""
    conversation = _owned(conversation_id)
    if not htmx.is_htmx():  # the polled fragment alone is no page: open the conversation
        return htmx.redirect(url_for(".show", conversation_id=conversation.id))
    after = parse_id(request.args.get("after")) or 0
    awaiting = request.args.get("awaiting") == "1"
    if not awaiting and inbox.newest_message_id(current_client_id(), conversation.id) == after:
        return _unchanged()
    if inbox.mark_read(current_client_id(), conversation.id):
        db.session.commit()
    return htmx.render(PAGE, MESSAGES, badge_with_messages=True, **_thread_context(conversation))


@bp.post("/<int:conversation_id>/quote")
@tenant_required
def quote(conversation_id: int):
    """The live cost of the reply being typed."""
    conversation = _owned(conversation_id)
    rules = inbox.reply_rules(conversation)
    form = _reply_form(conversation, rules)
    return render_template(QUOTE, preview=_preview(conversation, form), rules=rules)


@bp.post("/<int:conversation_id>/reply")
@tenant_required
def reply(conversation_id: int):
    conversation = _owned(conversation_id)
    rules = inbox.reply_rules(conversation)
    form = _reply_form(conversation, rules)
    if form.validate_on_submit():
        try:
            message = inbox.send_reply(
                current_client_id(),
                conversation,
                body=form.body.data,
                template_id=form.template_id.data,
                user_id=current_user.id,
                idempotency_key=form.idempotency_key.data or None,
            )
        except messaging.SendError as exc:
            db.session.rollback()
            _attach_error(form, exc)
        else:
            db.session.commit()
            return _replied(conversation, message)
    conversation = _owned(conversation_id)
    return htmx.render_form_errors(PAGE, COMPOSER, **_full_context(conversation, form))


def _full_context(conversation, form: ReplyForm) -> dict:
    context = _thread_context(conversation, form)
    if not htmx.is_htmx():
        context = {**_list_context(inbox.Filters.parse(request.args), conversation.id), **context}
    return context


def _attach_error(form: ReplyForm, error: messaging.SendError) -> None:
    field = getattr(form, error.field, None) if error.field in ("body", "template_id") else None
    if field is not None:
        field.errors = [*field.errors, stored_text(error.message)]
    else:
        form.form_errors.append(stored_text(error.message))


def _replied(conversation, message):
    note = _(
        "Reply queued: %(segments)s segment(s), %(cost)s.", segments=message.segments, cost=format_ksh(message.cost)
    )
    if not htmx.is_htmx():
        flash(note, "success")
        return htmx.redirect(url_for("inbox.show", conversation_id=conversation.id))
    db.session.refresh(conversation)
    rules = inbox.reply_rules(conversation)
    form = _reply_form(conversation, rules, formdata=None)
    context = _thread_context(conversation, form)
    return htmx.render(PAGE, COMPOSER, sent_note=note, oob_messages=True, oob_balance=True, **context)


@bp.post("/<int:conversation_id>/status")
@tenant_required
def change_status(conversation_id: int):
    """Close, archive or reopen. HTMX gets the thread, the list (same filters) and the badge out-of-band."""
    conversation = _owned(conversation_id)
    status = request.form.get("status")
    if status not in CONVERSATION_STATUSES:
        abort(400)
    inbox.set_status(current_client_id(), conversation.id, status)
    db.session.commit()
    filters = inbox.Filters.parse({k[2:]: v for k, v in request.form.items() if k.startswith("f_")})
    if not htmx.is_htmx():
        flash(str(STATUS_CHANGED[status]), "success")
        return htmx.redirect(url_for("inbox.show", conversation_id=conversation.id, **filters.as_args()))
    context = {**_list_context(filters, conversation.id), **_thread_context(conversation)}
    return htmx.render(PAGE, THREAD, oob_list=True, oob_badge=True, **context)
