"""Notification views: list, mark one read, mark all read."""

from flask import abort, render_template
from flask_login import current_user

from bulkapp import htmx
from bulkapp.blueprints.notifications import bp
from bulkapp.extensions import db
from bulkapp.models import Notification
from bulkapp.services.notifications import mark_read, unread_count, visible_to
from bulkapp.tenancy import current_client_id, tenant_required


def _list_context() -> dict:
    notes = db.session.scalars(
        visible_to(current_client_id(), current_user.id).order_by(Notification.id.desc()).limit(100)
    ).all()
    return {"notifications": notes}


@bp.get("/")
@tenant_required
def index():
    return htmx.render("notifications/page.html", "notifications/partials/list.html", **_list_context())


@bp.get("/bell")
@tenant_required
def bell():
    return render_template(
        "partials/bell.html", unread_notifications=unread_count(current_client_id(), current_user.id)
    )


def _after_marking():
    db.session.commit()
    return htmx.render("notifications/page.html", "notifications/partials/list.html", oob_bell=True, **_list_context())


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
