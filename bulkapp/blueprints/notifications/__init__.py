"""The notification bell and the notifications page."""

from flask import Blueprint

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

from bulkapp.blueprints.notifications import routes  # noqa: E402,F401
