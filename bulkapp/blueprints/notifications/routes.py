"""Notification views: the bell, its dropdown, the filtered list, mark read."""

from flask import abort, render_template, request, url_for
from flask_login import current_user

from bulkapp import htmx
from bulkapp.blueprints.notifications.blueprint import bp
from bulkapp.extensions import db
from bulkapp.models import Notification
from bulkapp.parsing import parse_id
from bulkapp.services.notifications.notify import TYPE_LABELS, link_for, mark_read, render, unread_count, visible_to
from bulkapp.tenancy import current_client_id, tenant_required

PAGE_SIZE = 50


def _list_context() -> dict:
    kind = request.values.get("type") or ""
    unread_only = request.values.get("unread") == "1"
    before = parse_id(request.values.get("before"))
    query = visible_to(current_client_id(), current_user.id)
    if kind in TYPE_LABELS:
        query = query.where(Notification.type == kind)
    if unread_only:
        query = query.where(Notification.is_read.is_(False))
    if before:
        query = query.where(Notification.id < before)
    notes = db.session.scalars(query.order_by(Notification.id.desc()).limit(PAGE_SIZE + 1)).all()
    return {
        "notifications": notes[:PAGE_SIZE],
        "next_before": notes[PAGE_SIZE - 1].id if len(notes) > PAGE_SIZE else None,
        "kind": kind,
        "unread_only": unread_only,
        "type_labels": TYPE_LABELS,
        "link_for": link_for,
        "note_text": render,
    }


@bp.get("/")
@tenant_required
def index():
    return htmx.render("notifications/page.html", "notifications/partials/list.html", **_list_context())


@bp.get("/bell")
@tenant_required
def bell():
    if not htmx.is_htmx():  # the bell alone is no page
        return htmx.redirect(url_for(".index"))
    return render_template(
        "partials/bell.html", unread_notifications=unread_count(current_client_id(), current_user.id)
    )


@bp.get("/latest")
@tenant_required
def latest():
    if not htmx.is_htmx():
        return htmx.redirect(url_for(".index"))
    notes = db.session.scalars(
        visible_to(current_client_id(), current_user.id).order_by(Notification.id.desc()).limit(6)
    ).all()
    return render_template(
        "notifications/partials/latest.html", notifications=notes, link_for=link_for, note_text=render
    )


def _after_marking():
    db.session.commit()
    response = htmx.render(
        "notifications/page.html", "notifications/partials/list.html", oob_bell=True, **_list_context()
    )
    return htmx.trigger(response, "notifications-changed")


@bp.post("/<int:notification_id>/read")
@tenant_required
def read(notification_id: int):
    note = db.session.scalar(visible_to(current_client_id(), current_user.id).where(Notification.id == notification_id))
    if note is None:
        abort(404)
    mark_read(current_client_id(), current_user.id, notification_id)
    return _after_marking()


@bp.post("/read-all")
@tenant_required
def read_all():
    mark_read(current_client_id(), current_user.id)
    return _after_marking()
